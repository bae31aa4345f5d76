//! `COPY` and `MOVE`, to the `Destination` header's name under `/dav/`. A file is copied
//! through the same partial file and writer as an upload (so the copy appears under its name
//! only whole), a folder folder by folder and file by file beneath the root, links and
//! special files left out; a move is the store's rename.
use std::io::{self, Read};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use tracing::info;

use super::{PREFIX, created};
use crate::files::names::{self, RelName};
use crate::files::protocol::FileHeader;
use crate::files::store::partial::Partial;
use crate::files::store::visit::Flow;
use crate::files::store::writer::Writer;
use crate::files::store::{Kind, Root};
use crate::files::web::Web;
use crate::files::web::access::Mode;
use crate::files::web::body::{Reply, io_reply, plain};
use crate::files::web::disk::{blocking, stat};
use crate::files::web::path;

/// `MOVE` and `COPY`: to the `Destination` header's path under `/dav/`, replacing what is there
/// unless `Overwrite: F`.
pub async fn request(
    req: Request<Incoming>,
    web: &Arc<Web>,
    mode: Mode,
    name: Option<RelName>,
    tokens: &[String],
) -> Reply {
    let h = req.headers();
    let moving = req.method().as_str() == "MOVE";
    let Some(from) = name else {
        return plain(StatusCode::FORBIDDEN, "the root is not moved or copied\n");
    };
    let Some(dest) = h.get("destination").and_then(|v| v.to_str().ok()) else {
        return plain(StatusCode::BAD_REQUEST, "Destination is needed\n");
    };
    // An absolute URL (its path only counts) or an absolute path.
    let path = match dest.find("://") {
        Some(i) => dest[i + 3..].find('/').map_or("/", |j| &dest[i + 3 + j..]),
        None => dest,
    };
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return plain(
            StatusCode::BAD_GATEWAY,
            "the destination is not under /dav/ on this server\n",
        );
    };
    let to = match path::parse(rest) {
        Ok(path::Target { name: Some(n), .. }) => n,
        Ok(_) => return plain(StatusCode::FORBIDDEN, "the root cannot be replaced\n"),
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("name refused: {e}\n")),
    };
    if moving && !mode.edits() {
        return plain(StatusCode::FORBIDDEN, "this server is upload-only\n");
    }
    if !web.locks.may_change(to.as_str(), true, tokens) {
        return plain(StatusCode::LOCKED, "the destination is locked\n");
    }
    let overwrite = !h
        .get("overwrite")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"F"));
    let deep = h.get("depth").is_none_or(|v| v.as_bytes() != b"0");
    let existed = stat(web, Some(to.clone())).await.is_ok();
    if existed && !overwrite {
        return plain(
            StatusCode::PRECONDITION_FAILED,
            "the destination exists (Overwrite: F)\n",
        );
    }
    if from == to {
        return plain(
            StatusCode::FORBIDDEN,
            "the source and the destination are the same\n",
        );
    }
    let parent = to
        .as_str()
        .rsplit_once('/')
        .map(|(p, _)| p.to_string())
        .and_then(|p| names::validate(&p).ok());
    match stat(web, parent).await {
        Ok(e) if e.kind == Kind::Dir => {}
        _ => {
            return plain(
                StatusCode::CONFLICT,
                "the destination's parent folder does not exist\n",
            );
        }
    }
    let root = web.state.root.clone();
    let (a, b) = (from.clone(), to.clone());
    let done = if moving {
        blocking(move || root.rename(&a, &b, overwrite)).await
    } else {
        blocking(move || copy(&root, &a, &b, deep, overwrite)).await
    };
    match done {
        Ok(()) => {
            if moving {
                web.locks.forget_under(from.as_str());
            }
            info!(from = %from, to = %to, moving, "copied or moved (WebDAV)");
            created(if existed {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::CREATED
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            plain(StatusCode::FORBIDDEN, format!("{e}\n"))
        }
        Err(e) => io_reply(&e),
    }
}

/// Copies the file `from` to `to` (replacing a file there with `replace`).
fn copy_file(root: &Root, file: std::fs::File, to: &RelName, replace: bool) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = file.metadata()?;
    let header = FileHeader {
        name: to.as_str().to_string(),
        size: md.len(),
        mode: md.mode() & 0o777,
        mtime_ns: md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec(),
    };
    let mut w = Writer::start(Partial::open_with(root, to, &header, replace, true)?)?;
    let res = (|| {
        let mut f = file.take(header.size);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n])?;
        }
        if w.position() < header.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was copied",
            ));
        }
        w.vouch()
    })();
    w.end(res).map(|_| ())
}

/// Copies `from` (a file, or a folder with `deep` all it holds) to `to`.
pub fn copy(
    root: &Root,
    from: &RelName,
    to: &RelName,
    deep: bool,
    replace: bool,
) -> io::Result<()> {
    let me = root.stat(Some(from))?;
    match me.kind {
        Kind::File => copy_file(root, root.open_file(from)?, to, replace),
        Kind::Other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file or a folder",
        )),
        Kind::Dir => {
            if to.as_str().starts_with(&format!("{}/", from.as_str())) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a folder cannot be copied into itself",
                ));
            }
            if replace && root.stat(Some(to)).is_ok() {
                root.remove(to)?;
            }
            root.make_dir(to)?;
            if !deep {
                return Ok(());
            }
            root.walk(Some(from), &mut |v| {
                let Ok(dest) = names::validate(&format!("{}/{}", to.as_str(), v.rel)) else {
                    return Ok(Flow::Skip);
                };
                match v.entry.kind {
                    Kind::Dir => root.make_dir(&dest)?,
                    Kind::File => copy_file(root, v.open()?, &dest, false)?,
                    Kind::Other => {}
                }
                Ok(Flow::Go)
            })
        }
    }
}
