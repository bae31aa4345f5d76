//! Where a response body goes: standard output as it arrives, or a file that appears only
//! when the body is complete — written to a temporary file beside it, checked against
//! Content-Length, synced, then renamed into place. On any error the temporary file is
//! removed, so no partial file is ever left under the name asked for. A [`Cap`] bounds the
//! body's size after decoding (`--max-filesize`; 100 MiB for a compressed body by default).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncWriteExt;

use super::body::Body;

/// Asks the kernel to start writing back every this many bytes, so the final sync is short.
const WRITEBACK_EVERY: u64 = 8 << 20;
/// The most a compressed body may inflate to unless `--max-filesize` says otherwise.
pub const DEFAULT_DECODED_CAP: u64 = 100 << 20;

/// The largest body written, and why it is that.
#[derive(Debug, Clone, Copy)]
pub struct Cap {
    max: u64,
    /// Set by --max-filesize, rather than the default for a compressed body.
    asked: bool,
}

impl Cap {
    /// The cap `--max-filesize` (`max`) sets, or the default for a compressed body.
    pub fn new(max: Option<u64>, encoded: bool) -> Option<Cap> {
        match (max, encoded) {
            (Some(max), _) => Some(Cap { max, asked: true }),
            (None, true) => Some(Cap {
                max: DEFAULT_DECODED_CAP,
                asked: false,
            }),
            (None, false) => None,
        }
    }

    /// An error when `len` bytes would pass the cap.
    pub fn check(&self, len: u64) -> Result<()> {
        if len <= self.max {
            return Ok(());
        }
        if self.asked {
            bail!("the body is over --max-filesize {} bytes", self.max);
        }
        bail!(
            "the compressed body inflates past {} MiB (--max-filesize BYTES allows more)",
            self.max >> 20
        )
    }
}

/// Streams `response`'s body to standard output; returns the bytes written. A reader that
/// stops reading (`| head`) ends the transfer quietly, as it does for cat and curl.
pub async fn to_stdout(response: reqwest::Response, cap: Option<Cap>) -> Result<u64> {
    use std::io::Write;
    let mut total = 0u64;
    let mut body = Body::of(response)?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if let Some(cap) = &cap {
            cap.check(total + chunk.len() as u64)?;
        }
        // Straight to the file descriptor: `taojie http` runs on a single-threaded runtime
        // (see main.rs), where waiting here is what curl does too, while tokio's stdout would
        // hand each write to another thread and wake this one when it is done.
        let written = {
            let mut out = std::io::stdout().lock();
            out.write_all(&chunk).and_then(|()| out.flush())
        };
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(total),
            r => r.context("write to stdout")?,
        }
        total += chunk.len() as u64;
    }
    Ok(total)
}

/// Streams `response`'s body into `path` (see the module doc); `expected` is the length the
/// body must have (Content-Length of an unencoded body). Returns the bytes written.
pub async fn to_file(
    response: reqwest::Response,
    path: &Path,
    expected: Option<u64>,
    overwrite: bool,
    cap: Option<Cap>,
) -> Result<u64> {
    if !overwrite && path.exists() {
        bail!(
            "{} exists; not replacing it (--overwrite to replace)",
            path.display()
        );
    }
    let tmp = temp_beside(path)?;
    let result = write_body(response, &tmp, expected, cap).await;
    let finish = result.and_then(|n| {
        if !overwrite {
            // A hard link fails when the name was taken meanwhile: still never replaced.
            std::fs::hard_link(&tmp, path).with_context(|| {
                format!("{} appeared meanwhile; not replacing it", path.display())
            })?;
            std::fs::remove_file(&tmp)?;
        } else {
            std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
        }
        Ok(n)
    });
    if finish.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    finish
}

/// A fresh temporary name in the directory of `path`.
fn temp_beside(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("-o {}: not a file name", path.display()))?
        .to_string_lossy();
    let mut nonce = [0u8; 6];
    getrandom::fill(&mut nonce).context("random name")?;
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    Ok(path.with_file_name(format!(".{name}.{hex}.taojie-part")))
}

async fn write_body(
    response: reqwest::Response,
    tmp: &Path,
    expected: Option<u64>,
    cap: Option<Cap>,
) -> Result<u64> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .await
        .with_context(|| format!("create {}", tmp.display()))?;
    let std_file = file.into_std().await;
    let mut file = tokio::fs::File::from_std(std_file.try_clone()?);
    let bar = progress(expected);
    let mut total = 0u64;
    let mut flushed = 0u64;
    let mut body = Body::of(response)?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if let Some(cap) = &cap {
            cap.check(total + chunk.len() as u64)?;
        }
        file.write_all(&chunk).await.context("write the file")?;
        total += chunk.len() as u64;
        bar.set_position(total);
        if total - flushed >= WRITEBACK_EVERY {
            file.flush().await?;
            crate::sys::start_writeback(&std_file, flushed, total - flushed);
            flushed = total;
        }
    }
    bar.finish_and_clear();
    if let Some(want) = expected
        && total != want
    {
        bail!("the body has {total} bytes; Content-Length said {want}");
    }
    file.flush().await?;
    file.sync_all().await.context("sync the file")?;
    Ok(total)
}

/// A progress bar on a terminal (stderr), nothing otherwise.
fn progress(len: Option<u64>) -> ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match len {
        Some(n) => {
            let bar = ProgressBar::new(n);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        }
        None => ProgressBar::new_spinner(),
    }
}
