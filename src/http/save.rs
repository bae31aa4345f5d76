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

/// The file `-o PATH` names for `url`: PATH itself, or, when PATH is a directory (or ends
/// in `/`), the URL's last path segment inside it, as curl's `--output-dir` with `-O`. Checked
/// before the request: the directory must exist, and an existing file is an error unless
/// `overwrite` (a directory always is).
pub fn target(path: &Path, url: &reqwest::Url, overwrite: bool) -> Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let shown = path.display();
    let file = if path.is_dir() || path.as_os_str().as_bytes().ends_with(b"/") {
        if !path.is_dir() {
            bail!("-o {shown}: no such directory");
        }
        let name = url_file_name(url).with_context(|| {
            format!("-o {shown}: the URL's path names no file to save there (give -o DIR/NAME)")
        })?;
        path.join(name)
    } else {
        path.to_path_buf()
    };
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!("-o {shown}: {} is not a directory", dir.display());
    }
    match std::fs::symlink_metadata(&file) {
        Ok(m) if m.is_dir() => bail!(
            "{} is a directory; not replacing it (--overwrite replaces files only)",
            file.display()
        ),
        Ok(_) if !overwrite => bail!(
            "{} exists; not replacing it (--overwrite to replace)",
            file.display()
        ),
        _ => Ok(file),
    }
}

/// The URL's last path segment, percent-decoded, if it is a plain file name.
fn url_file_name(url: &reqwest::Url) -> Option<String> {
    let last = url.path_segments()?.next_back()?;
    let name = super::percent_decode(last).ok()?;
    let plain = !matches!(name.as_str(), "" | "." | "..")
        && !name.contains('/')
        && !name.chars().any(char::is_control);
    plain.then_some(name)
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
    // Errors name the file asked for, never the temporary one.
    let result = write_body(response, &tmp, expected, cap)
        .await
        .map_err(|e| tell_of(e, &tmp, path));
    let finish = result.and_then(|n| {
        if !overwrite {
            // A hard link fails when the name was taken meanwhile: still never replaced.
            std::fs::hard_link(&tmp, path).with_context(|| {
                format!("{} appeared meanwhile; not replacing it", path.display())
            })?;
            std::fs::remove_file(&tmp)?;
        } else {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot put the body at {}", path.display()))?;
        }
        Ok(n)
    });
    if finish.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    finish
}

/// `e`, with the file asked for (`path`) in place of the temporary one (`tmp`).
fn tell_of(e: anyhow::Error, tmp: &Path, path: &Path) -> anyhow::Error {
    let text = format!("{e:#}");
    let tmp = tmp.display().to_string();
    match text.contains(&tmp) {
        true => anyhow::anyhow!(text.replace(&tmp, &path.display().to_string())),
        false => e,
    }
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
        .with_context(|| format!("cannot create {}", tmp.display()))?;
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
        file.write_all(&chunk)
            .await
            .with_context(|| format!("cannot write {}", tmp.display()))?;
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
    file.sync_all()
        .await
        .with_context(|| format!("cannot sync {}", tmp.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_asked_for_not_the_temporary_one() {
        let (tmp, path) = (Path::new("/d/.x.0a1b.taojie-part"), Path::new("/d/x"));
        let e = anyhow::anyhow!("No space left on device (os error 28)")
            .context(format!("cannot write {}", tmp.display()));
        assert_eq!(
            tell_of(e, tmp, path).to_string(),
            "cannot write /d/x: No space left on device (os error 28)"
        );
    }
}
