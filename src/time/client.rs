//! `taojie time`: the seed's UDP client grown up (timeouts and retries, errors on stderr), the
//! daytime client, and the request/retry loop the SNTP client shares.
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout, timeout_at};

/// Most bytes read from a daytime server: the line is short, a server that streams is wrong.
const MAX_DAYTIME: u64 = 64 * 1024;

/// How long to wait and how often to ask again.
#[derive(Clone, Copy, Debug)]
pub struct Patience {
    /// Wait for an answer this long per try (and per connect and read over TCP).
    pub timeout: Duration,
    /// Requests sent in all (one plus the retries).
    pub tries: u32,
}

/// One UDP request/answer protocol: what to send and which answers to take.
pub trait Exchange {
    /// What a good answer yields.
    type Out;
    /// The bytes of the next try's request.
    fn request(&mut self) -> Vec<u8>;
    /// Judges one datagram that arrived at `received`: `Ok(None)` drops it and keeps waiting
    /// (a late answer to an earlier try, say), `Err` ends the exchange.
    fn answer(&mut self, bytes: &[u8], received: SystemTime) -> Result<Option<Self::Out>>;
}

/// Sends `ex`'s request to `addr` and waits for an answer it takes, trying again after each
/// timeout up to `patience.tries` times.
pub async fn ask_udp<E: Exchange>(
    addr: SocketAddr,
    patience: Patience,
    ex: &mut E,
) -> Result<E::Out> {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let socket = UdpSocket::bind(local)
        .await
        .context("cannot open a UDP socket")?;
    // Connected, so datagrams from anyone else are dropped by the kernel and an ICMP port
    // unreachable comes back as "connection refused" instead of a silent timeout.
    socket
        .connect(addr)
        .await
        .with_context(|| format!("cannot reach udp {addr}"))?;
    let mut buf = vec![0u8; 65_536];
    for _ in 0..patience.tries.max(1) {
        let request = ex.request();
        socket
            .send(&request)
            .await
            .with_context(|| format!("cannot send to udp {addr}"))?;
        let deadline = Instant::now() + patience.timeout;
        loop {
            let n = match timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(n)) => n,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    bail!("nothing listens on udp {addr} (connection refused)")
                }
                Ok(Err(e)) => return Err(e).with_context(|| format!("udp {addr}")),
            };
            let received = SystemTime::now();
            if let Some(out) = ex.answer(&buf[..n], received)? {
                return Ok(out);
            }
        }
    }
    bail!(
        "no answer from udp {addr} after {} tries, {:.1} s each",
        patience.tries.max(1),
        patience.timeout.as_secs_f64()
    )
}

/// The seed's exchange: the format out, the answer's text back.
struct Strftime(Vec<u8>);

impl Exchange for Strftime {
    type Out = String;
    fn request(&mut self) -> Vec<u8> {
        self.0.clone()
    }
    fn answer(&mut self, bytes: &[u8], _: SystemTime) -> Result<Option<String>> {
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// Asks the seed's UDP time service; an `error: ...` answer goes to stderr with exit 1.
pub async fn strftime(
    addr: SocketAddr,
    format: Option<&str>,
    patience: Patience,
) -> Result<ExitCode> {
    let request = format.unwrap_or("").as_bytes().to_vec();
    let answer = ask_udp(addr, patience, &mut Strftime(request)).await?;
    if answer.starts_with("error: ") {
        eprintln!("taojie: {addr} answered: {answer}");
        return Ok(ExitCode::FAILURE);
    }
    println!("{answer}");
    Ok(ExitCode::SUCCESS)
}

/// Reads a daytime (RFC 867) server's line to end of stream and prints it.
pub async fn daytime(addrs: &[SocketAddr], patience: Patience) -> Result<ExitCode> {
    let mut last_err = None;
    let mut stream = None;
    for &addr in addrs {
        match timeout(patience.timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some((s, addr));
                break;
            }
            Ok(Err(e)) => {
                last_err =
                    Some(anyhow::Error::new(e).context(format!("cannot connect to tcp {addr}")))
            }
            Err(_) => {
                last_err = Some(anyhow::anyhow!(
                    "no connection to tcp {addr} within {:.1} s",
                    patience.timeout.as_secs_f64()
                ))
            }
        }
    }
    let Some((stream, addr)) = stream else {
        return Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no address to connect to")));
    };
    let mut got = Vec::new();
    let mut limited = stream.take(MAX_DAYTIME);
    match timeout(patience.timeout, limited.read_to_end(&mut got)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e).with_context(|| format!("reading from tcp {addr}")),
        Err(_) => bail!(
            "tcp {addr} sent no end of stream within {:.1} s",
            patience.timeout.as_secs_f64()
        ),
    }
    let text = String::from_utf8_lossy(&got);
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        bail!("tcp {addr} closed without sending the time");
    }
    println!("{}", text.replace("\r\n", "\n"));
    Ok(ExitCode::SUCCESS)
}
