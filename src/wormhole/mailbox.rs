//! The mailbox server's client: one WebSocket, JSON messages each way. It binds, claims a
//! nameplate (allocating one first if asked), opens the mailbox, adds messages and reads the
//! ones delivered; acks, pongs and types it does not know are skipped.
//!
//! When the connection drops (the server restarts, a middlebox cuts it), the client dials
//! again with backoff for [`RECONNECT_FOR`] and picks up where it was, as the server protocol
//! allows: it binds with the same side, claims the nameplate again (unless released), opens
//! the mailbox again (the server then delivers every message in it once more; the session
//! above drops the ones it has), and adds again each of its messages not yet echoed back.
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::messages::{ClientMsg, MAX_MESSAGE, MailboxMessage, ServerMsg};

/// How long the server may take to answer a command (connect, welcome, claimed, ...).
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a lost connection is dialled again before the client gives up.
pub const RECONNECT_FOR: Duration = Duration::from_secs(60);
/// The first pause between two dials; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// The longest pause between two dials.
const BACKOFF_MAX: Duration = Duration::from_secs(4);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connection to the mailbox server, bound to an application and a side.
pub struct MailboxClient {
    ws: Ws,
    url: String,
    appid: String,
    side: String,
    /// The `motd` of the server's welcome, if any.
    pub motd: Option<String>,
    /// What a new connection must say again to be where this one was.
    state: Resume,
    /// How many times the connection was lost and made again.
    pub reconnects: u32,
}

/// The client's standing with the server, replayed on a new connection.
#[derive(Debug, Default)]
struct Resume {
    /// An `allocate` or `list` still waiting for its answer.
    asking: Option<ClientMsg>,
    /// The nameplate claimed and not released.
    claimed: Option<String>,
    /// The mailbox opened.
    opened: Option<String>,
    /// Our messages (phase, body) the server has not echoed back yet.
    unechoed: Vec<(String, String)>,
    /// The `close` sent, if closing.
    closing: Option<ClientMsg>,
}

impl Resume {
    /// Notes a command about to be sent.
    fn note(&mut self, msg: &ClientMsg) {
        match msg {
            ClientMsg::Allocate | ClientMsg::List => self.asking = Some(msg.clone()),
            ClientMsg::Claim { nameplate } => self.claimed = Some(nameplate.clone()),
            ClientMsg::Release { .. } => self.claimed = None,
            ClientMsg::Open { mailbox } => self.opened = Some(mailbox.clone()),
            ClientMsg::Add { phase, body } => self.unechoed.push((phase.clone(), body.clone())),
            ClientMsg::Close { .. } => self.closing = Some(msg.clone()),
            ClientMsg::Bind { .. } | ClientMsg::Ping { .. } => {}
        }
    }

    /// Notes a message from the server (an answer, our own message echoed).
    fn seen(&mut self, msg: &ServerMsg, side: &str) {
        match msg {
            ServerMsg::Allocated { .. } | ServerMsg::Nameplates { .. } => self.asking = None,
            ServerMsg::Message(m) if m.side == side => self.unechoed.retain(|(p, _)| *p != m.phase),
            _ => {}
        }
    }

    /// The commands that bring a new connection to where the old one was, in order.
    fn replay(&self) -> Vec<ClientMsg> {
        let mut out = Vec::new();
        if let Some(nameplate) = &self.claimed {
            out.push(ClientMsg::Claim {
                nameplate: nameplate.clone(),
            });
        }
        if let Some(mailbox) = &self.opened {
            out.push(ClientMsg::Open {
                mailbox: mailbox.clone(),
            });
        }
        out.extend(self.unechoed.iter().map(|(phase, body)| ClientMsg::Add {
            phase: phase.clone(),
            body: body.clone(),
        }));
        out.extend(self.asking.clone());
        out.extend(self.closing.clone());
        out
    }
}

/// Connects to `url`, reads the welcome (a welcome `error` is the error) and binds.
async fn dial(url: &str, appid: &str, side: &str) -> Result<(Ws, Option<String>)> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (mut ws, _) = tokio::time::timeout(
        SERVER_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    .map_err(|_| anyhow!("the mailbox server at {url} did not answer"))?
    .with_context(|| format!("cannot reach the mailbox server at {url}"))?;
    let welcome = tokio::time::timeout(SERVER_TIMEOUT, next_raw(&mut ws))
        .await
        .map_err(|_| anyhow!("the mailbox server stopped answering"))??;
    let welcome = match welcome {
        ServerMsg::Welcome { welcome } => welcome,
        other => bail!("the mailbox server did not welcome us (it sent {other:?})"),
    };
    if let Some(err) = welcome.get("error").and_then(|e| e.as_str()) {
        bail!("the mailbox server says: {err}");
    }
    let motd = welcome
        .get("motd")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let bind = ClientMsg::Bind {
        appid: appid.into(),
        side: side.into(),
        client_version: Some(("taojie".into(), env!("CARGO_PKG_VERSION").into())),
    };
    write_raw(&mut ws, &bind).await?;
    Ok((ws, motd))
}

/// Writes one command, with a random `id` as the Python client adds (for the server's logs).
async fn write_raw(ws: &mut Ws, msg: &ClientMsg) -> Result<()> {
    let mut v = serde_json::to_value(msg)?;
    let mut id = [0u8; 2];
    getrandom::fill(&mut id).expect("the system's random source");
    v["id"] = super::messages::hex(&id).into();
    ws.send(Message::text(v.to_string()))
        .await
        .context("lost the mailbox server")
}

/// Why reading stopped: the connection is gone (worth dialling again) or the server said no.
enum ReadError {
    Lost(anyhow::Error),
    Refused(anyhow::Error),
}

/// The next message that is not an ack, a pong or of an unknown type, on this connection.
async fn next_raw(ws: &mut Ws) -> Result<ServerMsg> {
    next_or_lost(ws).await.map_err(|e| match e {
        ReadError::Lost(e) | ReadError::Refused(e) => e,
    })
}

async fn next_or_lost(ws: &mut Ws) -> Result<ServerMsg, ReadError> {
    loop {
        let msg = match ws.next().await {
            None => {
                return Err(ReadError::Lost(anyhow!(
                    "the mailbox server closed the connection"
                )));
            }
            Some(Err(e)) => {
                return Err(ReadError::Lost(
                    anyhow::Error::new(e).context("lost the mailbox server"),
                ));
            }
            Some(Ok(m)) => m,
        };
        let data = match msg {
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Binary(b) => b.to_vec(),
            Message::Close(_) => {
                return Err(ReadError::Lost(anyhow!(
                    "the mailbox server closed the connection"
                )));
            }
            _ => continue,
        };
        let parsed: ServerMsg = serde_json::from_slice(&data)
            .context("the mailbox server sent a message that is not one")
            .map_err(ReadError::Refused)?;
        match parsed {
            ServerMsg::Ack | ServerMsg::Pong { .. } | ServerMsg::Unknown => continue,
            ServerMsg::Error { error, .. } => {
                return Err(ReadError::Refused(anyhow!(
                    "the mailbox server says: {error}"
                )));
            }
            other => return Ok(other),
        }
    }
}

impl MailboxClient {
    /// Connects to `url` (`ws://HOST:PORT/v1`), reads the welcome (a welcome `error` is
    /// the error) and binds `appid` and `side`. A first connection that fails is an error at
    /// once (a wrong URL should not keep the user waiting); later losses are dialled again.
    pub async fn connect(url: &str, appid: &str, side: &str) -> Result<MailboxClient> {
        if !url.starts_with("ws://") {
            bail!("the relay URL must start with ws:// (got {url})");
        }
        let (ws, motd) = dial(url, appid, side).await?;
        Ok(MailboxClient {
            ws,
            url: url.into(),
            appid: appid.into(),
            side: side.into(),
            motd,
            state: Resume::default(),
            reconnects: 0,
        })
    }

    /// Dials again with backoff until a new connection is bound and has been brought to where
    /// the lost one was; gives up (with `why`) after [`RECONNECT_FOR`].
    async fn reconnect(&mut self, why: anyhow::Error) -> Result<()> {
        eprintln!("lost the mailbox server ({why:#}); connecting again...");
        let deadline = tokio::time::Instant::now() + RECONNECT_FOR;
        let mut pause = BACKOFF_FIRST;
        let mut last = why;
        loop {
            if tokio::time::Instant::now() + pause > deadline {
                return Err(last.context(format!(
                    "lost the mailbox server and could not reach it again in {}s",
                    RECONNECT_FOR.as_secs()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(BACKOFF_MAX);
            let attempt = async {
                let (mut ws, _) = dial(&self.url, &self.appid, &self.side).await?;
                for msg in self.state.replay() {
                    write_raw(&mut ws, &msg).await?;
                }
                Ok::<_, anyhow::Error>(ws)
            };
            match attempt.await {
                Ok(ws) => {
                    self.ws = ws;
                    self.reconnects += 1;
                    eprintln!("reconnected to the mailbox server");
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
    }

    /// Sends one command (on a new connection if this one is lost).
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<()> {
        self.state.note(msg);
        match write_raw(&mut self.ws, msg).await {
            Ok(()) => Ok(()),
            // The replay on the new connection carries `msg` (noted above).
            Err(e) => self.reconnect(e).await,
        }
    }

    /// The next message that is not an ack, a pong or of an unknown type. A server `error`
    /// is an error here; a lost connection is made again.
    pub async fn recv(&mut self) -> Result<ServerMsg> {
        loop {
            match next_or_lost(&mut self.ws).await {
                Ok(m) => {
                    self.state.seen(&m, &self.side);
                    return Ok(m);
                }
                Err(ReadError::Refused(e)) => return Err(e),
                Err(ReadError::Lost(e)) => self.reconnect(e).await?,
            }
        }
    }

    /// [`recv`](Self::recv) within [`SERVER_TIMEOUT`].
    pub async fn recv_timeout(&mut self) -> Result<ServerMsg> {
        tokio::time::timeout(SERVER_TIMEOUT, self.recv())
            .await
            .map_err(|_| anyhow!("the mailbox server stopped answering"))?
    }

    /// Allocates a nameplate.
    pub async fn allocate(&mut self) -> Result<String> {
        self.send(&ClientMsg::Allocate).await?;
        loop {
            if let ServerMsg::Allocated { nameplate } = self.recv_timeout().await? {
                return Ok(nameplate);
            }
        }
    }

    /// The nameplates in use.
    pub async fn list(&mut self) -> Result<Vec<String>> {
        self.send(&ClientMsg::List).await?;
        loop {
            if let ServerMsg::Nameplates { nameplates } = self.recv_timeout().await? {
                return Ok(nameplates.into_iter().map(|n| n.id).collect());
            }
        }
    }

    /// Claims `nameplate` and opens its mailbox.
    pub async fn claim_and_open(&mut self, nameplate: &str) -> Result<String> {
        self.send(&ClientMsg::Claim {
            nameplate: nameplate.into(),
        })
        .await?;
        let mailbox = loop {
            if let ServerMsg::Claimed { mailbox } = self.recv_timeout().await? {
                break mailbox;
            }
        };
        self.send(&ClientMsg::Open {
            mailbox: mailbox.clone(),
        })
        .await?;
        Ok(mailbox)
    }

    /// The next mailbox message; other server messages (released, ...) are skipped.
    pub async fn next_message(&mut self) -> Result<MailboxMessage> {
        loop {
            if let ServerMsg::Message(m) = self.recv().await? {
                return Ok(m);
            }
        }
    }

    /// Releases the nameplate (without waiting for `released`).
    pub async fn release(&mut self, nameplate: &str) -> Result<()> {
        self.send(&ClientMsg::Release {
            nameplate: Some(nameplate.into()),
        })
        .await
    }

    /// Closes the mailbox with `mood`, waits (bounded) for `closed` and closes the socket.
    pub async fn close(mut self, mailbox: Option<&str>, mood: &str) {
        if let Some(mailbox) = mailbox {
            let sent = self
                .send(&ClientMsg::Close {
                    mailbox: Some(mailbox.into()),
                    mood: Some(mood.into()),
                })
                .await;
            if sent.is_ok() {
                // Our last messages (an answer, an ack) must reach the peer: while one is not
                // echoed back yet, the wait covers a reconnection.
                let limit = if self.state.unechoed.is_empty() {
                    Duration::from_secs(5)
                } else {
                    RECONNECT_FOR + Duration::from_secs(5)
                };
                let wait = async {
                    while let Ok(m) = self.recv().await {
                        if m == ServerMsg::Closed {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(limit, wait).await;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(phase: &str) -> ClientMsg {
        ClientMsg::Add {
            phase: phase.into(),
            body: "00".into(),
        }
    }

    #[test]
    fn a_new_connection_is_brought_back_to_where_the_old_one_was() {
        let mut r = Resume::default();
        r.note(&ClientMsg::Allocate);
        r.seen(
            &ServerMsg::Allocated {
                nameplate: "7".into(),
            },
            "me",
        );
        r.note(&ClientMsg::Claim {
            nameplate: "7".into(),
        });
        r.note(&ClientMsg::Open {
            mailbox: "mb".into(),
        });
        r.note(&add("pake"));
        r.note(&add("version"));
        // Our pake came back from the server; the peer's version is not ours.
        let echo = |side: &str, phase: &str| {
            ServerMsg::Message(MailboxMessage {
                side: side.into(),
                phase: phase.into(),
                body: "00".into(),
                id: None,
            })
        };
        r.seen(&echo("me", "pake"), "me");
        r.seen(&echo("peer", "version"), "me");
        assert_eq!(
            r.replay(),
            vec![
                ClientMsg::Claim {
                    nameplate: "7".into()
                },
                ClientMsg::Open {
                    mailbox: "mb".into()
                },
                add("version"),
            ]
        );
        // Once released, the nameplate is not claimed again (it may be gone, or someone
        // else's); a close in flight is said again.
        r.note(&ClientMsg::Release {
            nameplate: Some("7".into()),
        });
        let close = ClientMsg::Close {
            mailbox: Some("mb".into()),
            mood: Some("happy".into()),
        };
        r.note(&close);
        r.seen(&echo("me", "version"), "me");
        assert_eq!(
            r.replay(),
            vec![
                ClientMsg::Open {
                    mailbox: "mb".into()
                },
                close
            ]
        );
    }
}
