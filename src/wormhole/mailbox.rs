//! The mailbox server's client: one WebSocket, JSON messages each way. It binds, claims a
//! nameplate (allocating one first if asked), opens the mailbox, adds messages and reads the
//! ones delivered; acks, pongs and types it does not know are skipped.
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

/// A connection to the mailbox server, bound to an application and a side.
pub struct MailboxClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `motd` of the server's welcome, if any.
    pub motd: Option<String>,
}

impl MailboxClient {
    /// Connects to `url` (`ws://HOST:PORT/v1`), reads the welcome (a welcome `error` is
    /// the error) and binds `appid` and `side`.
    pub async fn connect(url: &str, appid: &str, side: &str) -> Result<MailboxClient> {
        if !url.starts_with("ws://") {
            bail!("the relay URL must start with ws:// (got {url})");
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let (ws, _) = tokio::time::timeout(
            SERVER_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(url, Some(config), true),
        )
        .await
        .map_err(|_| anyhow!("the mailbox server at {url} did not answer"))?
        .with_context(|| format!("cannot reach the mailbox server at {url}"))?;
        let mut client = MailboxClient { ws, motd: None };
        let welcome = match client.recv_timeout().await? {
            ServerMsg::Welcome { welcome } => welcome,
            other => bail!("the mailbox server did not welcome us (it sent {other:?})"),
        };
        if let Some(err) = welcome.get("error").and_then(|e| e.as_str()) {
            bail!("the mailbox server says: {err}");
        }
        client.motd = welcome
            .get("motd")
            .and_then(|m| m.as_str())
            .map(str::to_string);
        client
            .send(&ClientMsg::Bind {
                appid: appid.into(),
                side: side.into(),
                client_version: Some(("taojie".into(), env!("CARGO_PKG_VERSION").into())),
            })
            .await?;
        Ok(client)
    }

    /// Sends one command.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<()> {
        let mut v = serde_json::to_value(msg)?;
        // A random id, as the Python client adds, for the server's timing logs.
        let mut id = [0u8; 2];
        getrandom::fill(&mut id).expect("the system's random source");
        v["id"] = super::messages::hex(&id).into();
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .context("lost the mailbox server")
    }

    /// The next message that is not an ack, a pong or of an unknown type. A server `error`
    /// is an error here.
    pub async fn recv(&mut self) -> Result<ServerMsg> {
        loop {
            let msg = self
                .ws
                .next()
                .await
                .ok_or_else(|| anyhow!("the mailbox server closed the connection"))?
                .context("lost the mailbox server")?;
            let data = match msg {
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Binary(b) => b.to_vec(),
                Message::Close(_) => bail!("the mailbox server closed the connection"),
                _ => continue,
            };
            let parsed: ServerMsg = serde_json::from_slice(&data)
                .context("the mailbox server sent a message that is not one")?;
            match parsed {
                ServerMsg::Ack | ServerMsg::Pong { .. } | ServerMsg::Unknown => continue,
                ServerMsg::Error { error, .. } => bail!("the mailbox server says: {error}"),
                other => return Ok(other),
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
                let wait = async {
                    while let Ok(m) = self.recv().await {
                        if m == ServerMsg::Closed {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}
