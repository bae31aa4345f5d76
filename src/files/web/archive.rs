//! A folder as one download (`GET /DIR/?archive=zip` or `?archive=tar.gz`), written while
//! it is read: a thread walks the folder beneath the root (see
//! [`visit`](crate::files::store::visit)), reads each file from the descriptor it opened and
//! writes the archive into a bounded channel that the response drains, so memory stays a few
//! chunks whatever the folder's size (a zip also remembers each entry for its closing
//! directory, a few dozen bytes and the name). Every entry is named below the folder's own
//! name (`photos/2026/a.jpg`), from names the store has validated: none escapes the
//! archive's root. Times are kept (a zip's as DOS time and as Unix seconds); links and other
//! special files are left out. A file that fails to read, or shrinks, cuts the response
//! rather than leaving a broken archive that looks whole.
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;

use chrono::{Datelike, Timelike};
use flate2::Compression;
use flate2::write::GzEncoder;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use tracing::{info, warn};

use super::Web;
use super::body::{self, Feed, FeedWriter, Reply, plain};
use super::download::disposition;
use crate::files::names::{RelName, escape};
use crate::files::store::visit::{Flow, Visit};
use crate::files::store::{Kind, Root};

/// The archive kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Zip (stored, with ZIP64 where sizes or offsets need it).
    Zip,
    /// Tar (GNU long names), gzip-compressed at its fastest level.
    TarGz,
}

impl Format {
    /// Parses `zip`, `tar.gz` (or `tgz`).
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "zip" => Some(Format::Zip),
            "tar.gz" | "tgz" => Some(Format::TarGz),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TarGz => "tar.gz",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Zip => "application/zip",
            Format::TarGz => "application/gzip",
        }
    }
}

/// `GET /DIR/?archive=KIND`.
pub async fn reply(web: &Arc<Web>, dir: Option<RelName>, kind: &str) -> Reply {
    let Some(format) = Format::parse(kind) else {
        return plain(StatusCode::BAD_REQUEST, "archive=zip or archive=tar.gz\n");
    };
    let top = match &dir {
        Some(n) => n.file_name().to_string(),
        None => web
            .state
            .root
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| crate::files::names::validate(n).is_ok())
            .unwrap_or("files")
            .to_string(),
    };
    let (tx, body) = body::streamed(8, None);
    let root = web.state.root.clone();
    let name = format!("{top}.{}", format.extension());
    let shown = escape(dir.as_ref().map_or("", |d| d.as_str()));
    tokio::task::spawn_blocking(move || {
        let err_tx = tx.clone();
        match write(&root, dir.as_ref(), &top, format, tx) {
            Ok(n) => info!(folder = %shown, entries = n, ?format, "archive sent"),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                info!(folder = %shown, "archive not taken whole: the client went away")
            }
            Err(e) => {
                warn!(folder = %shown, error = %e, "archive cut");
                let _ = err_tx.blocking_send(Err(e));
            }
        }
    });
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition(&name, true)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    super::download::file_policy(h);
    r
}

/// Writes the archive of `dir` (entries under `top/`) into `tx`; returns the entries written.
pub fn write(
    root: &Root,
    dir: Option<&RelName>,
    top: &str,
    format: Format,
    tx: Feed,
) -> io::Result<u64> {
    let out = FeedWriter::new(tx);
    match format {
        Format::Zip => {
            let mut zip = zip::ZipWriter::new_stream(out);
            let n = add_all(root, dir, top, &mut |v, path, file| {
                zip_entry(&mut zip, v, path, file)
            })?;
            let mut out = zip.finish().map_err(io::Error::other)?.into_inner();
            out.flush()?;
            Ok(n)
        }
        Format::TarGz => {
            let gz = GzEncoder::new(out, Compression::fast());
            let mut tar = tar::Builder::new(gz);
            tar.mode(tar::HeaderMode::Complete);
            let n = add_all(root, dir, top, &mut |v, path, file| {
                tar_entry(&mut tar, v, path, file)
            })?;
            let mut out = tar.into_inner()?.finish()?;
            out.flush()?;
            Ok(n)
        }
    }
}

type AddFn<'a> = dyn FnMut(&Visit<'_>, &str, Option<(File, u64)>) -> io::Result<()> + 'a;

/// Walks `dir`, handing each folder and file (opened) to `add` with its path in the archive.
fn add_all(root: &Root, dir: Option<&RelName>, top: &str, add: &mut AddFn<'_>) -> io::Result<u64> {
    let mut n = 0;
    root.walk(dir, &mut |v| {
        let path = format!("{top}/{}", v.rel);
        match v.entry.kind {
            Kind::Dir => add(&v, &format!("{path}/"), None)?,
            Kind::File => match v.open() {
                Ok(f) => {
                    let len = f.metadata()?.len();
                    add(&v, &path, Some((f, len)))?
                }
                // Gone (or swapped for something else) since the listing: left out.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Flow::Skip),
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", escape(v.rel)))),
            },
            Kind::Other => return Ok(Flow::Skip),
        }
        n += 1;
        Ok(Flow::Go)
    })?;
    Ok(n)
}

/// A reader of exactly `left` bytes of a file: one that ends early is an error.
struct Exact {
    file: File,
    left: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a file shrank while it was being archived",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn secs(v: &Visit<'_>) -> i64 {
    v.entry.mtime_ns.div_euclid(1_000_000_000)
}

fn zip_entry<W: Write>(
    zip: &mut zip::ZipWriter<zip::write::StreamWriter<W>>,
    v: &Visit<'_>,
    path: &str,
    file: Option<(File, u64)>,
) -> io::Result<()> {
    let t = secs(v);
    let when = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
    let dos = zip::DateTime::from_date_and_time(
        when.year().clamp(1980, 2107) as u16,
        when.month() as u8,
        when.day() as u8,
        when.hour() as u8,
        when.minute() as u8,
        when.second() as u8,
    )
    .unwrap_or_default();
    let unix = u32::try_from(t).ok();
    let base = zip::write::FullFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(dos)
        .with_extended_timestamp(unix, None, None)
        .map_err(io::Error::other)?;
    match file {
        None => zip
            .add_directory(path, base.unix_permissions(0o755))
            .map_err(io::Error::other),
        Some((file, len)) => {
            let opts = base
                .unix_permissions(0o644)
                .large_file(len >= u32::MAX as u64);
            zip.start_file(path, opts).map_err(io::Error::other)?;
            io::copy(&mut Exact { file, left: len }, zip)?;
            Ok(())
        }
    }
}

fn tar_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    v: &Visit<'_>,
    path: &str,
    file: Option<(File, u64)>,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mtime(secs(v).max(0) as u64);
    match file {
        None => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, path, io::empty())
        }
        Some((file, len)) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata()?.permissions().mode() & 0o777;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(mode);
            h.set_size(len);
            tar.append_data(&mut h, path, Exact { file, left: len })
        }
    }
}
