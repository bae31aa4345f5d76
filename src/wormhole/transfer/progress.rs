//! A progress bar on standard error for long transfers, shown only on a terminal.
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte counter drawn as a bar when stderr is a terminal, silent otherwise.
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar for `total` bytes, labelled `what`; hidden unless stderr is a terminal and
    /// `show` is true.
    pub fn new(total: u64, what: &str, show: bool) -> Progress {
        if !show || !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        Progress(bar)
    }

    /// A counter that draws nothing.
    pub fn hidden() -> Progress {
        Progress(ProgressBar::hidden())
    }

    /// Bytes done so far (bytes already held, when resuming).
    pub fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    /// `n` more bytes done.
    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
