//! Transit: the bulk connection beside the mailbox. Each side listens (unless told not to),
//! tells the peer its direct hints and its relay, then tries every way at once: connections to
//! the peer's direct hints at once, to the relays after a short delay when a direct way might
//! work. Every candidate first proves it belongs to this transfer (handshakes derived from the
//! transit key); the sender picks the first that does and says `go`. What follows is
//! [`records`], sealed with a key per direction.
pub mod hints;
pub mod records;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::keys::{Key, hkdf};
use super::messages::hex;
pub use hints::{PeerHints, TcpHint, parse_hints};
pub use records::{RecordReader, RecordWriter, Suite};

/// How long the relay waits behind a direct way that might work (the Python client's delay).
pub const RELAY_DELAY: Duration = Duration::from_secs(2);
/// How long finding any connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Which end of the transfer: the handshakes and record keys differ by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends the file; decides which connection wins.
    Sender,
    /// Receives the file.
    Receiver,
}

/// How transit finds the peer.
#[derive(Debug, Clone, Default)]
pub struct TransitOptions {
    /// Our relay (`--transit-helper`), offered to the peer as well.
    pub relay: Option<TcpHint>,
    /// Listen for the peer's direct connections (false: `--no-listen`).
    pub listen: bool,
}

/// One side of transit, listening already, before it knows the peer's hints.
pub struct Transit {
    role: Role,
    opts: TransitOptions,
    listener: Option<TcpListener>,
    direct: Vec<TcpHint>,
    side: String,
}

/// The connection transit found: records both ways.
pub struct Connection {
    /// Records from the peer.
    pub reader: RecordReader<OwnedReadHalf>,
    /// Records to the peer.
    pub writer: RecordWriter<OwnedWriteHalf>,
    /// `direct` or `relay`, and the address.
    pub description: String,
}

/// The handshake `role` sends.
pub fn handshake(key: &Key, role: Role) -> Vec<u8> {
    let (name, purpose) = match role {
        Role::Sender => ("sender", &b"transit_sender"[..]),
        Role::Receiver => ("receiver", &b"transit_receiver"[..]),
    };
    format!(
        "transit {name} {} ready\n\n",
        hex(&hkdf::<32>(&key.0, purpose))
    )
    .into_bytes()
}

/// What a transit client tells the relay: the token both peers derive, and its side.
pub fn relay_handshake(key: &Key, side: &str) -> Vec<u8> {
    let token = hex(&hkdf::<32>(&key.0, b"transit_relay_token"));
    format!("please relay {token} for side {side}\n").into_bytes()
}

/// The record key of what `role` sends.
fn record_key(key: &Key, role: Role) -> Key {
    Key(hkdf(
        &key.0,
        match role {
            Role::Sender => b"transit_record_sender_key",
            Role::Receiver => b"transit_record_receiver_key",
        },
    ))
}

/// Reads exactly `want.len()` bytes and checks they are `want`.
async fn expect(s: &mut TcpStream, want: &[u8], what: &str) -> Result<()> {
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).await?;
    if got != want {
        bail!("{what}: unexpected bytes");
    }
    Ok(())
}

/// A listener on every address and a port of its own: one IPv6 socket that takes IPv4 as well
/// (true), or IPv4 alone where IPv6 is off (false).
async fn listen_any() -> Result<(TcpListener, bool)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let dual = || -> std::io::Result<std::net::TcpListener> {
        let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
        s.set_only_v6(false)?;
        s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
        s.listen(128)?;
        s.set_nonblocking(true)?;
        Ok(s.into())
    };
    match dual() {
        Ok(l) => Ok((TcpListener::from_std(l)?, true)),
        Err(_) => Ok((TcpListener::bind("0.0.0.0:0").await?, false)),
    }
}

/// The addresses offered as direct hints: the machine's IPv4 addresses and (with `v6`) its
/// IPv6 ones that a peer can reach without a scope (not link-local), loopback left out; on a
/// machine with none of those, loopback (127.0.0.1 and, with `v6`, ::1). At most
/// [`hints::MAX_HINTS`], IPv4 first.
pub fn direct_addresses(v6: bool) -> Vec<IpAddr> {
    let reachable = |ip: &IpAddr| match ip {
        IpAddr::V4(a) => !a.is_loopback() && !a.is_unspecified(),
        IpAddr::V6(a) => {
            v6 && !a.is_loopback()
                && !a.is_unspecified()
                && !a.is_unicast_link_local()
                && !a.is_multicast()
        }
    };
    let mut addrs: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(reachable)
        .collect();
    if addrs.is_empty() {
        addrs.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if v6 {
            addrs.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
        }
    }
    addrs.sort();
    addrs.dedup();
    addrs.truncate(hints::MAX_HINTS);
    addrs
}

impl Transit {
    /// Starts our side: binds the listener (unless `opts.listen` is false; both IPv6 and
    /// IPv4 where the machine has IPv6) and finds the addresses to offer ([`direct_addresses`]).
    pub async fn new(role: Role, opts: TransitOptions) -> Result<Transit> {
        let mut side = [0u8; 8];
        getrandom::fill(&mut side).expect("the system's random source");
        let (listener, direct) = if opts.listen {
            let (l, v6) = listen_any().await?;
            let port = l.local_addr()?.port();
            let hints = direct_addresses(v6)
                .into_iter()
                .map(|ip| TcpHint {
                    hostname: ip.to_string(),
                    port,
                })
                .collect();
            (Some(l), hints)
        } else {
            (None, Vec::new())
        };
        Ok(Transit {
            role,
            opts,
            listener,
            direct,
            side: hex(&side),
        })
    }

    /// Our `transit` message for the peer.
    pub fn message(&self) -> Value {
        hints::transit_message(&self.direct, self.opts.relay.as_ref())
    }

    /// Finds the connection: every direct hint at once, the relays after [`RELAY_DELAY`]
    /// (at once when no direct way exists), the first to complete the handshake wins. Its
    /// records are sealed in `suite`.
    pub async fn connect(self, key: &Key, peer: &PeerHints, suite: Suite) -> Result<Connection> {
        let ours = handshake(key, self.role);
        let theirs = handshake(
            key,
            match self.role {
                Role::Sender => Role::Receiver,
                Role::Receiver => Role::Sender,
            },
        );
        let relay_hello = relay_handshake(key, &self.side);
        let mut relays: Vec<TcpHint> = self.opts.relay.iter().cloned().collect();
        for r in &peer.relays {
            if !relays.contains(r) {
                relays.push(r.clone());
            }
        }
        let delay = if peer.direct.is_empty() && self.listener.is_none() {
            Duration::ZERO
        } else {
            RELAY_DELAY
        };
        let is_sender = self.role == Role::Sender;
        let mut set: JoinSet<Result<(TcpStream, String)>> = JoinSet::new();
        let candidate =
            |set: &mut JoinSet<_>, stream: Option<TcpStream>, to: TcpHint, relay: bool| {
                let (ours, theirs, hello) = (ours.clone(), theirs.clone(), relay_hello.clone());
                set.spawn(async move {
                    let mut s = match stream {
                        Some(s) => s,
                        None => TcpStream::connect(to.address()).await?,
                    };
                    if relay {
                        s.write_all(&hello).await?;
                        expect(&mut s, b"ok\n", "relay").await?;
                    }
                    s.write_all(&ours).await?;
                    expect(&mut s, &theirs, "transit handshake").await?;
                    if !is_sender {
                        expect(&mut s, b"go\n", "transit handshake").await?;
                    }
                    let kind = if relay { "relay" } else { "direct" };
                    Ok((s, format!("{kind} {}", to.address())))
                });
            };
        for h in &peer.direct {
            candidate(&mut set, None, h.clone(), false);
        }
        let deadline = tokio::time::sleep(CONNECT_TIMEOUT);
        let relay_timer = tokio::time::sleep(delay);
        tokio::pin!(deadline, relay_timer);
        let mut relays_started = false;
        let mut last_error = None;
        loop {
            tokio::select! {
                accepted = async { self.listener.as_ref().unwrap().accept().await },
                    if self.listener.is_some() => {
                    if let Ok((s, from)) = accepted {
                        let ip = from.ip().to_canonical();
                        let hint = TcpHint { hostname: ip.to_string(), port: from.port() };
                        candidate(&mut set, Some(s), hint, false);
                    }
                }
                _ = &mut relay_timer, if !relays_started => {
                    relays_started = true;
                    for r in &relays {
                        candidate(&mut set, None, r.clone(), true);
                    }
                }
                done = set.join_next(), if !set.is_empty() => match done {
                    Some(Ok(Ok((mut s, description)))) => {
                        if is_sender {
                            s.write_all(b"go\n").await?;
                        }
                        let (r, w) = s.into_split();
                        let peer_role = if is_sender { Role::Receiver } else { Role::Sender };
                        return Ok(Connection {
                            reader: RecordReader::new(r, &record_key(key, peer_role), suite),
                            writer: RecordWriter::new(w, &record_key(key, self.role), suite),
                            description,
                        });
                    }
                    Some(Ok(Err(e))) => last_error = Some(e),
                    _ => {}
                },
                _ = &mut deadline => break,
            }
            if set.is_empty() && relays_started && self.listener.is_none() {
                break;
            }
        }
        Err(match last_error {
            Some(e) => anyhow!("no transit connection to the peer (last try: {e:#})"),
            None => anyhow!("no transit connection to the peer: no direct way and no relay"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the Python client's build_sender_handshake, build_receiver_handshake and
    // build_sided_relay_handshake on the key 32 x 0x01.
    #[test]
    fn handshakes_match_the_python_client() {
        let k = Key([1; 32]);
        assert_eq!(
            handshake(&k, Role::Sender),
            b"transit sender 6fdf4a12411976520951aa8edc03fbdf5b3f085cef4b7cdcb9011ef800e85855 ready\n\n"
        );
        assert_eq!(
            handshake(&k, Role::Receiver),
            b"transit receiver f0a9577e4d7b8acb4dcfe70cbf3babb17ecfae8b8239e3cb538066cc2a338230 ready\n\n"
        );
        assert_eq!(
            relay_handshake(&k, "0123456789abcdef"),
            b"please relay 08fac6c35839dceb97f69f8fdf01d8e00262d3e50fa85d75b3be0b94208456fe for side 0123456789abcdef\n"
        );
        assert_eq!(
            hex(&record_key(&k, Role::Sender).0),
            "d631d153f76ccd4ae1edfbfc495bacd48a35ec0f2895b825c2a76efa5b13fac5"
        );
    }

    #[test]
    fn direct_addresses_are_never_empty_and_v6_only_when_listening_on_v6() {
        let v4 = direct_addresses(false);
        assert!(!v4.is_empty());
        assert!(v4.iter().all(IpAddr::is_ipv4), "{v4:?}");
        let both = direct_addresses(true);
        assert!(!both.is_empty() && both.len() <= hints::MAX_HINTS);
        assert!(
            both.iter().all(|ip| !ip.is_loopback())
                || both.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert!(
            both.iter()
                .all(|ip| !matches!(ip, IpAddr::V6(a) if a.is_unicast_link_local())),
            "{both:?}"
        );
    }

    #[tokio::test]
    async fn two_sides_find_each_other_directly() {
        let key = Key([3; 32]);
        let opts = TransitOptions {
            relay: None,
            listen: true,
        };
        let s = Transit::new(Role::Sender, opts.clone()).await.unwrap();
        let r = Transit::new(
            Role::Receiver,
            TransitOptions {
                listen: false,
                ..opts
            },
        )
        .await
        .unwrap();
        // The receiver connects to the sender's loopback port (tests stay on loopback).
        let port = s.direct[0].port;
        let peer = PeerHints {
            direct: vec![TcpHint {
                hostname: "127.0.0.1".into(),
                port,
            }],
            relays: vec![],
        };
        let k2 = key.clone();
        let rt = tokio::spawn(async move { r.connect(&k2, &peer, Suite::SecretBox).await });
        let mut sc = s
            .connect(&key, &PeerHints::default(), Suite::SecretBox)
            .await
            .unwrap();
        let mut rc = rt.await.unwrap().unwrap();
        sc.writer.send(b"ping").await.unwrap();
        assert_eq!(rc.reader.recv().await.unwrap(), b"ping");
        rc.writer.send(b"pong").await.unwrap();
        assert_eq!(sc.reader.recv().await.unwrap(), b"pong");
    }
}
