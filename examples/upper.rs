//! The seeds' `socketserver` upper-case server, on `taojie::server`.
//!
//! The Python original (seed 002) subclasses `socketserver.BaseRequestHandler`: `handle` reads
//! one message of at most 1024 bytes, prints who wrote it, and sends it back upper-cased; the
//! connection ends when `handle` returns. Here the handler is an async function of the
//! connection, and the framework adds what `TCPServer` lacks: many clients at once (up to a
//! cap), an idle timeout, and a graceful stop on Ctrl-C.
//!
//! ```sh
//! cargo run --example upper -- 127.0.0.1:9999     # prints `upper tcp 127.0.0.1:9999`
//! ```
use std::io;

use taojie::server::{self, Conn, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:9999".into());
    let listener = server::listen_tcp(&addr).await?;
    // The line tests and scripts wait for: with port 0 it carries the port the system chose.
    server::announce("upper", listener.proto(), &listener.local_display());
    let stop = server::shutdown::on_signal()?;
    let limits = Limits::default();
    server::serve_stream("upper", listener, limits, handle, stop.cancelled_owned()).await;
    Ok(())
}

/// `Myserver.handle`: one message in, the same upper-cased out.
async fn handle(mut conn: Conn) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    let n = conn.read(&mut buf).await?;
    let data = buf[..n].trim_ascii();
    println!("{} wrote:", conn.peer());
    println!("{}", String::from_utf8_lossy(data));
    conn.write_all(&data.to_ascii_uppercase()).await?;
    conn.shutdown().await
}
