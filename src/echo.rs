//! `taojie serve echo`: echo (RFC 862) over TCP, UDP and Unix sockets, plain or `--upper`
//! (ASCII upper-case, as the seeds' servers answer).
//!
//! The stream handler keeps no buffer while a connection is idle: it waits for readiness, then
//! reads into a per-thread scratch buffer and writes straight back. Only bytes the peer is too
//! slow to take are copied into a per-connection buffer, and while any are pending nothing more
//! is read, so a client that stops reading holds at most one scratch buffer's worth.
use std::borrow::Cow;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::server::{self, Conn, DatagramService, LiveLimits};

/// Default echo port on `taojie serve` (RFC 862's port 7, moved above 1024).
pub const DEFAULT_PORT: u16 = 9007;

const SCRATCH_LEN: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_LEN]);
}

/// What `echo::serve` runs: the sockets to listen on and how to answer. With no address at
/// all, TCP and UDP on 127.0.0.1:9007.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// TCP address to listen on, e.g. `127.0.0.1:9007` or `[::1]:0`.
    pub listen: Option<String>,
    /// UDP address to listen on.
    pub udp: Option<String>,
    /// Unix-domain socket path to listen on.
    pub unix: Option<PathBuf>,
    /// Answer in ASCII upper case instead of echoing unchanged.
    pub upper: bool,
    /// Connection limits (TCP and Unix).
    pub limits: LiveLimits,
}

/// Runs the echo service on every socket `args` names (TCP and UDP on 127.0.0.1:9007 when it
/// names none) until `shutdown` is cancelled.
pub async fn serve(args: Options, shutdown: CancellationToken) -> Result<()> {
    let default = format!("127.0.0.1:{DEFAULT_PORT}");
    let (tcp, udp) = match (&args.listen, &args.udp, &args.unix) {
        (None, None, None) => (Some(default.clone()), Some(default)),
        (l, u, _) => (l.clone(), u.clone()),
    };
    let limits = args.limits;
    let upper = args.upper;
    let mut listeners = Vec::new();
    if let Some(addr) = tcp {
        listeners.push(server::listen_tcp(&addr).await?);
    }
    if let Some(path) = &args.unix {
        listeners.push(server::bind_unix(path)?);
    }
    let udp = match udp {
        Some(addr) => Some(server::listen_udp(&addr).await?),
        None => None,
    };

    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        server::announce("echo", listener.proto(), &listener.local_display());
        let shutdown = shutdown.clone().cancelled_owned();
        tasks.spawn(server::serve_stream(
            "echo",
            listener,
            limits.clone(),
            move |conn| echo_stream(conn, upper),
            shutdown,
        ));
    }
    if let Some(socket) = udp {
        server::announce("echo", "udp", &socket.local_addr()?);
        let shutdown = shutdown.clone().cancelled_owned();
        tasks.spawn(server::serve_datagram(
            "echo",
            socket,
            EchoDatagram { upper },
            shutdown,
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Echoes one stream connection until the peer half-closes, then flushes and half-closes too.
pub async fn echo_stream(mut conn: Conn, upper: bool) -> io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if !pending.is_empty() {
            conn.writable().await?;
            match conn.try_write(&pending) {
                Ok(n) => drop(pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            continue;
        }
        conn.readable().await?;
        let eof = SCRATCH.with_borrow_mut(|buf| echo_ready(&conn, buf, upper, &mut pending))?;
        if eof {
            conn.write_all(&pending).await?;
            return conn.shutdown().await;
        }
    }
}

/// Reads what is there and writes it back; whatever the socket does not take goes to
/// `pending`. Returns true on end of stream.
fn echo_ready(conn: &Conn, buf: &mut [u8], upper: bool, pending: &mut Vec<u8>) -> io::Result<bool> {
    let n = match conn.try_read(buf) {
        Ok(0) => return Ok(true),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
        Err(e) => return Err(e),
    };
    let data = &mut buf[..n];
    if upper {
        data.make_ascii_uppercase();
    }
    let mut written = 0;
    while written < n {
        match conn.try_write(&data[written..]) {
            Ok(m) => written += m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                pending.extend_from_slice(&data[written..]);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// The UDP side: each datagram comes back as it came, or upper-cased.
struct EchoDatagram {
    upper: bool,
}

impl DatagramService for EchoDatagram {
    fn respond<'a>(&mut self, request: &'a mut [u8], _peer: SocketAddr) -> Option<Cow<'a, [u8]>> {
        if self.upper {
            request.make_ascii_uppercase();
        }
        Some(Cow::Borrowed(request))
    }
}
