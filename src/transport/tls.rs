//! TLS as a transport: the handshakes of [`crate::tls`] over a plain socket, giving a
//! [`Stream`]. Half-close carries through: shutting our side down sends close_notify, then FIN.
use anyhow::Result;

use super::{Plain, Stream};
use crate::tls::{Client, server::ServerTls};

/// Accepts a TLS client on `plain`; an error says why in one line.
pub async fn accept(tls: &ServerTls, plain: Plain) -> Result<Stream, String> {
    Ok(Stream::TlsServer(Box::new(tls.accept(plain).await?)))
}

/// Opens TLS to the server at `host` (whose name the certificate must carry) over `plain`.
pub async fn connect(client: &Client, plain: Plain, host: &str) -> Result<Stream> {
    Ok(Stream::TlsClient(Box::new(
        client.connect(plain, host).await?,
    )))
}
