//! One pipelined stream connection of the load generator: a writer keeps `depth` requests in
//! flight, a reader verifies each answer and releases the next request.
use std::collections::VecDeque;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, sleep_until};

use super::pattern::Pattern;
use super::report::{ConnTotals, Latencies, Recorder};

/// Read buffer floor; large messages get room for two.
const READ_BUF: usize = 64 * 1024;

/// Shared between the writer and reader halves of one connection.
#[derive(Default)]
struct State {
    sent: AtomicU64,
    received: AtomicU64,
    verified: AtomicU64,
    mismatched: AtomicU64,
    writer_done: AtomicBool,
}

/// Drives one connection until `deadline`, then collects every outstanding answer.
pub async fn drive<R, W>(
    (rd, wr): (R, W),
    pattern: &Pattern,
    depth: usize,
    deadline: Instant,
    latencies: &Latencies,
) -> (ConnTotals, io::Result<()>)
where
    R: AsyncRead,
    W: AsyncWrite,
{
    let state = State::default();
    let permits = Semaphore::new(depth);
    let sent_at = Mutex::new(VecDeque::with_capacity(depth));
    let finished = Notify::new();

    let writer = write_requests(
        wr, pattern, depth, deadline, &state, &permits, &sent_at, &finished,
    );
    let reader = read_answers(
        rd, pattern, latencies, &state, &permits, &sent_at, &finished,
    );
    // An answer-less server must not hold the run forever.
    let limit = deadline + std::time::Duration::from_secs(10);
    let res = match tokio::time::timeout_at(limit, async { tokio::try_join!(writer, reader) }).await
    {
        Ok(r) => r.map(|_| ()),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "answers stopped coming",
        )),
    };
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let totals = ConnTotals {
        verified: load(&state.verified),
        mismatched: load(&state.mismatched),
        lost: load(&state.sent) - load(&state.received),
    };
    (totals, res)
}

#[allow(clippy::too_many_arguments)]
async fn write_requests<W: AsyncWrite>(
    wr: W,
    pattern: &Pattern,
    depth: usize,
    deadline: Instant,
    state: &State,
    permits: &Semaphore,
    sent_at: &Mutex<VecDeque<Instant>>,
    finished: &Notify,
) -> io::Result<()> {
    tokio::pin!(wr);
    let mut seq = 0u64;
    let mut batch = Vec::with_capacity(pattern.size() * depth);
    loop {
        let mut n = tokio::select! {
            p = permits.acquire() => { p.expect("never closed").forget(); 1 }
            _ = sleep_until(deadline) => break,
        };
        // Send every request the reader has released in one write.
        while let Ok(p) = permits.try_acquire() {
            p.forget();
            n += 1;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        batch.clear();
        {
            let mut q = sent_at.lock().unwrap_or_else(|e| e.into_inner());
            for _ in 0..n {
                batch.extend_from_slice(pattern.message(seq));
                q.push_back(now);
                seq += 1;
            }
        }
        state.sent.store(seq, Ordering::Release);
        wr.write_all(&batch).await?;
    }
    state.writer_done.store(true, Ordering::Release);
    finished.notify_one();
    // Tell the server no more requests come; answers still in flight are read to the end.
    let _ = wr.shutdown().await;
    Ok(())
}

async fn read_answers<R: AsyncRead>(
    rd: R,
    pattern: &Pattern,
    latencies: &Latencies,
    state: &State,
    permits: &Semaphore,
    sent_at: &Mutex<VecDeque<Instant>>,
    finished: &Notify,
) -> io::Result<()> {
    tokio::pin!(rd);
    let size = pattern.size();
    let mut buf = BytesMut::with_capacity(READ_BUF.max(2 * size));
    let mut recorder = Recorder::new(latencies);
    let mut seq = 0u64;
    let mut eof = false;
    loop {
        while buf.len() >= size {
            let sent = sent_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            let Some(sent) = sent else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "answer to no request",
                ));
            };
            recorder.record(sent.elapsed());
            let counter = if buf[..size] == *pattern.answer(seq) {
                &state.verified
            } else {
                &state.mismatched
            };
            counter.fetch_add(1, Ordering::Relaxed);
            buf.advance(size);
            seq += 1;
            state.received.store(seq, Ordering::Relaxed);
            permits.add_permits(1);
        }
        let done = state.writer_done.load(Ordering::Acquire);
        if done && seq == state.sent.load(Ordering::Acquire) {
            return Ok(());
        }
        if eof {
            let msg = "server closed the connection before answering every request";
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
        }
        buf.reserve(READ_BUF.max(size));
        tokio::select! {
            n = rd.read_buf(&mut buf) => eof = n? == 0,
            _ = finished.notified(), if !done => {}
        }
    }
}
