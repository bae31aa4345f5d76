//! SOCKS5 UDP ASSOCIATE: a UDP socket of its own per association, on the address the client
//! reached the proxy at, for as long as the client keeps the TCP connection open. The client
//! sends datagrams with a SOCKS header naming their destination; each destination is checked
//! against the rules, and the payload goes on from the association's socket. Datagrams come
//! back to the client, with a header naming their source, only from destinations it sent to,
//! and only the client's own address (the TCP peer's, and the port it named if it named one)
//! may use the association.
use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::rules::{Action, Rules};
use super::{Asked, SERVICE};
use crate::proxy_wire::Host;
use crate::proxy_wire::socks5::{self, code};
use crate::server::{self, Conn, Peer};

/// The largest datagram relayed (a UDP payload's limit).
const MAX_DATAGRAM: usize = 65_535;
/// Destinations one association may send to (a bound on what it remembers).
const MAX_DESTINATIONS: usize = 1024;

/// Serves one association until the client closes its TCP connection.
pub(super) async fn associate(
    mut conn: Conn,
    asked: Asked,
    rules: &Rules,
    wait: Duration,
) -> io::Result<()> {
    let peer = conn.peer().clone();
    let Peer::Tcp(client) = peer else {
        return Ok(());
    };
    let local = socket2::SockRef::from(&conn).local_addr()?;
    let local = local
        .as_socket()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let socket = match UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await {
        Ok(s) => s,
        Err(e) => {
            let _ = conn.write_all(&socks5::reply(code::FAILURE, None)).await;
            return Err(e);
        }
    };
    conn.write_all(&socks5::reply(code::SUCCEEDED, Some(socket.local_addr()?)))
        .await?;
    // The port the client said it would send from, if it said one.
    let named_port = (asked.port != 0).then_some(asked.port);
    let mut client_at: Option<SocketAddr> = None;
    let mut sent_to: HashSet<SocketAddr> = HashSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM + 262];
    let mut control = [0u8; 64];
    loop {
        let (n, from) = tokio::select! {
            // Anything more on the TCP connection, or its end, ends the association.
            r = conn.read(&mut control) => match r {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => continue,
            },
            r = socket.recv_from(&mut buf[262..]) => r?,
        };
        conn.activity().touch();
        let from_client = from.ip().to_canonical() == client.ip().to_canonical()
            && named_port.is_none_or(|p| p == from.port())
            && client_at.is_none_or(|c| c == from);
        if from_client {
            client_at = Some(from);
            let data = &buf[262..262 + n];
            let Ok(Some((host, port, at))) = socks5::parse_udp_header(data) else {
                continue;
            };
            let Some(to) = destination(rules, &host, port, wait, &peer).await else {
                continue;
            };
            if sent_to.len() < MAX_DESTINATIONS || sent_to.contains(&to) {
                sent_to.insert(to);
                let _ = socket.send_to(&data[at..], to).await;
            }
        } else if let Some(c) = client_at
            && sent_to.contains(&from)
        {
            // The header goes in front of the payload, in the room left before it.
            let header = socks5::encode_udp_header(&Host::Ip(from.ip()), from.port());
            let start = 262 - header.len();
            buf[start..262].copy_from_slice(&header);
            let _ = socket.send_to(&buf[start..262 + n], c).await;
        }
    }
}

/// Where a datagram for `host:port` goes, if the rules allow it.
async fn destination(
    rules: &Rules,
    host: &Host,
    port: u16,
    wait: Duration,
    peer: &Peer,
) -> Option<SocketAddr> {
    let (name, ip): (Option<&str>, IpAddr) = match host {
        Host::Ip(ip) => (None, *ip),
        Host::Name(n) => {
            if let Some(v) = rules.decide_name(n, port)
                && v.action == Action::Deny
            {
                server::refused(
                    SERVICE,
                    "datagram denied",
                    peer,
                    &format!("{n}:{port}: {}", v.why),
                );
                return None;
            }
            let found = tokio::time::timeout(wait, tokio::net::lookup_host((n.as_str(), port)))
                .await
                .ok()?
                .ok()?
                .next()?;
            (Some(n.as_str()), found.ip())
        }
    };
    let v = rules.decide(name, ip, port);
    if v.action == Action::Deny {
        server::refused(
            SERVICE,
            "datagram denied",
            peer,
            &format!("{host}:{port}: {}", v.why),
        );
        return None;
    }
    Some(SocketAddr::new(ip, port))
}
