//! Standard input and output for netcat, each on a plain thread of its own.
//!
//! Why threads: stdin and stdout may be pipes, files or terminals that cannot be made
//! non-blocking without changing them for every other process sharing them, and a thread
//! blocked reading a terminal must not keep the process alive once the peer has gone (tokio's
//! blocking pool would: the runtime waits for it on drop). Both threads work on duplicates of
//! fds 0 and 1, so there is no line buffering and no hidden copy in std's `Stdout`.
//!
//! The channels between the threads and the sockets are bounded, so a slow reader of stdout
//! slows the socket down instead of filling memory, and stdin is read once however many peers
//! take turns at it (`listen --keep-open`).
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Chunks read ahead of the socket; with 128 KiB chunks that is at most 1 MiB.
const INPUT_DEPTH: usize = 8;
/// Chunks waiting for stdout.
const OUTPUT_DEPTH: usize = 16;

/// The chunks read from stdin, in order; ends at stdin EOF.
pub(super) struct Input {
    rx: mpsc::Receiver<Bytes>,
    eof: bool,
}

impl Input {
    /// Starts the thread that reads stdin in chunks of at most `chunk` bytes (one datagram
    /// each over UDP, so the caller picks the size).
    pub(super) fn spawn(chunk: usize) -> Input {
        let (tx, rx) = mpsc::channel(INPUT_DEPTH);
        match io::stdin().as_fd().try_clone_to_owned() {
            Ok(fd) => {
                let file = File::from(fd);
                let spawned = std::thread::Builder::new()
                    .name("stdin".into())
                    .spawn(move || read_stdin(file, chunk, tx));
                if let Err(e) = spawned {
                    eprintln!("taojie: warning: cannot read stdin: {e}");
                }
            }
            // A closed fd 0 (`<&-`) reads as an empty stdin: the sender is dropped here.
            Err(_) => drop(tx),
        }
        Input { rx, eof: false }
    }

    /// The next chunk, or `None` at EOF (and every time after). Cancel-safe: a chunk is
    /// never lost when this loses a `select!`.
    pub(super) async fn next(&mut self) -> Option<Bytes> {
        if self.eof {
            return None;
        }
        let chunk = self.rx.recv().await;
        self.eof = chunk.is_none();
        chunk
    }

    /// Whether stdin has ended (and every chunk before the end was taken).
    pub(super) fn at_eof(&self) -> bool {
        self.eof
    }
}

/// Reads stdin until EOF, an error, or nobody taking chunks any more.
fn read_stdin(mut file: File, chunk: usize, tx: mpsc::Sender<Bytes>) {
    // One reusable buffer and a copy of exactly what was read: cheaper than zeroing a fresh
    // buffer per read, since pipe reads are often far shorter than the buffer.
    let mut buf = vec![0u8; chunk];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("taojie: warning: reading stdin: {e}; treating it as ended");
                return;
            }
        };
        if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
            return;
        }
    }
}

/// The way to stdout: chunks go to the writer thread in order.
pub(super) struct Output {
    tx: mpsc::Sender<Bytes>,
    done: oneshot::Receiver<io::Result<()>>,
}

/// Stdout is gone: its reader closed the pipe, or writing failed (the error comes out of
/// [`Output::finish`]).
#[derive(Debug)]
pub(super) struct Closed;

impl Output {
    /// Starts the thread that writes to stdout.
    pub(super) fn spawn() -> io::Result<Output> {
        let file = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        let (tx, rx) = mpsc::channel(OUTPUT_DEPTH);
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                let _ = done_tx.send(write_stdout(file, rx));
            })?;
        Ok(Output { tx, done })
    }

    /// Queues `chunk` for stdout, waiting while the queue is full.
    pub(super) async fn write(&self, chunk: Bytes) -> Result<(), Closed> {
        self.tx.send(chunk).await.map_err(|_| Closed)
    }

    /// Waits until every queued byte is written. A reader that stopped reading (EPIPE) is
    /// not an error: like `head`, it has all it wanted.
    pub(super) async fn finish(self) -> io::Result<()> {
        drop(self.tx);
        match self.done.await {
            Ok(Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    }
}

/// Writes chunks to stdout until the channel closes or a write fails.
fn write_stdout(mut file: File, mut rx: mpsc::Receiver<Bytes>) -> io::Result<()> {
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
    }
    Ok(())
}
