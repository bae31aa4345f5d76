//! Ctrl-C (SIGINT) and SIGTERM during `put` and `get`: the first asks the transfer to stop
//! where it is and keep what is verified — the receiver records every segment it checked, so
//! the next run resumes from there — and the command ends with one line saying what was kept
//! and how to go on. A second signal, or a stop that takes longer than [`GRACE`], ends the
//! process at once (what was already recorded stays).
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// How long a stop may take (the receiver syncing what it verified) before the process ends
/// anyway.
pub const GRACE: Duration = Duration::from_secs(10);

/// Whether a stop was asked for, and by which signal.
#[derive(Clone, Default)]
pub struct Interrupt {
    token: CancellationToken,
    signal: Arc<AtomicI32>,
}

impl Interrupt {
    /// Watches SIGINT and SIGTERM from now on (registered before anything starts, so an
    /// early signal is not lost to the default action).
    pub fn watch() -> std::io::Result<Interrupt> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let me = Interrupt::default();
        let (token, got) = (me.token.clone(), me.signal.clone());
        tokio::spawn(async move {
            let first = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            got.store(first, Ordering::SeqCst);
            token.cancel();
            let again = tokio::select! {
                _ = int.recv() => "interrupted again: stopping at once",
                _ = term.recv() => "terminated again: stopping at once",
                () = tokio::time::sleep(GRACE) => "the stop is taking too long: ending now",
            };
            eprintln!("taojie: {again} (what was already recorded stays for a resume)");
            std::process::exit(128 + first);
        });
        Ok(me)
    }

    /// One that never fires (the server side of a transfer).
    pub fn never() -> Interrupt {
        Interrupt::default()
    }

    /// Cancelled once a signal came.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Whether a signal came.
    pub fn is_set(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Runs `f`, unless a signal comes first (then `None`, and `f` is dropped).
    pub async fn or<F: Future>(&self, f: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            () = self.token.cancelled() => None,
            out = f => Some(out),
        }
    }

    /// The status a shell gives a command the signal ended: 128 + its number.
    pub fn exit_code(&self) -> ExitCode {
        match self.signal.load(Ordering::SeqCst) {
            0 => ExitCode::FAILURE,
            n => ExitCode::from(128 + n as u8),
        }
    }

    /// "interrupted" (SIGINT) or "terminated" (SIGTERM), to begin the line.
    pub fn word(&self) -> &'static str {
        match self.signal.load(Ordering::SeqCst) {
            libc::SIGTERM => "terminated",
            _ => "interrupted",
        }
    }
}

/// The file a stop caught under way: its name, its size, and the verified bytes the receiver
/// keeps of it (`None`: not known, the receiver did not say).
pub struct UnderWay {
    /// Its name on the wire.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// What the receiver keeps.
    pub kept: Option<u64>,
}

/// The one line a stopped `put` or `get` ends with: what was kept (`whose`: "the server
/// keeps", "kept in out/"), and how to go on. `done` files were finished before the stop.
pub fn left_line(
    stop: &Interrupt,
    command: &str,
    done: usize,
    under_way: Option<UnderWay>,
    whose: &str,
) -> String {
    use super::names::escape;
    use super::progress::human;
    let word = stop.word();
    let after = match done {
        0 => String::new(),
        1 => " after 1 file".to_string(),
        n => format!(" after {n} files"),
    };
    let again = format!("run the same {command} again");
    match under_way {
        Some(UnderWay {
            name,
            size,
            kept: Some(kept),
        }) if kept > 0 => format!(
            "{word}{after}: {whose} {} of {} of {} (verified); {again} to resume from there",
            human(kept),
            human(size),
            escape(&name)
        ),
        Some(UnderWay {
            name,
            kept: Some(_),
            ..
        }) => format!(
            "{word}{after}: nothing of {} kept (no {} segment of it was verified yet); {again} \
             to start it over",
            escape(&name),
            human(super::tree::SEGMENT)
        ),
        Some(UnderWay { name, .. }) => format!(
            "{word}{after} during {}: the receiver keeps what it verified of it; {again} to \
             resume",
            escape(&name)
        ),
        None if done > 0 => format!(
            "{word}{after}: {again} for the rest (files already there are found up to date)"
        ),
        None => format!("{word} before any file moved: nothing to keep"),
    }
}
