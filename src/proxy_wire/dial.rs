//! A client's TCP connection to a target through a proxy: connect to the proxy, ask it for
//! the target (SOCKS5 or HTTP CONNECT), and hand back the socket, which from then on carries
//! the target's bytes. Replies are read exactly to their end, so no byte of the target's is
//! taken by the handshake.
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http_connect::{self, MAX_HEAD};
use super::socks5::{self, WireError};
use super::{Host, Parsed, ProxyScheme, ProxyUrl};

/// Connects to `host:port` through `proxy`, each step within `wait` (none: as long as it
/// takes). Errors name the proxy without its password.
pub async fn dial(
    proxy: &ProxyUrl,
    host: &Host,
    port: u16,
    wait: Option<Duration>,
) -> Result<TcpStream> {
    let work = async {
        let mut stream = connect_proxy(proxy).await?;
        match proxy.scheme {
            ProxyScheme::Http => http(&mut stream, proxy, host, port).await?,
            ProxyScheme::Socks5h => socks(&mut stream, proxy, host, port).await?,
            ProxyScheme::Socks5 => {
                // Names are resolved here; the proxy sees an address.
                let target = match host {
                    Host::Ip(ip) => SocketAddr::new(*ip, port),
                    Host::Name(n) => tokio::net::lookup_host((n.as_str(), port))
                        .await
                        .with_context(|| format!("cannot resolve {n:?}"))?
                        .next()
                        .ok_or_else(|| anyhow!("{n:?} resolves to no address"))?,
                };
                socks(&mut stream, proxy, &Host::Ip(target.ip()), port).await?;
            }
        }
        Ok::<_, anyhow::Error>(stream)
    };
    let res = match wait {
        Some(w) => tokio::time::timeout(w, work)
            .await
            .map_err(|_| timed_out(w).context(format!("proxy {proxy}")))?,
        None => work.await,
    };
    res.with_context(|| format!("through proxy {proxy} to {host}:{port}"))
}

/// Connects to `addr` (`HOST:PORT`): through `proxy` if given, else directly to each
/// address it resolves to in turn; each attempt within `wait`. Returns the stream and how
/// it got there, for messages (`127.0.0.1:9512`, `example.com:22 through socks5h://...`).
pub async fn connect_tcp(
    addr: &str,
    proxy: Option<&ProxyUrl>,
    wait: Duration,
) -> Result<(TcpStream, String)> {
    if let Some(proxy) = proxy {
        let (host, port) = super::parse_authority(addr)
            .with_context(|| format!("bad address {addr:?}: expected HOST:PORT or [V6]:PORT"))?;
        let stream = dial(proxy, &host, port, Some(wait)).await?;
        return Ok((stream, format!("{host}:{port} through {proxy}")));
    }
    let mut last = None;
    for peer in crate::addr::resolve(addr).await? {
        match tokio::time::timeout(wait, TcpStream::connect(peer)).await {
            Ok(Ok(s)) => return Ok((s, peer.to_string())),
            Ok(Err(e)) => {
                last = Some(anyhow::Error::new(e).context(format!("cannot connect to {peer}")))
            }
            Err(_) => last = Some(timed_out(wait).context(format!("cannot connect to {peer}"))),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("{addr:?} resolves to no address")))
}

/// A timeout as an I/O error, which the retry policy knows for one worth another try.
fn timed_out(wait: Duration) -> anyhow::Error {
    let e = std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("timed out: no answer in {} s", wait.as_secs_f64()),
    );
    anyhow::Error::new(e)
}

async fn connect_proxy(proxy: &ProxyUrl) -> Result<TcpStream> {
    let stream = match &proxy.host {
        Host::Ip(ip) => TcpStream::connect(SocketAddr::new(*ip, proxy.port)).await,
        Host::Name(n) => TcpStream::connect((n.as_str(), proxy.port)).await,
    }
    .with_context(|| format!("cannot connect to proxy {proxy}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn socks(stream: &mut TcpStream, proxy: &ProxyUrl, host: &Host, port: u16) -> Result<()> {
    let methods: &[u8] = match proxy.credentials {
        Some(_) => &[socks5::NO_AUTH, socks5::USER_PASS],
        None => &[socks5::NO_AUTH],
    };
    let request = socks5::encode_request(1, host, port)
        .ok_or_else(|| anyhow!("host name too long for SOCKS5 (255 bytes at most)"))?;
    stream.write_all(&socks5::encode_greeting(methods)).await?;
    let mut choice = [0u8; 2];
    stream
        .read_exact(&mut choice)
        .await
        .context("reading the proxy's method choice")?;
    if choice[0] != socks5::VERSION {
        bail!("not a SOCKS5 proxy (it answered version {})", choice[0]);
    }
    match (choice[1], &proxy.credentials) {
        (socks5::NO_AUTH, _) => {}
        (socks5::USER_PASS, Some((user, password))) => {
            let msg = socks5::encode_credentials(user.as_bytes(), password.as_bytes())
                .ok_or_else(|| anyhow!("user name or password too long (255 bytes at most)"))?;
            stream.write_all(&msg).await?;
            let mut status = [0u8; 2];
            stream
                .read_exact(&mut status)
                .await
                .context("reading the proxy's answer to the password")?;
            if status[1] != 0 {
                bail!("the proxy refused the user name and password of {user:?}");
            }
        }
        (socks5::NO_ACCEPTABLE, None) | (socks5::USER_PASS, None) => {
            bail!(
                "the proxy wants a user name and password: put them in the URL (socks5h://USER:PASSWORD@HOST:PORT)"
            )
        }
        (socks5::NO_ACCEPTABLE, Some(_)) => bail!("the proxy accepts none of our methods"),
        (m, _) => bail!("the proxy chose method {m}, which was not offered"),
    }
    stream.write_all(&request).await?;
    // VER REP RSV ATYP and the address's first byte tell how long the rest is.
    let mut reply = vec![0u8; 5];
    stream
        .read_exact(&mut reply)
        .await
        .context("reading the proxy's reply")?;
    let rest = match reply[3] {
        1 => 4 - 1 + 2,
        4 => 16 - 1 + 2,
        3 => usize::from(reply[4]) + 2,
        _ => 0, // a refusal or junk: the parser says which
    };
    if reply[1] == socks5::code::SUCCEEDED && rest > 0 {
        reply.resize(5 + rest, 0);
        stream
            .read_exact(&mut reply[5..])
            .await
            .context("reading the proxy's reply")?;
    }
    match socks5::parse_reply(&reply) {
        Ok(Parsed::Done(..)) => Ok(()),
        Ok(Parsed::Incomplete) => bail!("the proxy's reply is malformed"),
        Err(WireError::Refused(code)) => bail!(
            "the proxy refused: {} (SOCKS reply {code})",
            socks5::reply_text(code)
        ),
        Err(e) => bail!("the proxy's reply is malformed: {e}"),
    }
}

async fn http(stream: &mut TcpStream, proxy: &ProxyUrl, host: &Host, port: u16) -> Result<()> {
    let creds = proxy
        .credentials
        .as_ref()
        .map(|(u, p)| (u.as_str(), p.as_str()));
    stream
        .write_all(&http_connect::encode_connect(host, port, creds))
        .await?;
    // One byte at a time up to the blank line: the tunnel's first bytes may follow at once.
    let mut head = Vec::with_capacity(128);
    loop {
        if head.len() >= MAX_HEAD {
            bail!("the proxy's answer head is too long");
        }
        let b = stream
            .read_u8()
            .await
            .context("reading the proxy's answer")?;
        head.push(b);
        if !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
            continue;
        }
        match http_connect::parse_response(&head) {
            Ok(Parsed::Done((code, _), _)) if (200..300).contains(&code) => return Ok(()),
            Ok(Parsed::Done((407, _), _)) if creds.is_none() => bail!(
                "the proxy wants a user name and password: put them in the URL (http://USER:PASSWORD@HOST:PORT)"
            ),
            Ok(Parsed::Done((407, _), _)) => bail!("the proxy refused the user name and password"),
            Ok(Parsed::Done((code, reason), _)) => {
                bail!(
                    "the proxy answered {code} {}",
                    crate::tty::sanitize(reason.as_bytes())
                )
            }
            Ok(Parsed::Incomplete) => continue,
            Err(e) => bail!("the proxy's answer is not HTTP: {e}"),
        }
    }
}
