//! What a person watching sees: a progress bar per file when standard error is a terminal,
//! errors as they happen, and one summary line (or one JSON report) at the end.
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::style::ProgressTracker;
use indicatif::{HumanDuration, ProgressBar, ProgressState, ProgressStyle};
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
    /// `verified`, `up_to_date` (the same file was there: nothing sent), `refused`,
    /// `failed`, or `no_space` (the receiving disk is full).
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
    dirs: Vec<String>,
    retries: u32,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    command: &'a str,
    ok: bool,
    files: &'a [FileReport],
    /// Empty directories made (a tree's, which no file's path makes).
    dirs_made: &'a [String],
    verified: usize,
    up_to_date: usize,
    bytes: u64,
    wire_bytes: u64,
    /// Bytes already in place from earlier attempts, of the files verified.
    resumed_bytes: u64,
    seconds: f64,
    mib_per_s: f64,
    /// Connections that broke and were made again (`--retries`).
    retries: u32,
    /// What a SIGINT or SIGTERM left, when one stopped the command.
    #[serde(skip_serializing_if = "Option::is_none")]
    interrupted: Option<&'a str>,
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
            dirs: Vec::new(),
            retries: 0,
        }
    }

    /// Records how many times the connection broke and was made again.
    pub fn retried(&mut self, n: u32) {
        self.retries = n;
    }

    /// A progress bar for one file (hidden unless a person is watching). Its rate and ETA
    /// count only the bytes that move from when [`start_at`] is called, not those a resume
    /// found already in place.
    pub fn bar(&self, name: &str, size: u64) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(size);
        let style = ProgressStyle::with_template(
            "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {moved_rate} ETA {moved_eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("moved_rate", Moved::Rate(None))
        .with_key("moved_eta", Moved::Eta(None))
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(escape(name));
        bar
    }

    /// Notes how a file went; a refusal or failure is said at once on standard error.
    pub fn record(&mut self, f: FileReport) {
        // A full disk's message names the side and the file itself.
        if !f.ok() && !self.json && (f.name.is_empty() || f.status == "no_space") {
            eprintln!("taojie: {}", escape(f.message.as_deref().unwrap_or("")));
        } else if !f.ok() && !self.json {
            eprintln!(
                "taojie: {} {}: {}",
                f.status,
                escape(&f.name),
                escape(f.message.as_deref().unwrap_or(""))
            );
        }
        self.files.push(f);
    }

    /// Files done so far: verified, or found up to date.
    pub fn done(&self) -> usize {
        self.files.iter().filter(|f| f.ok()).count()
    }

    /// Notes an empty directory made on the receiving side.
    pub fn dir_made(&mut self, name: &str) {
        self.dirs.push(name.to_string());
    }

    /// Prints the summary (or the JSON report); failure unless every file was verified or
    /// already up to date.
    pub fn finish(self) -> ExitCode {
        let ok = self.files.iter().all(FileReport::ok);
        self.print(None);
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Ends a command a signal stopped: `line` (what was kept and how to go on) on standard
    /// error, the JSON report with it if asked for; returns `code`.
    pub fn interrupted(self, line: &str, code: ExitCode) -> ExitCode {
        eprintln!("taojie: {line}");
        self.print(Some(line));
        code
    }

    fn print(&self, interrupted: Option<&str>) {
        let secs = self
            .start
            .elapsed()
            .max(Duration::from_micros(1))
            .as_secs_f64();
        let done = |s: &'static str| self.files.iter().filter(move |f| f.status == s);
        let verified = done("verified").count();
        let up_to_date = done("up_to_date").count();
        let bytes: u64 = done("verified").map(|f| f.size).sum();
        let resumed: u64 = done("verified").map(|f| f.resumed_from).sum();
        let wire: u64 = self.files.iter().map(|f| f.wire_bytes).sum();
        let rate = wire as f64 / secs;
        if self.json {
            let report = JsonReport {
                command: self.command,
                ok: interrupted.is_none() && self.files.iter().all(FileReport::ok),
                files: &self.files,
                dirs_made: &self.dirs,
                verified,
                up_to_date,
                bytes,
                wire_bytes: wire,
                resumed_bytes: resumed,
                seconds: secs,
                mib_per_s: rate / (1 << 20) as f64,
                retries: self.retries,
                interrupted,
            };
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            return;
        }
        let failed = self.files.len() - verified - up_to_date;
        // Refusals and failures have said so each; a summary of nothing done adds nothing.
        if self.quiet || interrupted.is_some() || verified + up_to_date + self.dirs.len() == 0 {
            return;
        }
        let plural = |n: usize, one: &str, many: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {many}"),
        };
        let mut what = Vec::new();
        if verified > 0 {
            what.push(format!(
                "{} verified (BLAKE3)",
                plural(verified, "file", "files")
            ));
        }
        if up_to_date > 0 {
            let files = match verified {
                0 => plural(up_to_date, "file", "files"),
                _ => up_to_date.to_string(),
            };
            what.push(format!("{files} already up to date"));
        }
        if !self.dirs.is_empty() {
            let dirs = plural(self.dirs.len(), "empty directory", "empty directories");
            what.push(format!("{dirs} made"));
        }
        if failed > 0 {
            what.push(format!("{failed} not"));
        }
        let moved = match verified {
            0 => ", nothing sent".to_string(),
            _ => format!(
                ", {} in {secs:.2} s ({}/s)",
                human(bytes),
                human(rate as u64)
            ),
        };
        let resumed = match resumed {
            0 => String::new(),
            n => format!(
                "; resumed: {} already there, {} crossed",
                human(n),
                human(wire)
            ),
        };
        let retries = match self.retries {
            0 => String::new(),
            1 => " after 1 retry".to_string(),
            n => format!(" after {n} retries"),
        };
        eprintln!(
            "{}: {}{moved}{resumed}{retries}",
            self.command,
            what.join(", ")
        );
    }
}

impl FileReport {
    /// Whether the file is where it should be: verified, or already the same there.
    pub fn ok(&self) -> bool {
        matches!(self.status, "verified" | "up_to_date")
    }
}

/// Starts a file's bar at `offset` (what a resume found in place): its rate and ETA count
/// from here, so a resumed file shows the speed of the bytes that move, not of those held.
pub fn start_at(bar: &ProgressBar, offset: u64) {
    // A reset sends the trackers theirs; the tick after it gives them the new start.
    bar.reset();
    bar.set_position(offset);
    bar.tick();
}

/// The bar's rate and ETA, from the bytes moved since the bar was started (see [`start_at`]).
#[derive(Clone)]
enum Moved {
    Rate(Option<(u64, Instant)>),
    Eta(Option<(u64, Instant)>),
}

impl Moved {
    fn from(&mut self) -> &mut Option<(u64, Instant)> {
        match self {
            Moved::Rate(f) | Moved::Eta(f) => f,
        }
    }
}

impl ProgressTracker for Moved {
    fn clone_box(&self) -> Box<dyn ProgressTracker> {
        Box::new(self.clone())
    }

    fn tick(&mut self, state: &ProgressState, now: Instant) {
        self.from().get_or_insert((state.pos(), now));
    }

    fn reset(&mut self, _: &ProgressState, _: Instant) {
        *self.from() = None;
    }

    fn write(&self, state: &ProgressState, w: &mut dyn std::fmt::Write) {
        let (Moved::Rate(from) | Moved::Eta(from)) = self;
        let rate = from.and_then(|(pos, at)| {
            let secs = at.elapsed().as_secs_f64();
            let moved = state.pos().saturating_sub(pos);
            // Too soon to say: the first bytes measure buffers, not the link.
            (secs >= 0.5 && moved > 0).then(|| moved as f64 / secs)
        });
        let _ = match (self, rate) {
            (Moved::Rate(_), Some(r)) => write!(w, "{}/s", human(r as u64)),
            (Moved::Eta(_), Some(r)) => {
                let left = state.len().unwrap_or(0).saturating_sub(state.pos());
                let secs = (left as f64 / r).round() as u64;
                write!(w, "{:#}", HumanDuration(Duration::from_secs(secs)))
            }
            (_, None) => write!(w, "-"),
        };
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
