//! A line-based service on `taojie::server`: a key-value store that every client shares.
//!
//! One command per line, one answer per line (try it with `nc` or `taojie connect`):
//!
//! ```text
//! SET colour blue   → OK
//! GET colour        → VALUE blue      (NOTFOUND when there is none)
//! DEL colour        → OK              (NOTFOUND when there was none)
//! QUIT              → BYE, and the server closes
//! ```
//!
//! Everything a client can make the server hold is bounded: a line (1 KiB, else `ERR` and the
//! connection closes) and the number of keys. State shared by connections lives behind an
//! `Arc` that the handler closure clones into each connection.
//!
//! ```sh
//! cargo run --example kv -- 127.0.0.1:7379     # prints `kv tcp 127.0.0.1:7379`
//! ```
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use taojie::server::{self, Conn, Limits};
use tokio_util::codec::{Framed, LinesCodec, LinesCodecError};

const MAX_LINE: usize = 1024;
const MAX_KEYS: usize = 10_000;

type Store = Arc<Mutex<HashMap<String, String>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7379".into());
    let listener = server::listen_tcp(&addr).await?;
    server::announce("kv", listener.proto(), &listener.local_display());
    let stop = server::shutdown::on_signal()?;
    let store = Store::default();
    let handler = move |conn| session(conn, store.clone());
    server::serve_stream(
        "kv",
        listener,
        Limits::default(),
        handler,
        stop.cancelled_owned(),
    )
    .await;
    Ok(())
}

/// Answers one client's lines until it quits, closes, or sends a line too long.
async fn session(conn: Conn, store: Store) -> std::io::Result<()> {
    let mut lines = Framed::new(conn, LinesCodec::new_with_max_length(MAX_LINE));
    while let Some(line) = lines.next().await {
        let line = match line {
            Ok(line) => line,
            Err(LinesCodecError::Io(e)) => return Err(e),
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                let _ = lines.send("ERR line too long").await;
                break;
            }
        };
        let reply = answer(&line, &store);
        lines.send(&reply).await.map_err(std::io::Error::other)?;
        if reply == "BYE" {
            break;
        }
    }
    Ok(())
}

/// The answer to one command line.
fn answer(line: &str, store: &Store) -> String {
    let mut words = line.trim().splitn(3, ' ');
    let mut store = store.lock().unwrap();
    match (words.next(), words.next(), words.next()) {
        (Some("SET"), Some(key), Some(value)) => {
            if store.len() >= MAX_KEYS && !store.contains_key(key) {
                return "ERR store full".into();
            }
            store.insert(key.into(), value.into());
            "OK".into()
        }
        (Some("GET"), Some(key), None) => match store.get(key) {
            Some(value) => format!("VALUE {value}"),
            None => "NOTFOUND".into(),
        },
        (Some("DEL"), Some(key), None) => match store.remove(key) {
            Some(_) => "OK".into(),
            None => "NOTFOUND".into(),
        },
        (Some("QUIT"), None, None) => "BYE".into(),
        _ => "ERR commands: SET KEY VALUE, GET KEY, DEL KEY, QUIT".into(),
    }
}
