//! The handshake that opens every native keyed connection (protocol 2).
//!
//! 1. The server sends a 32-byte banner: `taojie/2 MODES`, space-padded, ending in `\n`
//!    (32 bytes, the size of protocol 1's challenge: a client of protocol 1 reads it as one,
//!    answers, and is refused; a protocol-2 client that gets random bytes instead knows the
//!    server speaks protocol 1 and stops — no silent downgrade either way).
//! 2. The client answers with its own 32-byte line naming the one mode it uses.
//! 3. The Noise handshake for that mode, each message a 2-byte big-endian length and the
//!    message, with both lines as the prologue (so neither can be changed on the way).
//! 4. The server's verdict, the first transport message: `ok`, or why it refuses (an identity
//!    not in its authorized keys).
//!
//! Modes: `psk` (the shared key, NNpsk0), `xx` (identity keys, XX: both sides' static keys,
//! the server's pinned by the client, the client's checked against `--authorized`), `nn`
//! (encrypted but unauthenticated, only for servers started without a key on loopback).
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::cipher::{self, Opener, Sealer};
use super::identity::{Known, PublicKey};
use super::stream::SecureStream;
use super::{ClientAuth, Mode, PATTERN_NN, PATTERN_PSK, PATTERN_XX, Proven, ServerAuth};

/// Length of the banner and of the client's answer.
pub const LINE: usize = 32;
/// The whole handshake must finish within this.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// A taojie server sends its banner as soon as it accepts; one that has said nothing after
/// this long is another kind of service (or the wrong port).
pub const BANNER_WAIT: Duration = Duration::from_secs(3);
/// How long a client looks at what a server that is not taojie sent, to name it.
const LOOK: Duration = Duration::from_millis(200);
const PREFIX: &str = "taojie/2 ";

/// Why a handshake failed. The messages are safe to show: no key material in them.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The connection failed or closed. The cause is part of the message, not a separate
    /// source, so a chain of errors says it once.
    #[error("connection lost during the handshake: {0}")]
    Io(std::io::Error),
    /// The server closed the connection before sending its banner.
    #[error(
        "the server closed the connection without a word: not a taojie service, or too busy \
         for one more handshake from this address (try again shortly)"
    )]
    Silent,
    /// The peer took too long.
    #[error("the handshake timed out ({0})")]
    Timeout(&'static str),
    /// The server sent something other than a protocol-2 banner: another service, a
    /// `--classic` listener, or protocol 1 (plaintext after an HMAC). Holds the first bytes.
    #[error("answered, but not as a taojie service ({})", what_it_sent(.0))]
    NotTaojie(Vec<u8>),
    /// The server accepted the connection and said nothing for [`BANNER_WAIT`]: a service
    /// that waits for its client to speak first (echo, HTTP), so most likely a wrong port.
    #[error(
        "accepted the connection but sent no taojie banner within {} s: is it the right port?",
        BANNER_WAIT.as_secs()
    )]
    NoBanner,
    /// The client has no key and the server wants one (these modes).
    #[error("{}", mode_advice(Mode::Nn, .0))]
    Unkeyed(Vec<Mode>),
    /// The client sent no protocol-2 line.
    #[error("a client of taojie's old plaintext protocol (1), or not taojie: refused")]
    OldClient,
    /// The two sides share no mode.
    #[error("{0}")]
    Mode(String),
    /// The shared keys differ (seen by either side).
    #[error("authentication failed: wrong key (the two sides' keys differ)")]
    WrongKey,
    /// The client's identity key is not authorized.
    #[error("the server refused: {0}")]
    Refused(String),
    /// The server's identity differs from the one on record, or the record could not be kept.
    #[error("{0:#}")]
    Pinning(anyhow::Error),
    /// A handshake message did not verify.
    #[error("the handshake failed: {0}")]
    Noise(String),
}

impl From<std::io::Error> for HandshakeError {
    fn from(e: std::io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

impl Mode {
    fn pattern(self) -> &'static str {
        match self {
            Mode::Psk => PATTERN_PSK,
            Mode::Xx => PATTERN_XX,
            Mode::Nn => PATTERN_NN,
        }
    }
}

fn line(words: &str) -> [u8; LINE] {
    let mut out = [b' '; LINE];
    let text = format!("{PREFIX}{words}");
    out[..text.len().min(LINE - 1)].copy_from_slice(&text.as_bytes()[..text.len().min(LINE - 1)]);
    out[LINE - 1] = b'\n';
    out
}

/// The modes named in a line, or `None` when it is not a protocol-2 line.
fn parse_line(l: &[u8; LINE]) -> Option<Vec<Mode>> {
    let text = std::str::from_utf8(l).ok()?;
    let words = text.strip_prefix(PREFIX)?.trim_end();
    Some(
        words
            .split_whitespace()
            .filter_map(Mode::from_name)
            .collect(),
    )
}

async fn read_exact<S: AsyncRead + Unpin>(s: &mut S, buf: &mut [u8]) -> Result<(), HandshakeError> {
    s.read_exact(buf).await?;
    Ok(())
}

async fn send_msg<S: AsyncWrite + Unpin>(s: &mut S, msg: &[u8]) -> Result<(), HandshakeError> {
    let mut framed = Vec::with_capacity(2 + msg.len());
    framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    framed.extend_from_slice(msg);
    s.write_all(&framed).await?;
    Ok(())
}

async fn recv_msg<S: AsyncRead + Unpin>(s: &mut S) -> Result<Vec<u8>, HandshakeError> {
    let mut len = [0u8; 2];
    read_exact(s, &mut len).await?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_exact(s, &mut msg).await?;
    Ok(msg)
}

fn noise_err(e: impl std::fmt::Display) -> HandshakeError {
    HandshakeError::Noise(e.to_string())
}

/// Server side: offers the modes `auth` allows, runs the handshake the client picks, and
/// returns the encrypted stream and who the client proved to be.
pub async fn server<S>(
    mut s: S,
    auth: &ServerAuth,
) -> Result<(SecureStream<S>, Proven), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(TIMEOUT, server_steps(&mut s, auth)).await {
        Err(_) => Err(HandshakeError::Timeout("the client's messages")),
        Ok(Err(e)) => Err(e),
        Ok(Ok((noise, peer))) => Ok((SecureStream::new(s, noise), peer)),
    }
}

async fn server_steps<S>(
    s: &mut S,
    auth: &ServerAuth,
) -> Result<((Sealer, Opener), Proven), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let offered = auth.modes();
    let names: Vec<&str> = offered.iter().map(|m| m.name()).collect();
    let banner = line(&names.join(" "));
    s.write_all(&banner).await?;
    let mut answer = [0u8; LINE];
    read_exact(s, &mut answer).await?;
    let mode = match parse_line(&answer) {
        None => {
            if let Some(key) = &auth.psk {
                let _ = crate::auth::refuse_protocol_1(
                    s,
                    key,
                    &banner,
                    &answer,
                    "this server speaks taojie protocol 2 (encrypted); upgrade this client",
                )
                .await;
            }
            return Err(HandshakeError::OldClient);
        }
        Some(modes) => match modes.first() {
            Some(m) if offered.contains(m) => *m,
            _ => {
                return Err(HandshakeError::Mode(format!(
                    "the client asked for a mode this server does not offer (it offers {})",
                    names.join(", ")
                )));
            }
        },
    };
    let prologue = [banner, answer].concat();
    let psk = auth.psk.as_ref().map(super::derive_psk);
    let mut builder = snow::Builder::new(mode.pattern().parse().map_err(noise_err)?)
        .prologue(&prologue)
        .map_err(noise_err)?;
    match mode {
        Mode::Psk => {
            builder = builder
                .psk(0, psk.as_ref().expect("psk offered only with a key"))
                .map_err(noise_err)?
        }
        Mode::Xx => {
            let (id, _) = auth
                .identity
                .as_ref()
                .expect("xx offered only with an identity");
            builder = builder.local_private_key(&id.private).map_err(noise_err)?;
        }
        Mode::Nn => {}
    }
    let mut hs = builder.build_responder().map_err(noise_err)?;
    let mut buf = vec![0u8; 1024];
    while !hs.is_handshake_finished() {
        if hs.is_my_turn() {
            let n = hs.write_message(&[], &mut buf).map_err(noise_err)?;
            send_msg(s, &buf[..n]).await?;
        } else {
            let msg = recv_msg(s).await?;
            if let Err(e) = hs.read_message(&msg, &mut buf) {
                return Err(match mode {
                    Mode::Psk => HandshakeError::WrongKey,
                    _ => noise_err(e),
                });
            }
        }
    }
    let peer = match mode {
        Mode::Psk => Proven::Psk,
        Mode::Nn => Proven::Anonymous,
        Mode::Xx => {
            let key: [u8; 32] = hs
                .get_remote_static()
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| HandshakeError::Noise("no client key".into()))?;
            Proven::Identity(PublicKey(key))
        }
    };
    let (mut sealer, opener) = cipher::split(&mut hs);
    let verdict = match &peer {
        Proven::Identity(key) => match &auth.identity {
            Some((_, authorized)) if authorized.allows(key) => Ok(()),
            _ => Err(format!(
                "your identity key {} is not in its authorized keys",
                key.fingerprint()
            )),
        },
        _ => Ok(()),
    };
    let word = match &verdict {
        Ok(()) => "ok".to_string(),
        Err(why) => format!("no {why}"),
    };
    let mut record = [word.as_bytes(), &[0; cipher::TAG]].concat();
    sealer.seal(&mut record).map_err(noise_err)?;
    send_msg(s, &record).await?;
    verdict.map_err(HandshakeError::Refused)?;
    Ok(((sealer, opener), peer))
}

/// Client side: checks the banner, runs the handshake `auth` asks for, and returns the
/// encrypted stream and, with an identity, whether the server's key was pinned just now.
pub async fn client<S>(
    mut s: S,
    auth: &ClientAuth,
) -> Result<(SecureStream<S>, Option<Known>), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(TIMEOUT, client_steps(&mut s, auth)).await {
        Err(_) => Err(HandshakeError::Timeout("the server's messages")),
        Ok(Err(e)) => Err(e),
        Ok(Ok((noise, known))) => Ok((SecureStream::new(s, noise), known)),
    }
}

async fn client_steps<S>(
    s: &mut S,
    auth: &ClientAuth,
) -> Result<((Sealer, Opener), Option<Known>), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let banner = read_banner(s).await?;
    let offered = parse_line(&banner).ok_or_else(|| HandshakeError::NotTaojie(banner.to_vec()))?;
    let mode = auth.mode();
    if !offered.contains(&mode) {
        if mode == Mode::Nn {
            return Err(HandshakeError::Unkeyed(offered));
        }
        return Err(HandshakeError::Mode(mode_advice(mode, &offered)));
    }
    let answer = line(mode.name());
    s.write_all(&answer).await?;
    let prologue = [banner, answer].concat();
    let mut builder = snow::Builder::new(mode.pattern().parse().map_err(noise_err)?)
        .prologue(&prologue)
        .map_err(noise_err)?;
    let psk;
    match auth {
        ClientAuth::Psk(key) => {
            psk = super::derive_psk(key);
            builder = builder.psk(0, &psk).map_err(noise_err)?;
        }
        ClientAuth::Identity { id, .. } => {
            builder = builder.local_private_key(&id.private).map_err(noise_err)?;
        }
        ClientAuth::None => {}
    }
    let mut hs = builder.build_initiator().map_err(noise_err)?;
    let mut buf = vec![0u8; 1024];
    let mut known = None;
    while !hs.is_handshake_finished() {
        if hs.is_my_turn() {
            if let ClientAuth::Identity {
                known: hosts,
                address,
                ..
            } = auth
                && known.is_none()
                && let Some(key) = hs.get_remote_static()
            {
                // The server has shown its key: check it before showing ours.
                let key = PublicKey(
                    key.try_into()
                        .map_err(|_| HandshakeError::Noise("bad server key".into()))?,
                );
                known = Some(
                    hosts
                        .check(address, &key)
                        .map_err(HandshakeError::Pinning)?,
                );
            }
            let n = hs.write_message(&[], &mut buf).map_err(noise_err)?;
            send_msg(s, &buf[..n]).await?;
        } else {
            let msg = match recv_msg(s).await {
                Err(HandshakeError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(match mode {
                        Mode::Psk => HandshakeError::WrongKey,
                        _ => HandshakeError::Io(e),
                    });
                }
                other => other?,
            };
            if let Err(e) = hs.read_message(&msg, &mut buf) {
                return Err(match mode {
                    Mode::Psk => HandshakeError::WrongKey,
                    _ => noise_err(e),
                });
            }
        }
    }
    let (sealer, mut opener) = cipher::split(&mut hs);
    let mut verdict = recv_msg(s).await?;
    let n = opener.open(&mut verdict).map_err(noise_err)?;
    match std::str::from_utf8(&verdict[..n]) {
        Ok("ok") => Ok(((sealer, opener), known)),
        Ok(why) => Err(HandshakeError::Refused(
            why.strip_prefix("no ").unwrap_or(why).to_string(),
        )),
        Err(_) => Err(HandshakeError::Noise("an unreadable verdict".into())),
    }
}

/// The server's 32-byte banner, read within [`BANNER_WAIT`]. Bytes that cannot begin one end
/// the wait at once: a chat broker's greeting, a `--classic` listener's challenge. A little
/// more of what such a server sends is read then, to name it.
async fn read_banner<S: AsyncRead + Unpin>(s: &mut S) -> Result<[u8; LINE], HandshakeError> {
    let mut got = Vec::with_capacity(LINE);
    let mut buf = [0u8; 2 * LINE];
    let deadline = tokio::time::Instant::now() + BANNER_WAIT;
    while got.len() < LINE {
        let n = match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) if got.is_empty() => return Err(HandshakeError::NoBanner),
            Err(_) => return Err(HandshakeError::NotTaojie(got)),
            Ok(read) => read?,
        };
        if n == 0 {
            return Err(match got.is_empty() {
                true => HandshakeError::Silent,
                false => HandshakeError::NotTaojie(got),
            });
        }
        got.extend_from_slice(&buf[..n]);
        let k = got.len().min(PREFIX.len());
        if got[..k] != PREFIX.as_bytes()[..k] {
            // Not taojie: a moment more for the rest of its first line, to show it.
            let until = tokio::time::Instant::now() + LOOK;
            while got.len() < 2 * LINE && !got.contains(&b'\n') {
                match tokio::time::timeout_at(until, s.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n.min(2 * LINE)]),
                    _ => break,
                }
            }
            return Err(HandshakeError::NotTaojie(got));
        }
    }
    // A taojie server says nothing more before the client's answer.
    got.try_into().map_err(HandshakeError::NotTaojie)
}

/// What a server that is not taojie sent, for a message: its first line if it is text
/// (`it sent `*** welcome…``), else how many bytes, and who sends bytes like these.
pub fn what_it_sent(sent: &[u8]) -> String {
    const SHOWN: usize = 40;
    let text = String::from_utf8_lossy(sent);
    let printable = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
        .filter(|c| *c != char::REPLACEMENT_CHARACTER)
        .count();
    if sent.is_empty() || printable * 10 < text.chars().count() * 9 {
        return format!(
            "it sent {} bytes that are not text, as a --classic listener or a taojie older \
             than protocol 2 does",
            sent.len()
        );
    }
    let line = text.lines().next().unwrap_or("").trim_end();
    let mut shown: String = line
        .chars()
        .take(SHOWN)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if line.chars().count() > SHOWN || !text.contains('\n') {
        shown.push('…');
    }
    format!("it sent `{shown}`")
}

/// What to say when the server does not offer the mode the client's flags ask for.
fn mode_advice(wanted: Mode, offered: &[Mode]) -> String {
    let how = |m: Mode| match m {
        Mode::Psk => "a shared key (--key)",
        Mode::Xx => "identity keys (--identity)",
        Mode::Nn => "no key (--insecure-no-auth)",
    };
    let takes: Vec<&str> = offered.iter().map(|m| how(*m)).collect();
    format!(
        "the server takes {}; you gave {}",
        if takes.is_empty() {
            "nothing this client knows".to_string()
        } else {
            takes.join(" or ")
        },
        how(wanted)
    )
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::auth::Key;
    use crate::secure::identity::{Authorized, Identity, KnownHosts};

    fn key(s: &str) -> Key {
        Key::from_bytes(s.as_bytes()).unwrap()
    }

    async fn pair(
        c: &ClientAuth,
        s: &ServerAuth,
    ) -> (
        Result<(SecureStream<tokio::io::DuplexStream>, Option<Known>), HandshakeError>,
        Result<(SecureStream<tokio::io::DuplexStream>, Proven), HandshakeError>,
    ) {
        let (a, b) = tokio::io::duplex(64);
        tokio::join!(client(a, c), server(b, s))
    }

    #[tokio::test]
    async fn a_shared_key_opens_a_channel_both_ways() {
        let auth = ServerAuth {
            psk: Some(key("k")),
            ..Default::default()
        };
        let (c, s) = pair(&ClientAuth::Psk(key("k")), &auth).await;
        let ((mut c, _), (mut s, peer)) = (c.unwrap(), s.unwrap());
        assert!(matches!(peer, Proven::Psk));
        c.write_all(b"ping").await.unwrap();
        c.flush().await.unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_on_both_sides() {
        let auth = ServerAuth {
            psk: Some(key("server")),
            ..Default::default()
        };
        let (c, s) = pair(&ClientAuth::Psk(key("client")), &auth).await;
        assert!(matches!(s, Err(HandshakeError::WrongKey)), "{:?}", s.err());
        assert!(matches!(c, Err(HandshakeError::WrongKey)), "{:?}", c.err());
    }

    #[tokio::test]
    async fn identities_are_authorized_and_the_server_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let (server_id, ann, eve) = (
            Identity::generate().unwrap(),
            Identity::generate().unwrap(),
            Identity::generate().unwrap(),
        );
        let list = dir.path().join("authorized");
        std::fs::write(&list, format!("{}\n", ann.public)).unwrap();
        let auth = ServerAuth {
            identity: Some((server_id.clone(), Authorized::load(&list).unwrap())),
            ..Default::default()
        };
        let hosts = KnownHosts::at(&dir.path().join("known_hosts"));
        let as_client = |id: &Identity| ClientAuth::Identity {
            id: id.clone(),
            known: hosts.clone(),
            address: "srv:1".into(),
        };
        let (c, s) = pair(&as_client(&ann), &auth).await;
        assert_eq!(c.unwrap().1, Some(Known::Pinned));
        assert!(matches!(s.unwrap().1, Proven::Identity(k) if k == ann.public));
        let (c, _) = pair(&as_client(&ann), &auth).await;
        assert_eq!(c.unwrap().1, Some(Known::Same));
        // Someone not on the list.
        let (c, s) = pair(&as_client(&eve), &auth).await;
        assert!(matches!(s, Err(HandshakeError::Refused(_))));
        let err = c.err().unwrap().to_string();
        assert!(err.contains("not in its authorized keys"), "{err}");
        // Another server at the same address.
        let impostor = ServerAuth {
            identity: Some((
                Identity::generate().unwrap(),
                Authorized::load(&list).unwrap(),
            )),
            ..Default::default()
        };
        let (c, _) = pair(&as_client(&ann), &impostor).await;
        let err = c.err().unwrap().to_string();
        assert!(err.contains("changed its identity key"), "{err}");
    }

    #[tokio::test]
    async fn modes_and_old_peers_get_clear_errors() {
        let auth = ServerAuth {
            psk: Some(key("k")),
            ..Default::default()
        };
        let id = ClientAuth::Identity {
            id: Identity::generate().unwrap(),
            known: KnownHosts::at(std::path::Path::new("/nonexistent/known_hosts")),
            address: "x".into(),
        };
        let (c, _) = pair(&id, &auth).await;
        let err = c.err().unwrap().to_string();
        assert!(
            err.contains("takes a shared key (--key); you gave identity keys"),
            "{err}"
        );
        // A protocol-1 server sends 32 random bytes first.
        let (a, mut b) = tokio::io::duplex(64);
        let old = async {
            b.write_all(&[0xa5; 32]).await.unwrap();
            b
        };
        let psk = ClientAuth::Psk(key("k"));
        let (c, _b) = tokio::join!(client(a, &psk), old);
        let err = c.err().unwrap().to_string();
        assert!(err.contains("32 bytes that are not text"), "{err}");
        // A chat broker greets first; an echo server waits for the client.
        let (a, mut b) = tokio::io::duplex(256);
        let chat = async {
            b.write_all(b"*** welcome, you are user4 in lobby; commands: /nick NAME\n")
                .await
                .unwrap();
            b
        };
        let (c, _b) = tokio::join!(client(a, &psk), chat);
        let err = c.err().unwrap().to_string();
        assert_eq!(
            err,
            "answered, but not as a taojie service (it sent `*** welcome, you are user4 in lobby; \
             com…`)"
        );
        let (a, _b) = tokio::io::duplex(64);
        tokio::time::pause();
        let c = client(a, &psk).await;
        assert!(matches!(c, Err(HandshakeError::NoBanner)), "{:?}", c.err());
        tokio::time::resume();
        // A protocol-1 client answers the banner with 64 binary bytes.
        let (mut a, b) = tokio::io::duplex(256);
        let old = async {
            let mut banner = [0u8; 32];
            a.read_exact(&mut banner).await.unwrap();
            a.write_all(&[0xa5; 64]).await.unwrap();
            a
        };
        let (_a, s) = tokio::join!(old, server(b, &auth));
        assert!(matches!(s, Err(HandshakeError::OldClient)));
    }
}
