//! The challenge-response handshakes, over the raw stream before any framing.
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Key;

/// Bytes in a challenge, and in an HMAC-SHA256 answer.
pub const CHALLENGE_LEN: usize = 32;
/// How long each side may take over each step.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Domain separation: the server's proof can never be replayed as a client's answer.
const SERVER_PROOF: &[u8] = b"taojie server proof v1";

type HmacSha256 = Hmac<Sha256>;

/// Why a handshake failed. The messages are safe to show: they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The connection failed or closed during the handshake. The cause is part of the
    /// message, not a separate source, so a chain of errors says it once.
    #[error("connection lost during authentication: {0}")]
    Io(std::io::Error),
    /// The peer took too long.
    #[error("authentication timed out waiting for the {0}")]
    Timeout(&'static str),
    /// The client's answer was wrong (server side), or the server closed after our answer
    /// (client side): the keys differ.
    #[error("authentication failed: wrong key")]
    Rejected,
    /// The server could not prove it knows the key.
    #[error("the server failed to prove it knows the key; not trusting it")]
    ServerUnproven,
    /// No randomness was available for a challenge.
    #[error("no randomness for a challenge: {0}")]
    Random(String),
}

impl From<std::io::Error> for AuthError {
    fn from(e: std::io::Error) -> Self {
        AuthError::Io(e)
    }
}

fn mac(key: &Key) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key.bytes()).expect("HMAC takes keys of any length")
}

fn answer(key: &Key, parts: &[&[u8]]) -> [u8; CHALLENGE_LEN] {
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn verify(key: &Key, parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.verify_slice(tag).is_ok()
}

fn challenge() -> Result<[u8; CHALLENGE_LEN], AuthError> {
    let mut c = [0u8; CHALLENGE_LEN];
    getrandom::fill(&mut c).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(c)
}

async fn read_step<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), AuthError> {
    match tokio::time::timeout(TIMEOUT, s.read_exact(buf)).await {
        Err(_) => Err(AuthError::Timeout(what)),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok(_)) => Ok(()),
    }
}

/// The seeds' `conn_auth`, server side, with SHA-256: challenge, answer, constant-time check.
pub async fn classic_server<S>(s: &mut S, key: &Key) -> Result<(), AuthError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let c = challenge()?;
    s.write_all(&c).await?;
    let mut reply = [0u8; CHALLENGE_LEN];
    read_step(s, &mut reply, "client's answer").await?;
    if verify(key, &[&c], &reply) {
        Ok(())
    } else {
        Err(AuthError::Rejected)
    }
}

/// Native server side: the seeds' step, then the client's challenge answered. With no key
/// (an explicitly insecure loopback server) answers are read but not checked.
pub async fn server<S>(s: &mut S, key: Option<&Key>) -> Result<(), AuthError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let c = challenge()?;
    s.write_all(&c).await?;
    let mut reply = [0u8; 2 * CHALLENGE_LEN];
    read_step(s, &mut reply, "client's answer").await?;
    let (client_answer, client_challenge) = reply.split_at(CHALLENGE_LEN);
    let proof = match key {
        Some(key) if !verify(key, &[&c], client_answer) => return Err(AuthError::Rejected),
        Some(key) => answer(key, &[SERVER_PROOF, client_challenge, &c]),
        None => [0u8; CHALLENGE_LEN],
    };
    s.write_all(&proof).await?;
    Ok(())
}

/// Native client side: answers the server's challenge, sends one of its own and checks the
/// server's proof. With no key (talking to an explicitly insecure server) nothing is checked.
pub async fn client<S>(s: &mut S, key: Option<&Key>) -> Result<(), AuthError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut c = [0u8; CHALLENGE_LEN];
    read_step(s, &mut c, "server's challenge").await?;
    let ours = challenge()?;
    let reply = key.map(|k| answer(k, &[&c])).unwrap_or_default();
    let mut out = [0u8; 2 * CHALLENGE_LEN];
    out[..CHALLENGE_LEN].copy_from_slice(&reply);
    out[CHALLENGE_LEN..].copy_from_slice(&ours);
    s.write_all(&out).await?;
    let mut proof = [0u8; CHALLENGE_LEN];
    match read_step(s, &mut proof, "server's proof").await {
        Err(AuthError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(AuthError::Rejected);
        }
        other => other?,
    }
    match key {
        Some(k) if !verify(k, &[SERVER_PROOF, &ours, &c], &proof) => Err(AuthError::ServerUnproven),
        _ => Ok(()),
    }
}

/// Answers a client of protocol 1 (HMAC, then plaintext) that took `challenge` (the
/// protocol-2 banner) for its challenge and sent `answer`: if the answer proves it has the
/// key, the server proves it too and then refuses in the old client's own framing, so it
/// prints a clear "peer refused: upgrade" instead of a puzzling key error. Nothing else is
/// read or done. Returns whether the client had the key.
pub async fn refuse_protocol_1<S>(
    s: &mut S,
    key: &Key,
    challenge: &[u8],
    reply: &[u8],
    message: &str,
) -> Result<bool, AuthError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !verify(key, &[challenge], reply) {
        return Ok(false);
    }
    let mut client_challenge = [0u8; CHALLENGE_LEN];
    read_step(s, &mut client_challenge, "client's challenge").await?;
    let proof = answer(key, &[SERVER_PROOF, &client_challenge, challenge]);
    s.write_all(&proof).await?;
    let json = serde_json::json!({ "type": "error", "message": message }).to_string();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
    frame.extend_from_slice(json.as_bytes());
    s.write_all(&frame).await?;
    s.flush().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        Key::from_bytes(s.as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn same_key_passes_both_ways() {
        let (mut a, mut b) = tokio::io::duplex(7);
        let k = key("k1");
        let (c, s) = tokio::join!(client(&mut a, Some(&k)), server(&mut b, Some(&k)));
        c.unwrap();
        s.unwrap();
    }

    #[tokio::test]
    async fn wrong_key_is_rejected_on_both_sides() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let (ck, sk) = (key("client"), key("server"));
        let srv = async {
            let r = server(&mut b, Some(&sk)).await;
            drop(b);
            r
        };
        let (c, s) = tokio::join!(client(&mut a, Some(&ck)), srv);
        assert!(matches!(s, Err(AuthError::Rejected)));
        assert!(matches!(c, Err(AuthError::Rejected)), "{c:?}");
    }

    #[tokio::test]
    async fn an_impostor_server_is_caught() {
        // A server without the key (answering with zeros) cannot fool a client with one.
        let (mut a, mut b) = tokio::io::duplex(64);
        let k = key("k");
        let (c, s) = tokio::join!(client(&mut a, Some(&k)), server(&mut b, None));
        s.unwrap();
        assert!(matches!(c, Err(AuthError::ServerUnproven)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_times_out() {
        let (_a, mut b) = tokio::io::duplex(64);
        let r = server(&mut b, Some(&key("k"))).await;
        assert!(matches!(r, Err(AuthError::Timeout(_))));
    }
}
