//! `serve exec --classic`: the seed's remote-command protocol, so the seed's client works
//! unchanged but for its address. With a key, the seed's `conn_auth` (HMAC-SHA256) comes
//! first. Then, over and over on one connection: one read of up to 8 KiB is a command, it
//! runs through `sh -c`, and the answer is `struct.pack('i', n)` and the output — stderr if
//! the command wrote any, else stdout — gathered whole, as the seed's server does.
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::info;

use super::process::{self, Spawned};
use super::server::Config;
use crate::auth;
use crate::framing::classic;
use crate::server::Conn;

/// Bytes one command may have: what one read takes (the seed reads 1024).
pub const MAX_COMMAND: usize = 8 * 1024;
/// Output gathered for one answer; past it the command is killed and the answer says why.
pub const MAX_OUTPUT: usize = 256 * 1024 * 1024;
/// How long a connection may wait between commands.
const IDLE: Duration = Duration::from_secs(600);

/// Serves one classic connection until the client closes it.
pub async fn handle(mut conn: Conn, cfg: Arc<Config>) -> io::Result<()> {
    if let Some(key) = &cfg.auth.psk {
        let peer = conn.peer().clone();
        let hmac = auth::classic_server(&mut conn, key);
        if cfg
            .preauth
            .handshake(&peer, "authentication refused", hmac)
            .counted_as("exec-classic")
            .await
            .is_none()
        {
            return Ok(());
        }
    }
    let mut buf = vec![0u8; MAX_COMMAND];
    let mut pending = Vec::new();
    loop {
        let cmd = if pending.is_empty() {
            let n = match tokio::time::timeout(IDLE, conn.read(&mut buf)).await {
                Err(_) | Ok(Ok(0)) => return Ok(()),
                Ok(r) => r?,
            };
            buf[..n].to_vec()
        } else {
            std::mem::take(&mut pending)
        };
        let Some(answer) = answer(&cmd, &cfg, &mut conn, &mut pending).await else {
            return Ok(());
        };
        let prefix = classic::prefix(answer.len()).expect("answers stay under 2 GiB");
        conn.write_all(&prefix).await?;
        conn.write_all(&answer).await?;
    }
}

/// Runs one command and returns the answer's body; `None` when the client left meanwhile
/// (the command is killed then). Bytes the client sent meanwhile go to `pending`: they are
/// its next command.
async fn answer(
    cmd: &[u8],
    cfg: &Config,
    conn: &mut Conn,
    pending: &mut Vec<u8>,
) -> Option<Vec<u8>> {
    let _permit = match cfg.procs.try_acquire() {
        Ok(p) => p,
        Err(message) => return Some(format!("taojie: {message}\n").into_bytes()),
    };
    let argv = [OsStr::new("sh"), OsStr::new("-c"), OsStr::from_bytes(cmd)];
    let mut spawned = match process::spawn(&argv, false) {
        Ok(s) => s,
        Err(e) => return Some(format!("taojie: cannot run sh: {e}\n").into_bytes()),
    };
    info!(bytes = cmd.len(), "running a classic command");
    let gathered = {
        let run = async {
            match cfg.timeout {
                Some(d) => tokio::time::timeout(d, gather(&mut spawned)).await.ok(),
                None => Some(gather(&mut spawned).await),
            }
        };
        tokio::pin!(run);
        let mut peek = [0u8; MAX_COMMAND];
        let mut watching = true;
        loop {
            tokio::select! {
                g = &mut run => break Some(g),
                // The client's next bytes: either it left (kill the command) or it sent its
                // next command early, which waits in `pending`.
                r = conn.read(&mut peek), if watching => match r {
                    Ok(n) if n > 0 => {
                        pending.extend_from_slice(&peek[..n]);
                        watching = false;
                    }
                    _ => {
                        crate::metrics::service("exec-classic").command("lost");
                        info!("client gone; killing the command");
                        break None;
                    }
                },
            }
        }
    };
    // The client left: no answer.
    let Some(gathered) = gathered else {
        process::finish(&mut spawned.child, &mut spawned.group).await;
        return None;
    };
    let body = match gathered {
        None => {
            crate::metrics::service("exec-classic").command("timeout");
            process::finish(&mut spawned.child, &mut spawned.group).await;
            let secs = cfg.timeout.unwrap_or_default().as_secs_f64();
            format!("taojie: command timed out after {secs} s and was killed\n").into_bytes()
        }
        Some(Err(e)) => {
            process::finish(&mut spawned.child, &mut spawned.group).await;
            format!("taojie: {e}\n").into_bytes()
        }
        Some(Ok((out, err))) if err.is_empty() => out,
        Some(Ok((_, err))) => err,
    };
    Some(body)
}

/// Reads stdout and stderr whole (at most [`MAX_OUTPUT`] together) and waits for the exit.
async fn gather(s: &mut Spawned) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (mut out_open, mut err_open, mut exited) = (true, true, false);
    let meter = crate::metrics::service("exec-classic");
    while out_open || err_open || !exited {
        tokio::select! {
            r = s.stdout.read_buf(&mut out), if out_open => out_open = matches!(r, Ok(n) if n > 0),
            r = s.stderr.read_buf(&mut err), if err_open => err_open = matches!(r, Ok(n) if n > 0),
            r = process::reap(&mut s.child, &mut s.group), if !exited => {
                meter.command(process::exit_code(r?).0);
                exited = true;
            }
        }
        if out.len() + err.len() > MAX_OUTPUT {
            return Err(io::Error::other(format!(
                "the output passed the {} MiB limit; the command was killed",
                MAX_OUTPUT >> 20
            )));
        }
    }
    Ok((out, err))
}
