//! The SOCKS5 side of a connection: method, username/password if the proxy has users, the
//! request; refusals answered with the reply code RFC 1928 has for them.
use tokio::io::AsyncWriteExt;

use super::{Asked, Failure, Inbox, Users};
use crate::proxy_wire::socks5::{self, Command, WireError, code};
use crate::server::Conn;

/// Reads the greeting, the credentials and the request from `conn`; what follows the
/// request stays in `inbox`.
pub async fn negotiate(
    conn: &mut Conn,
    inbox: &mut Inbox,
    users: Option<&Users>,
) -> Result<Asked, Failure> {
    let greeting = inbox.next(conn, socks5::parse_greeting).await?;
    let method = match users {
        Some(_) if greeting.methods.contains(&socks5::USER_PASS) => socks5::USER_PASS,
        None if greeting.methods.contains(&socks5::NO_AUTH) => socks5::NO_AUTH,
        _ => socks5::NO_ACCEPTABLE,
    };
    conn.write_all(&[socks5::VERSION, method]).await?;
    let mut user = None;
    match method {
        socks5::NO_ACCEPTABLE => {
            return Err(Failure::Auth(
                "no acceptable authentication method offered".into(),
            ));
        }
        socks5::USER_PASS => {
            let creds = inbox.next(conn, socks5::parse_credentials).await?;
            let ok = match users {
                Some(u) => u.check(&creds.user, &creds.password).await,
                None => false,
            };
            let name = String::from_utf8_lossy(&creds.user).into_owned();
            conn.write_all(&[socks5::USER_PASS_VERSION, if ok { 0 } else { 1 }])
                .await?;
            if !ok {
                return Err(Failure::Auth(format!("wrong password for user {name:?}")));
            }
            user = Some(name);
        }
        _ => {}
    }
    let request = match inbox.next(conn, socks5::parse_request).await {
        Ok(r) => r,
        Err(Failure::Socks(e)) => {
            let c = match e {
                WireError::AddressType(_) => code::ADDRESS_TYPE_NOT_SUPPORTED,
                _ => code::FAILURE,
            };
            let _ = conn.write_all(&socks5::reply(c, None)).await;
            return Err(Failure::Socks(e));
        }
        Err(e) => return Err(e),
    };
    if !matches!(request.command, Command::Connect | Command::UdpAssociate) {
        conn.write_all(&socks5::reply(code::COMMAND_NOT_SUPPORTED, None))
            .await?;
        return Err(Failure::Unsupported(format!("{:?}", request.command)));
    }
    Ok(Asked {
        host: request.host,
        port: request.port,
        user,
        udp: request.command == Command::UdpAssociate,
        forward: None,
        body: 0,
    })
}
