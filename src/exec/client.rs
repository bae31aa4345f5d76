//! `taojie exec`: runs one command on an exec server, with stdin forwarded and the command's
//! stdout and stderr written to ours as they arrive; exits with the command's status.
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::ClientOptions;
use super::protocol::{Control, SERVICE, STDERR, STDIN, STDOUT};
use crate::framing::native::kind_of;
use crate::framing::{Frame, FramedStream, hello};
use crate::secure::flags::NoKey;

/// Exit status for failures of our own (connect, authentication, protocol), as ssh uses.
pub const FAILURE_STATUS: u8 = 255;
/// Exit status when our stdout's reader went away: 128 + SIGPIPE, as a shell reports it.
pub const SIGPIPE_STATUS: u8 = 128 + 13;
const STDIN_CHUNK: usize = 64 * 1024;

/// Runs the client; its own failures print one line and give [`FAILURE_STATUS`].
pub async fn run(args: ClientOptions) -> ExitCode {
    match exec(args).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("taojie: error: {e:#}");
            ExitCode::from(FAILURE_STATUS)
        }
    }
}

async fn exec(args: ClientOptions) -> Result<u8> {
    Control::validate_request(&args.command).map_err(anyhow::Error::msg)?;
    let no_key = match args.insecure_no_auth {
        true => NoKey::Insecure,
        false => NoKey::DefaultOrRefuse,
    };
    let auth = args.keys.auth(no_key, &args.addr)?;
    let wait = Duration::from_secs_f64(args.connect_timeout.max(0.1));
    let (stream, addr) =
        crate::proxy_wire::connect_tcp(&args.addr, args.proxy.as_ref(), wait).await?;
    stream.set_nodelay(true)?;
    // A quiet command's connection would otherwise never notice the server is gone.
    crate::sys::keepalive(&stream, crate::sys::CLIENT_KEEPALIVE);
    let stream = crate::secure::connect_to(stream, &auth, &addr, SERVICE).await?;
    let mut t = FramedStream::new(stream);
    hello::client(&mut t, SERVICE).await?;
    t.send_control(&Control::Request {
        argv: args.command.clone(),
        shell: args.shell,
    })
    .await?;
    match t.recv_control::<Control>().await? {
        Control::Started => {}
        Control::Error { message } => {
            // A refusal, or a command that could not start (then its status follows).
            eprintln!("taojie: remote error: {message}");
            return match t.recv_control::<Control>().await {
                Ok(Control::Exit { code, .. }) => Ok(status_byte(code)),
                _ => Ok(FAILURE_STATUS),
            };
        }
        other => bail!("protocol error: expected started, got {}", kind_of(&other)),
    }

    let (mut sink, mut frames) = t.into_framed().split();
    let input = stdin_chunks(args.no_stdin);
    tokio::spawn(async move {
        let mut input = input;
        while let Some(chunk) = input.recv().await {
            let frame = Frame::Data {
                channel: STDIN,
                bytes: chunk,
            };
            if sink.send(frame).await.is_err() {
                return;
            }
        }
        let eof = Frame::Data {
            channel: STDIN,
            bytes: Bytes::new(),
        };
        let _ = sink.send(eof).await;
        // Keep the write half open: closing it would look like a client that left.
        std::future::pending::<()>().await;
    });

    // Output is written straight to our stdout (a duplicate of it, unbuffered) and stderr,
    // blocking this (the runtime's only) thread while a slow reader catches up: tokio's stdout
    // would copy every chunk and hand it to a blocking-pool thread, a wake-up per chunk that
    // cost more than the copy.
    let mut out = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let mut err = std::io::stderr();
    loop {
        let frame = match frames.next().await {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                // Said once, with where: the output above may be cut short.
                let e = anyhow::Error::new(e);
                let what = crate::retry::broken(&e).unwrap_or_else(|| format!("{e:#}"));
                bail!(
                    "connection to {addr} {what} before the command's exit status; \
                     its output may be cut short"
                )
            }
            None => {
                bail!("connection to {addr} closed by the server before the command's exit status")
            }
        };
        match frame {
            Frame::Data { channel, bytes } if channel == STDOUT => {
                match out.write_all(&bytes) {
                    // Our reader left (`| head`): stop as a program killed by SIGPIPE would;
                    // hanging up kills the remote command.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        return Ok(SIGPIPE_STATUS);
                    }
                    r => r?,
                }
            }
            Frame::Data { channel, bytes } if channel == STDERR => err.write_all(&bytes)?,
            Frame::Data { channel, .. } => bail!("protocol error: data on channel {channel}"),
            Frame::Control(json) => match serde_json::from_slice::<Control>(&json)? {
                Control::Exit { code, .. } => {
                    out.flush()?;
                    err.flush()?;
                    return Ok(status_byte(code));
                }
                Control::Error { message } => {
                    err.flush()?;
                    writeln!(err, "taojie: remote error: {message}")?;
                }
                other => bail!("protocol error: unexpected {}", kind_of(&other)),
            },
        }
    }
}

/// A status for our own exit: 0–255 as is, anything else (never sent by taojie) as 255.
fn status_byte(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(FAILURE_STATUS)
}

/// Our stdin in chunks, read on a plain thread: a read blocked on a terminal must not keep
/// the process from exiting once the command is done, as it would on tokio's blocking pool.
fn stdin_chunks(skip: bool) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(4);
    if skip {
        return rx;
    }
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut buf = BytesMut::zeroed(STDIN_CHUNK);
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(buf.freeze()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}
