//! The HTTP side of a connection: one request head, `CONNECT HOST:PORT` for a tunnel or a
//! plain request for an `http://` URL (passed on rewritten, one per connection: `plain.rs`), checked
//! against the users with `Proxy-Authorization: Basic`; refusals are a status line and an
//! empty body.
use tokio::io::AsyncWriteExt;

use super::{Asked, Failure, Inbox, Users};
use crate::proxy_wire::http_connect::{self, response};
use crate::server::Conn;

/// The challenge a client without (good) credentials gets with its 407.
const CHALLENGE: &str = "Proxy-Authenticate: Basic realm=\"taojie proxy\"";

/// Reads the request from `conn`; what follows its head stays in `inbox`.
pub async fn negotiate(
    conn: &mut Conn,
    inbox: &mut Inbox,
    users: Option<&Users>,
) -> Result<Asked, Failure> {
    let request = match inbox.next(conn, http_connect::parse_request).await {
        Ok(r) => r,
        Err(Failure::Http(e)) => {
            let (code, reason) = e.status();
            let _ = conn.write_all(&response(code, reason, &[])).await;
            return Err(Failure::Http(e));
        }
        Err(e) => return Err(e),
    };
    let mut user = None;
    if let Some(users) = users {
        let ok = match &request.credentials {
            Some(Some(c)) if users.check(&c.user, &c.password).await => {
                user = Some(String::from_utf8_lossy(&c.user).into_owned());
                true
            }
            _ => false,
        };
        if !ok {
            let refusal = response(407, "Proxy Authentication Required", &[CHALLENGE]);
            conn.write_all(&refusal).await?;
            return Err(Failure::Auth(match &request.credentials {
                None => "no Proxy-Authorization".into(),
                Some(None) => "Proxy-Authorization is not Basic".into(),
                Some(Some(c)) => format!(
                    "wrong password for user {:?}",
                    String::from_utf8_lossy(&c.user)
                ),
            }));
        }
    }
    Ok(Asked {
        host: request.host,
        port: request.port,
        user,
        udp: false,
        forward: request.forward,
        body: request.body,
    })
}
