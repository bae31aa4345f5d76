//! Ports for tests, none of them found free and then let go: a port released after a check
//! can be taken by any other test (or engineer) before it is used.
//!
//! - A server of ours binds port 0 and prints the port it got (`common::Server`).
//! - A port nothing answers on is held by the test for as long as it is used:
//!   [`refused_tcp`] (bound, never listening: a connection is reset at once) and
//!   [`unreachable_udp`] (bound and connected elsewhere: a datagram gets port-unreachable).
//! - A peer that must be told a port (nc, ncat, nginx bind no port 0 and say which they got)
//!   is given an [`unused_port`], and the test then checks with [`wait_held`] that the peer
//!   itself and nothing else holds it; if not, it starts the peer again on another.
use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::Child;
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that refuses connections while the returned socket lives: bound
/// and not listening, so no one else can bind it meanwhile. Returns the socket and its address.
pub fn refused_tcp() -> (socket2::Socket, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let hold = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    hold.bind(&any.into()).unwrap();
    let addr = hold.local_addr().unwrap().as_socket().unwrap();
    (hold, addr)
}

/// A UDP port on 127.0.0.1 that answers every datagram with port-unreachable while the
/// returned socket lives: bound (no one else can bind it) and connected to another port, so
/// the kernel hands it nothing from anyone else. Returns the socket and its address.
pub fn unreachable_udp() -> (UdpSocket, SocketAddr) {
    let hold = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The discard port: only a source address, nothing is ever sent there.
    hold.connect("127.0.0.1:9").unwrap();
    let addr = hold.local_addr().unwrap();
    (hold, addr)
}

/// A port number for a peer that must be told one: free on 127.0.0.1 and [::1] for TCP (or
/// UDP) just now, below the kernel's ephemeral range (no port-0 bind hands it out), spread
/// by PID and a counter. Free *now* only: follow it with [`wait_held`] once the peer runs.
pub fn unused_port(udp: bool) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u32 = range
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32768);
    let span = low.saturating_sub(10_000).max(1);
    // Each call starts somewhere else: the PID and a counter spread the tries.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) + NEXT.fetch_add(4099, Ordering::Relaxed);
    for i in 0..200u32 {
        let port = (low - span + (start + i * 613) % span) as u16;
        let free = if udp {
            UdpSocket::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("::1", port)).is_ok()
        } else {
            TcpListener::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("::1", port)).is_ok()
        };
        if free {
            return port;
        }
    }
    panic!("no unused port below the ephemeral range {range:?}");
}

/// The inodes of the sockets on local `port`: TCP ones listening, UDP ones bound (any state).
fn sockets_on(udp: bool, port: u16) -> HashSet<u64> {
    let files = match udp {
        true => ["/proc/net/udp", "/proc/net/udp6"],
        false => ["/proc/net/tcp", "/proc/net/tcp6"],
    };
    let want = format!(":{port:04X}");
    let mut found = HashSet::new();
    for file in files {
        let table = std::fs::read_to_string(file).unwrap_or_default();
        for line in table.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let listening = udp || cols.get(3) == Some(&"0A");
            if cols.len() > 9 && cols[1].ends_with(&want) && listening {
                found.extend(cols[9].parse::<u64>().ok().filter(|&i| i != 0));
            }
        }
    }
    found
}

/// The inodes of the sockets process `pid` has open.
fn sockets_of(pid: u32) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Waits (up to `limit`) until `peer` holds `port` (TCP: listens on it; UDP: is bound to it)
/// and nothing else does. An error says why not (the peer exited, perhaps on "address in
/// use", or another process holds the port too): the caller starts the peer again on
/// another port, so that no test ever talks to someone else's program.
pub fn wait_held(peer: &mut Child, udp: bool, port: u16, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = peer.try_wait() {
            return Err(format!(
                "the peer exited ({status}) before holding port {port}"
            ));
        }
        let on_port = sockets_on(udp, port);
        if !on_port.is_empty() {
            let mine = sockets_of(peer.id());
            if on_port.is_subset(&mine) {
                return Ok(());
            }
            if !on_port.is_disjoint(&mine) {
                return Err(format!("port {port} is held by another process too"));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the peer did not hold port {port} within {limit:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
