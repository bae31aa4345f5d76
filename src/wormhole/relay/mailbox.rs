//! One mailbox client's WebSocket: the welcome, then each command acked and answered as the
//! wormhole server protocol has it (bind, list, allocate, claim, release, open, add, close,
//! ping), with the mailbox's messages pushed as they arrive. One claim, one open, one close
//! per connection; anything out of order is an `error` message, and the connection goes on.
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::hub::{Hub, Outbox};
use crate::server::{Conn, Peer};
use crate::wormhole::messages::{ClientMsg, MAX_MESSAGE};

/// How long the WebSocket handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one connection has done so far.
#[derive(Default)]
struct Session {
    app: Option<String>,
    side: Option<String>,
    claimed: Option<String>,
    allocated: bool,
    released: bool,
    mailbox: Option<String>,
    closed: bool,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn frame(mut v: Value) -> Message {
    v["server_tx"] = now().into();
    Message::text(v.to_string())
}

/// Serves one mailbox client.
pub async fn serve(conn: Conn, hub: Arc<Hub>, motd: Option<Arc<str>>) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let ip = match conn.peer() {
        Peer::Tcp(a) => a.ip(),
        _ => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    // Small buffers: thousands of clients sit idle waiting for their peer (tungstenite
    // allocates the read buffer up front; a longer message grows it while it is read).
    let config = WebSocketConfig::default()
        .read_buffer_size(256)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    // Boxed: the handshake's state is gone once it is done, not kept in the task's future.
    let ws = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        Box::pin(tokio_tungstenite::accept_async_with_config(
            conn,
            Some(config),
        )),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        _ => return Ok(()),
    };
    let (mut sink, mut stream) = ws.split();
    let welcome = match &motd {
        Some(m) => json!({"motd": &**m}),
        None => json!({}),
    };
    if sink
        .send(frame(json!({"type": "welcome", "welcome": welcome})))
        .await
        .is_err()
    {
        return Ok(());
    }
    let outbox = Arc::new(Outbox::default());
    let mut s = Session::default();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let data = match msg {
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let replies = handle(&data, &mut s, &hub, ip, (id, &outbox));
                let mut failed = false;
                for r in replies {
                    if sink.feed(frame(r)).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || sink.flush().await.is_err() {
                    break;
                }
            }
            out = outbox.pop() => {
                let Some(out) = out else { break };
                if sink.send(Message::text(out.to_string())).await.is_err() {
                    break;
                }
            }
        }
    }
    if let (Some(app), Some(mailbox)) = (&s.app, &s.mailbox)
        && !s.closed
    {
        hub.disconnect(app, mailbox, id);
    }
    Ok(())
}

fn error(text: &str, orig: Option<&Value>) -> Value {
    json!({"type": "error", "error": text, "orig": orig})
}

/// Answers one client message: an ack first, then the command's reply or an error.
fn handle(
    data: &[u8],
    s: &mut Session,
    hub: &Hub,
    ip: IpAddr,
    (id, tx): (u64, &Arc<Outbox>),
) -> Vec<Value> {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return vec![error("message is not JSON", None)];
    };
    let msg_id = v.get("id").cloned().unwrap_or(Value::Null);
    let mut out = vec![json!({"type": "ack", "id": msg_id})];
    let cmd: ClientMsg = match serde_json::from_value(v.clone()) {
        Ok(c) => c,
        Err(_) => {
            out.push(error("unknown type or missing keys", Some(&v)));
            return out;
        }
    };
    let res = command(cmd, s, hub, ip, id, tx);
    match res {
        Ok(Some(mut reply)) => {
            reply["id"] = msg_id;
            out.push(reply);
        }
        Ok(None) => {}
        Err(e) => out.push(error(&e, Some(&v))),
    }
    out
}

fn command(
    cmd: ClientMsg,
    s: &mut Session,
    hub: &Hub,
    ip: IpAddr,
    id: u64,
    tx: &Arc<Outbox>,
) -> Result<Option<Value>, String> {
    if let ClientMsg::Ping { ping } = &cmd {
        return Ok(Some(json!({"type": "pong", "pong": ping})));
    }
    if let ClientMsg::Bind { appid, side, .. } = &cmd {
        if s.app.is_some() {
            return Err("already bound".into());
        }
        if appid.len() > 256 || side.is_empty() || side.len() > 64 {
            return Err("bind: appid or side too long".into());
        }
        s.app = Some(appid.clone());
        s.side = Some(side.clone());
        return Ok(None);
    }
    let (Some(app), Some(side)) = (s.app.clone(), s.side.clone()) else {
        return Err("must bind first".into());
    };
    match cmd {
        ClientMsg::List => {
            let nameplates: Vec<Value> = hub
                .list(&app)
                .into_iter()
                .map(|n| json!({"id": n}))
                .collect();
            Ok(Some(
                json!({"type": "nameplates", "nameplates": nameplates}),
            ))
        }
        ClientMsg::Allocate => {
            if s.allocated {
                return Err("you already allocated one, don't be greedy".into());
            }
            let n = hub.allocate(&app, &side, ip).map_err(|e| e.to_string())?;
            s.allocated = true;
            Ok(Some(json!({"type": "allocated", "nameplate": n})))
        }
        ClientMsg::Claim { nameplate } => {
            if s.claimed.is_some() {
                return Err("only one claim per connection".into());
            }
            let mailbox = hub
                .claim(&app, &nameplate, &side, ip)
                .map_err(|e| e.to_string())?;
            s.claimed = Some(nameplate);
            Ok(Some(json!({"type": "claimed", "mailbox": mailbox})))
        }
        ClientMsg::Release { nameplate } => {
            if s.released {
                return Err("only one release per connection".into());
            }
            let name = match (nameplate, &s.claimed) {
                (Some(n), Some(c)) if n != *c => {
                    return Err("release and claim must use same nameplate".into());
                }
                (Some(n), _) => n,
                (None, Some(c)) => c.clone(),
                (None, None) => return Err("release without nameplate must follow claim".into()),
            };
            hub.release(&app, &name, &side);
            s.released = true;
            Ok(Some(json!({"type": "released"})))
        }
        ClientMsg::Open { mailbox } => {
            if s.mailbox.is_some() {
                return Err("only one open per connection".into());
            }
            let old = hub
                .open(&app, &mailbox, &side, ip, (id, tx.clone()))
                .map_err(|e| e.to_string())?;
            s.mailbox = Some(mailbox);
            for m in old {
                // Room for all of them: a mailbox holds fewer messages than the queue.
                let _ = tx.push(m);
            }
            Ok(None)
        }
        ClientMsg::Add { phase, body } => {
            let Some(mailbox) = &s.mailbox else {
                return Err("must open mailbox before adding".into());
            };
            if s.closed {
                return Err("mailbox closed".into());
            }
            hub.add(&app, mailbox, &side, &phase, &body, &Value::Null)
                .map_err(|e| e.to_string())?;
            Ok(None)
        }
        ClientMsg::Close { mailbox, .. } => {
            if s.closed {
                return Err("only one close per connection".into());
            }
            let mailbox = match (mailbox, &s.mailbox) {
                (Some(m), Some(o)) if m != *o => {
                    return Err("open and close must use same mailbox".into());
                }
                (Some(m), _) => m,
                (None, Some(o)) => o.clone(),
                (None, None) => return Err("close without mailbox must follow open".into()),
            };
            hub.close(&app, &mailbox, &side, id);
            s.closed = true;
            Ok(Some(json!({"type": "closed"})))
        }
        ClientMsg::Bind { .. } | ClientMsg::Ping { .. } => unreachable!("handled above"),
    }
}
