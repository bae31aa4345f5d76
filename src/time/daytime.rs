//! Daytime over TCP (RFC 867): on connect the server sends the date and time as one ASCII line
//! and closes; whatever the client sends is ignored.
use std::io;
use std::time::Duration;

use chrono::{DateTime, Local};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::Conn;

/// How long, and how many bytes, the server reads and discards after its line before closing.
/// Closing with unread input makes the kernel send a reset, which can destroy the line before
/// the client reads it; a client that sends nothing closes as soon as it sees our end.
const DRAIN_TIME: Duration = Duration::from_secs(2);
const DRAIN_BYTES: u64 = 64 * 1024;

/// The daytime line for `now`: RFC 2822's date format (ASCII, unambiguous, with the UTC
/// offset) and CRLF, e.g. `Sat, 9 Mar 2024 07:05:03 +0800\r\n`.
pub fn line(now: &DateTime<Local>) -> String {
    format!("{}\r\n", now.to_rfc2822())
}

/// Serves one daytime connection.
pub async fn handle(mut conn: Conn) -> io::Result<()> {
    conn.write_all(line(&Local::now()).as_bytes()).await?;
    conn.shutdown().await?;
    let mut sink = tokio::io::sink();
    let mut input = (&mut conn).take(DRAIN_BYTES);
    // The line is already out; an error or timeout here only means the client was slow.
    let _ = tokio::time::timeout(DRAIN_TIME, tokio::io::copy(&mut input, &mut sink)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_line_is_ascii_and_ends_in_crlf() {
        let at = Local.with_ymd_and_hms(2024, 3, 9, 7, 5, 3).unwrap();
        let l = line(&at);
        assert!(l.is_ascii());
        assert!(l.starts_with("Sat, 9 Mar 2024 07:05:03 "), "{l}");
        assert!(l.ends_with("\r\n") && l.matches('\n').count() == 1);
    }
}
