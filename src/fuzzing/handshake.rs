//! The handshakes that run on a raw connection before any framing: the HMAC challenge and
//! answer (native and the seeds'), and the Noise handshake's banner, mode line and messages.
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use super::split_first;
use crate::auth::{self, Key};
use crate::secure::{self, ClientAuth, ServerAuth};

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Runs one side of a handshake (chosen by the first byte) against a peer that sends the
/// rest of the bytes and then closes; whatever it sends, the side must end with an error or
/// success, never a panic or a wait.
pub fn handshake(data: &[u8]) {
    let (side, data) = split_first(data);
    let key = Key::from_bytes(b"fuzz key").expect("a key");
    let stream = tokio::io::join(data, tokio::io::sink());
    runtime().block_on(async move {
        match side % 7 {
            0 => drop(auth::server(&mut { stream }, Some(&key)).await),
            1 => drop(auth::server(&mut { stream }, None).await),
            2 => drop(auth::classic_server(&mut { stream }, &key).await),
            3 => drop(auth::client(&mut { stream }, Some(&key)).await),
            4 => {
                let auth = ServerAuth {
                    psk: Some(key),
                    identity: None,
                    open: true,
                };
                drop(secure::server(stream, &auth).await);
            }
            5 => drop(secure::client(stream, &ClientAuth::Psk(key)).await),
            _ => drop(secure::client(stream, &ClientAuth::None).await),
        }
    });
}
