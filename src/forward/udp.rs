//! Forwarding UDP, as socat's `UDP-LISTEN,fork`: every client address gets a session of its
//! own — a socket connected to the target, so the target's answers come back on it and go
//! to that client alone — that ends after a quiet spell (`--udp-timeout`) with no datagram
//! either way. Sessions count against `--max-conns`; a datagram that would open one more is
//! dropped. One log line per session when it ends.
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::debug;

use super::Options;
use crate::pump::Session;
use crate::server::{self, Datagrams};

/// One client's session.
struct Entry {
    /// Connected to the target.
    socket: UdpSocket,
    /// Milliseconds after `epoch` of the last datagram either way.
    last: AtomicU64,
    epoch: Instant,
    log: Mutex<Session>,
}

impl Entry {
    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    fn quiet_since(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

type Table = Arc<Mutex<HashMap<SocketAddr, Arc<Entry>>>>;

/// Binds LISTEN, announces it, and forwards until `shutdown`.
pub(super) async fn run(
    opts: &Options,
    listen: &str,
    target: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let service = opts.service;
    let target_addr = crate::addr::resolve_one(target).await?;
    let socket = Arc::new(server::listen_udp(listen).await?);
    server::announce(service, "udp", &socket.local_addr()?);
    let meter = crate::metrics::service(service);
    let table: Table = Arc::default();
    let mut sessions = JoinSet::new();
    let mut incoming = Datagrams::new(service, &socket, shutdown);
    while let Some((datagram, peer)) = incoming.next().await {
        let found = table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&peer)
            .cloned();
        let entry = match found {
            Some(e) => e,
            None => {
                let open = table.lock().unwrap_or_else(|e| e.into_inner()).len();
                if open >= opts.limits.now().max_conns {
                    meter.refused("connection limit");
                    continue;
                }
                let entry = match open_session(service, peer, target_addr).await {
                    Ok(e) => Arc::new(e),
                    Err(e) => {
                        debug!(%peer, error = %format!("{e:#}"), "udp session not opened");
                        continue;
                    }
                };
                meter.accepted.inc();
                meter.open.inc();
                table
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(peer, entry.clone());
                let back = Back {
                    entry: entry.clone(),
                    listen: socket.clone(),
                    peer,
                    idle: opts.udp_timeout,
                    table: table.clone(),
                    meter,
                };
                sessions.spawn(back.run());
                // Reap finished sessions' results as we go, so the set does not grow.
                while sessions.try_join_next().is_some() {}
                entry
            }
        };
        entry.touch();
        match entry.socket.send(datagram).await {
            Ok(n) => {
                let log = entry.log.lock().unwrap_or_else(|e| e.into_inner());
                log.totals.up.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => debug!(%peer, error = %e, "udp send to the target failed"),
        }
    }
    // Shutdown: every session ends now (UDP has nothing to finish).
    sessions.shutdown().await;
    Ok(())
}

/// A socket connected to the target, from the wildcard address of its family.
async fn open_session(
    service: &'static str,
    peer: SocketAddr,
    target: SocketAddr,
) -> Result<Entry> {
    let local: SocketAddr = if target.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.context("udp socket")?;
    socket.connect(target).await.context("udp connect")?;
    Ok(Entry {
        socket,
        last: AtomicU64::new(0),
        epoch: Instant::now(),
        log: Mutex::new(Session::new(service, peer, format!("udp:{target}"))),
    })
}

/// A session's way back: the target's datagrams to the client, until the session is quiet
/// for `idle`.
struct Back {
    entry: Arc<Entry>,
    listen: Arc<UdpSocket>,
    peer: SocketAddr,
    idle: Duration,
    table: Table,
    meter: &'static crate::metrics::Service,
}

impl Back {
    async fn run(self) {
        let mut buf = vec![0u8; u16::MAX as usize + 1];
        loop {
            let deadline = self.entry.quiet_since() + self.idle;
            tokio::select! {
                got = self.entry.socket.recv(&mut buf) => match got {
                    Ok(n) => {
                        self.entry.touch();
                        match self.listen.send_to(&buf[..n], self.peer).await {
                            Ok(sent) => {
                                self.meter.bytes_out.inc_by(sent as u64);
                                let log = self.entry.log.lock().unwrap_or_else(|e| e.into_inner());
                                log.totals.down.fetch_add(sent as u64, Ordering::Relaxed);
                            }
                            Err(e) => debug!(peer = %self.peer, error = %e, "udp send to the client failed"),
                        }
                    }
                    // An ICMP error from the target (nothing listening yet): it may come up.
                    Err(e) => debug!(peer = %self.peer, error = %e, "udp receive from the target failed"),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if self.entry.quiet_since() + self.idle <= Instant::now() {
                        break;
                    }
                }
            }
        }
        let idle = self.idle.as_secs_f64();
        self.entry
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ended(format!("quiet for {idle} s"));
    }
}

impl Drop for Back {
    fn drop(&mut self) {
        // However the session ends (quiet, or cut at shutdown), its place is freed.
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.peer);
        self.meter.open.dec();
    }
}
