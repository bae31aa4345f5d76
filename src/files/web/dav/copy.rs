//! `COPY`: a file copied through the same partial file and writer as an upload (so the copy
//! appears under its name only whole), a folder copied folder by folder and file by file
//! beneath the root, links and special files left out.
use std::io::{self, Read};

use crate::files::names::{self, RelName};
use crate::files::protocol::FileHeader;
use crate::files::store::partial::Partial;
use crate::files::store::visit::Flow;
use crate::files::store::writer::Writer;
use crate::files::store::{Kind, Root};

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
