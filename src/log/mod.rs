//! Logging that never stops serving: servers write their logs through a bounded, lossy
//! writer on a thread of its own ([`init`]), which counts the lines it had to drop and says
//! so. [`format`](mod@format) holds what lines look like, [`level`] the level in force. (The per-connection
//! warnings a flood would multiply are summarised by the server framework's refusals.)
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::EitherWriter;

pub mod format;
pub mod level;

pub use format::LogFormat;
/// Log lines the writer holds while standard error is not taking them; past this, lines are
/// dropped (and counted) rather than stopping the thread that logs. 1,024 lines (about 200
/// KiB) ride out a reader that is slow for a moment; a reader gone for good costs no more.
pub const BUFFERED_LINES: usize = 1024;
/// How often the count of dropped lines is looked at, and reported when it grew.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(1);

/// How [`init`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Straight to standard error, in order with the program's other messages: for clients
    /// and one-shot commands, whose few lines must not be lost or reordered.
    Blocking,
    /// Through the bounded lossy buffer once the server is serving ([`serving`]): for
    /// servers, where a standard error that nobody reads (a full pipe, a stuck journal) must
    /// not stall the connections that log. Until then lines are written at once, so a start-up
    /// warning is on standard error before the address line that says the server is up.
    NonBlocking,
}

/// Whether the server has said where it listens; from then on logs go through the buffer.
static SERVING: AtomicBool = AtomicBool::new(false);

/// Says the start-up is over: from now on a [`Writer::NonBlocking`] log goes through its
/// buffer. Called when a server prints its address line.
pub fn serving() {
    SERVING.store(true, Ordering::Relaxed);
}

/// Standard error until [`serving`], the non-blocking writer after.
struct Switch(NonBlocking);

impl<'a> MakeWriter<'a> for Switch {
    type Writer = EitherWriter<NonBlocking, std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        match SERVING.load(Ordering::Relaxed) {
            true => EitherWriter::A(self.0.clone()),
            false => EitherWriter::B(std::io::stderr()),
        }
    }
}

/// Keeps the log writer's thread alive; dropping it writes out what is still buffered (for
/// at most a second, so a stuck standard error cannot hold up the exit).
#[must_use = "logs buffered when this drops may be lost"]
pub struct Guard {
    _worker: Option<WorkerGuard>,
}

/// Sets up the global `tracing` subscriber in `format` (`RUST_LOG` filters, info by
/// default), writing to standard error the way `writer` says.
pub fn init(format: LogFormat, writer: Writer) -> Guard {
    match writer {
        Writer::Blocking => {
            format::install(format, std::io::stderr);
            Guard { _worker: None }
        }
        Writer::NonBlocking => {
            let (nb, guard) = NonBlockingBuilder::default()
                .lossy(true)
                .buffered_lines_limit(BUFFERED_LINES)
                .thread_name("taojie-log")
                .finish(std::io::stderr());
            let dropped = nb.error_counter();
            format::install(format, Switch(nb));
            // A thread, not a task: it must report even when the runtime is the thing stuck.
            let _ = std::thread::Builder::new()
                .name("taojie-log-drops".into())
                .spawn(move || report_drops(move || dropped.dropped_lines()));
            Guard {
                _worker: Some(guard),
            }
        }
    }
}

/// Says, once a second while it grows, how many lines the writer dropped. The report goes
/// through the same writer and may be dropped too; the total it carries makes the next one
/// that gets through right all the same.
fn report_drops(count: impl Fn() -> usize) {
    let mut reported = 0;
    loop {
        std::thread::sleep(DROP_REPORT_EVERY);
        let total = count();
        if total > reported {
            tracing::warn!(
                dropped = total - reported,
                total,
                "log lines dropped: standard error did not take them in time"
            );
            reported = total;
        }
    }
}
