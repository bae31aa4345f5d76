//! What a person watching sees: a progress bar per file when standard error is a terminal,
//! errors as they happen, and one summary line (or one JSON report) at the end.
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::ClientOpts;
use super::names::escape;

/// How one file went.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// Its name on the wire (escaped only when printed).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// `verified`, `refused`, `failed`, or `no_space` (the receiving disk is full).
    pub status: &'static str,
    /// Its BLAKE3 hash when verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// File bytes that crossed the wire this time.
    pub wire_bytes: u64,
    /// Bytes already in place from an earlier, interrupted attempt.
    pub resumed_from: u64,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Collects the files of one command and prints the summary.
pub struct Report {
    command: &'static str,
    quiet: bool,
    json: bool,
    bars: bool,
    start: Instant,
    files: Vec<FileReport>,
    retries: u32,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    command: &'a str,
    ok: bool,
    files: &'a [FileReport],
    verified: usize,
    bytes: u64,
    wire_bytes: u64,
    seconds: f64,
    mb_per_s: f64,
    /// Connections that broke and were made again (`--retries`).
    retries: u32,
}

impl Report {
    /// A report for `command` (`put`, `get`).
    pub fn new(command: &'static str, opts: &ClientOpts) -> Self {
        Report {
            command,
            quiet: opts.quiet,
            json: opts.json,
            bars: !opts.quiet && !opts.json && std::io::stderr().is_terminal(),
            start: Instant::now(),
            files: Vec::new(),
            retries: 0,
        }
    }

    /// Records how many times the connection broke and was made again.
    pub fn retried(&mut self, n: u32) {
        self.retries = n;
    }

    /// A progress bar for one file (hidden unless a person is watching).
    pub fn bar(&self, name: &str, size: u64) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(size);
        let style = ProgressStyle::with_template(
            "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(escape(name));
        bar
    }

    /// Notes how a file went; a refusal or failure is said at once on standard error.
    pub fn record(&mut self, f: FileReport) {
        // A full disk's message names the side and the file itself.
        if f.status != "verified" && !self.json && (f.name.is_empty() || f.status == "no_space") {
            eprintln!("taojie: {}", escape(f.message.as_deref().unwrap_or("")));
        } else if f.status != "verified" && !self.json {
            eprintln!(
                "taojie: {} {}: {}",
                f.status,
                escape(&f.name),
                escape(f.message.as_deref().unwrap_or(""))
            );
        } else if f.resumed_from > 0 && !self.quiet && !self.json {
            eprintln!(
                "{}: resumed at {} of {}; the rest verified with the whole file",
                escape(&f.name),
                human(f.resumed_from),
                human(f.size)
            );
        }
        self.files.push(f);
    }

    /// Prints the summary (or the JSON report); failure unless every file was verified.
    pub fn finish(self) -> ExitCode {
        let secs = self
            .start
            .elapsed()
            .max(Duration::from_micros(1))
            .as_secs_f64();
        let verified = self.files.iter().filter(|f| f.status == "verified").count();
        let bytes: u64 = self
            .files
            .iter()
            .filter(|f| f.status == "verified")
            .map(|f| f.size)
            .sum();
        let wire: u64 = self.files.iter().map(|f| f.wire_bytes).sum();
        let rate = wire as f64 / secs / 1e6;
        let ok = verified == self.files.len();
        if self.json {
            let report = JsonReport {
                command: self.command,
                ok,
                files: &self.files,
                verified,
                bytes,
                wire_bytes: wire,
                seconds: secs,
                mb_per_s: rate,
                retries: self.retries,
            };
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
        } else if !self.quiet {
            let n = self.files.len();
            let what = if ok {
                format!(
                    "{n} file{} verified (BLAKE3)",
                    if n == 1 { "" } else { "s" }
                )
            } else {
                format!("{verified} of {n} files verified, {} not", n - verified)
            };
            let retries = match self.retries {
                0 => String::new(),
                1 => " after 1 retry".to_string(),
                n => format!(" after {n} retries"),
            };
            eprintln!(
                "{}: {what}, {} in {secs:.2} s ({rate:.1} MB/s on the wire){retries}",
                self.command,
                human(bytes)
            );
        }
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Bytes for a person: `512 B`, `1.50 MiB`.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2} {}", UNITS[i])
}
