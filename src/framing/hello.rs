//! The hello exchange that opens every native connection (after authentication): each side
//! names the protocol, its version and the service it expects, so a mismatched peer gets a
//! clear error instead of garbage.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use super::native::{FrameError, FramedStream};

/// The native protocol's version; a peer with another gets a clear error.
pub const VERSION: u32 = 2;
/// How long a peer may take to say hello.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The first control message each side sends, and the error answer to a bad one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Hello {
    /// "I speak taojie `version` and want `service`."
    Hello {
        /// Always "taojie".
        protocol: String,
        /// [`VERSION`].
        version: u32,
        /// The service the client asks for or the server offers.
        service: String,
    },
    /// The other side's hello was refused.
    Error {
        /// Why, for a person to read.
        message: String,
    },
}

fn ours(service: &str) -> Hello {
    Hello::Hello {
        protocol: "taojie".into(),
        version: VERSION,
        service: service.into(),
    }
}

/// Checks a hello against what we expect.
fn check(got: Hello, service: &str) -> Result<(), String> {
    match got {
        Hello::Hello {
            protocol,
            version,
            service: s,
        } => {
            if protocol != "taojie" {
                Err(format!("peer speaks {protocol:?}, not taojie"))
            } else if version != VERSION {
                Err(format!(
                    "peer speaks taojie protocol version {version}; this is version {VERSION}"
                ))
            } else if s != service {
                Err(format!("peer wants the {s:?} service; this is {service:?}"))
            } else {
                Ok(())
            }
        }
        Hello::Error { message } => Err(format!("peer refused: {message}")),
    }
}

/// Client side: says hello for `service` and checks the server's answer.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut FramedStream<S>,
    service: &str,
) -> Result<(), FrameError> {
    t.send_control(&ours(service)).await?;
    let reply = tokio::time::timeout(TIMEOUT, t.recv_control::<Hello>())
        .await
        .map_err(|_| FrameError::Unexpected("server sent no hello".into()))??;
    check(reply, service).map_err(FrameError::Unexpected)
}

/// Server side: waits for the client's hello; answers with ours, or with an error (then the
/// caller closes the connection).
pub async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut FramedStream<S>,
    service: &str,
) -> Result<(), FrameError> {
    let got = match tokio::time::timeout(TIMEOUT, t.recv_control::<Hello>()).await {
        Err(_) => Err(FrameError::Unexpected("client sent no hello".into())),
        Ok(Err(e)) => Err(e),
        Ok(Ok(h)) => check(h, service).map_err(FrameError::Unexpected),
    };
    match got {
        Ok(()) => t.send_control(&ours(service)).await,
        Err(e) => {
            let _ = t
                .send_control(&Hello::Error {
                    message: e.to_string(),
                })
                .await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn matching_peers_agree_and_mismatched_ones_get_a_clear_error() {
        let (a, b) = tokio::io::duplex(64);
        let (mut a, mut b) = (FramedStream::new(a), FramedStream::new(b));
        let (c, s) = tokio::join!(client(&mut a, "exec"), server(&mut b, "exec"));
        c.unwrap();
        s.unwrap();

        let (a, b) = tokio::io::duplex(64);
        let (mut a, mut b) = (FramedStream::new(a), FramedStream::new(b));
        let (c, s) = tokio::join!(client(&mut a, "files"), server(&mut b, "exec"));
        assert!(s.unwrap_err().to_string().contains("files"));
        assert!(c.unwrap_err().to_string().contains("peer refused"));
    }
}
