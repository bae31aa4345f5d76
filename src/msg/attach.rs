//! Attachments (FILEATTACHOPT): the file list carried after a message's text, the TCP side
//! that serves a file to the peer that asks for it (GETFILEDATA), and fetching a file into a
//! directory with taojie's file rules.
//!
//! The list is `fileID:name:size:mtime:attr:` per file, files separated by `\a`; the fileID is
//! decimal, the rest hex (iptux reads it so); a `:` in a name is written `::`. A request is a
//! packet whose extra part is `packetNo:fileID:offset`, all hex, answered with the raw bytes
//! from the offset to the end of the file.
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

use super::packet::{self, Packet, cmd};
use super::text::Encoding;

/// Files listed per message at most; the rest of a longer list is ignored.
pub const MAX_FILES: usize = 100;
/// Longest wait for a request line or for data from a peer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Attribute of a regular file (the only kind taojie sends or fetches).
const REGULAR: u32 = 1;

/// A file offered to a peer.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Its id in the list.
    pub id: u64,
    /// The name sent (the file's base name).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where it is.
    pub path: PathBuf,
    mtime: u64,
}

impl Offer {
    /// Offers the regular file at `path` under id `id`.
    pub fn new(id: u64, path: &Path) -> Result<Offer> {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if !meta.is_file() {
            bail!("{}: only regular files can be attached", path.display());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{}: no file name", path.display()))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        Ok(Offer {
            id,
            name,
            size: meta.len(),
            path: path.to_path_buf(),
            mtime,
        })
    }
}

/// A file listed in a message received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// Its id in the sender's list.
    pub id: u64,
    /// The name as sent (not yet checked: see [`fetch`]).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its attribute (1: a regular file, 2: a directory).
    pub attr: u32,
}

/// The list for `offers`, in `enc`. `:` in names is written as `_`: iptux reads the size and
/// attribute before it undoes the protocol's `::`, so an escaped name would reach it garbled.
pub fn encode_list(offers: &[Offer], enc: Encoding) -> Vec<u8> {
    let mut out = Vec::new();
    for o in offers {
        let name = o.name.replace([':', '\x07'], "_");
        out.extend_from_slice(format!("{}:", o.id).as_bytes());
        out.extend(enc.encode(&name));
        out.extend_from_slice(format!(":{:x}:{:x}:{REGULAR:x}:\x07", o.size, o.mtime).as_bytes());
    }
    out
}

/// Parses a file list; entries that do not parse are skipped, and at most [`MAX_FILES`] are
/// kept.
pub fn parse_list(list: &[u8], enc: Encoding) -> Vec<Attachment> {
    list.split(|&b| b == 0x07)
        .filter_map(|entry| parse_entry(entry.strip_prefix(b":").unwrap_or(entry), enc))
        .take(MAX_FILES)
        .collect()
}

fn parse_entry(entry: &[u8], enc: Encoding) -> Option<Attachment> {
    // Split at single `:`, keeping `::` (an escaped colon) inside the name.
    let mut fields: Vec<Vec<u8>> = vec![Vec::new()];
    let mut i = 0;
    while i < entry.len() {
        match entry[i] {
            b':' if entry.get(i + 1) == Some(&b':') && fields.len() == 2 => {
                fields[1].push(b':');
                i += 2;
                continue;
            }
            b':' => fields.push(Vec::new()),
            b => fields.last_mut()?.push(b),
        }
        i += 1;
    }
    if fields.len() < 5 {
        return None;
    }
    let text = |f: &[u8]| {
        std::str::from_utf8(f)
            .ok()
            .map(str::trim)
            .map(str::to_owned)
    };
    let id = text(&fields[0])?.parse().ok()?;
    let size = u64::from_str_radix(&text(&fields[2])?, 16).ok()?;
    let attr = u32::from_str_radix(&text(&fields[4])?, 16).ok()?;
    let name = enc.decode(&fields[1]);
    (!name.is_empty()).then_some(Attachment {
        id,
        name,
        size,
        attr,
    })
}

/// Serves `offers` (attached to message `number`) to the peers at `allowed` until each file
/// has been sent whole once, or `wait` has passed; returns the names not fetched.
pub async fn serve(
    listener: TcpListener,
    number: u64,
    offers: Vec<Offer>,
    allowed: HashSet<IpAddr>,
    wait: Duration,
) -> Vec<String> {
    let mut left: HashSet<u64> = offers.iter().map(|o| o.id).collect();
    let deadline = tokio::time::Instant::now() + wait;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<u64>(16);
    while !left.is_empty() {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            Some(id) = done_rx.recv() => { left.remove(&id); }
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                if !allowed.contains(&peer.ip()) {
                    debug!(%peer, "refused a file request from a peer the message was not sent to");
                    continue;
                }
                let offers = offers.clone();
                let done = done_tx.clone();
                tokio::spawn(async move {
                    match serve_one(stream, number, &offers).await {
                        Ok(id) => { let _ = done.send(id).await; }
                        Err(e) => info!(%peer, "file request failed: {e:#}"),
                    }
                });
            }
        }
    }
    offers
        .iter()
        .filter(|o| left.contains(&o.id))
        .map(|o| o.name.clone())
        .collect()
}

/// Answers one GETFILEDATA request; returns the id of the file sent whole.
async fn serve_one(mut stream: TcpStream, number: u64, offers: &[Offer]) -> Result<u64> {
    let request = read_request(&mut stream).await?;
    let p = Packet::parse(&request).map_err(|e| anyhow::anyhow!("bad request: {e}"))?;
    if p.kind() != cmd::GETFILEDATA {
        bail!("unsupported request (command {:#x})", p.kind());
    }
    let (pkt, id, offset) = request_fields(p.extra)?;
    if pkt != number {
        bail!("a request for message {pkt}, not ours");
    }
    let offer = offers
        .iter()
        .find(|o| o.id == id)
        .with_context(|| format!("no file {id} in this message"))?;
    let mut file = tokio::fs::File::open(&offer.path)
        .await
        .with_context(|| format!("open {}", offer.path.display()))?;
    let offset = offset.min(offer.size);
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut limited = file.take(offer.size - offset);
    tokio::io::copy(&mut limited, &mut stream).await?;
    stream.shutdown().await?;
    Ok(id)
}

/// The `packetNo:fileID:offset` (hex) of a GETFILEDATA request's extra part.
pub fn request_fields(extra: &[u8]) -> Result<(u64, u64, u64)> {
    let fields: Vec<u64> = std::str::from_utf8(extra)
        .ok()
        .map(|s| s.trim_end_matches('\0').split(':'))
        .into_iter()
        .flatten()
        .take(3)
        .map(|f| u64::from_str_radix(f.trim(), 16))
        .collect::<Result<_, _>>()
        .context("bad request fields")?;
    match fields[..] {
        [pkt, id, offset] => Ok((pkt, id, offset)),
        _ => bail!("a request needs packetNo:fileID:offset"),
    }
}

/// Reads a request: up to its NUL, or what came before the peer paused; at most a packet.
async fn read_request(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        let n = match tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(r) => r?,
            Err(_) if !buf.is_empty() => break,
            Err(_) => bail!("no request within {}s", IO_TIMEOUT.as_secs()),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.iter().position(|&b| b == 0) {
            buf.truncate(end);
            break;
        }
        if buf.len() > 1024 {
            bail!("request longer than 1 KiB");
        }
    }
    Ok(buf)
}

/// What a fetch asks for, and of whom.
pub struct Request<'a> {
    /// The sender's address (its TCP port is the port its UDP packets came from).
    pub peer: SocketAddr,
    /// The message's packet number.
    pub number: u64,
    /// Our own packet number for the request.
    pub own_number: u64,
    /// Our user and host names, encoded for the peer.
    pub user: &'a [u8],
    /// Our host name, encoded for the peer.
    pub host: &'a [u8],
    /// The address our messenger socket is bound to: the connection comes from it, since
    /// peers (iptux, and taojie itself) serve files only to the hosts they sent them to.
    pub local: IpAddr,
}

/// Fetches `file` into `dir`: written to a temporary name beside its place, checked to be
/// exactly the announced size, synced, then given its name, which never replaces an existing
/// file (`name.1`, `name.2`, … are tried). Returns where it landed.
pub async fn fetch(req: &Request<'_>, file: &Attachment, dir: &Path) -> Result<PathBuf> {
    if file.attr & 0xff != REGULAR {
        bail!(
            "{:?} is not a regular file (directories are not fetched)",
            file.name
        );
    }
    let name = crate::names::validate(&file.name)
        .ok()
        .filter(|n| n.components().count() == 1)
        .with_context(|| format!("refused the file name {:?}", file.name))?;
    let mut stream = tokio::time::timeout(IO_TIMEOUT, connect_from(req.local, req.peer))
        .await
        .context("connect timed out")?
        .with_context(|| format!("connect to {}", req.peer))?;
    let extra = format!("{:x}:{:x}:0:\0", req.number, file.id);
    let ask = packet::build(
        req.own_number,
        req.user,
        req.host,
        cmd::GETFILEDATA,
        extra.as_bytes(),
    );
    stream.write_all(&ask).await?;

    let tmp = dir.join(format!(
        ".{}.{:x}.taojie-part",
        name.as_str(),
        req.own_number
    ));
    let result = receive_into(&mut stream, &tmp, file.size).await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    match place(&tmp, dir, name.as_str()) {
        Ok(path) => Ok(path),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

async fn connect_from(local: IpAddr, peer: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match peer {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if !local.is_unspecified() && local.is_ipv4() == peer.is_ipv4() {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    socket.connect(peer).await
}

async fn receive_into(stream: &mut TcpStream, tmp: &Path, size: u64) -> Result<()> {
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .await
        .with_context(|| format!("create {}", tmp.display()))?;
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while got < size {
        let want = buf
            .len()
            .min(usize::try_from(size - got).unwrap_or(usize::MAX));
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut buf[..want]))
            .await
            .context("the sender stalled")??;
        if n == 0 {
            bail!("the sender closed after {got} of {size} bytes");
        }
        out.write_all(&buf[..n]).await?;
        got += n as u64;
    }
    out.sync_all().await?;
    Ok(())
}

/// Gives the finished temporary file its name without replacing anything: a hard link fails
/// when the name is taken, so a taken name is never overwritten, even in a race.
fn place(tmp: &Path, dir: &Path, name: &str) -> Result<PathBuf> {
    for n in 0..1000 {
        let candidate = match n {
            0 => dir.join(name),
            n => dir.join(format!("{name}.{n}")),
        };
        match std::fs::hard_link(tmp, &candidate) {
            Ok(()) => {
                std::fs::remove_file(tmp)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("{}", candidate.display())),
        }
    }
    bail!("no free name for {name} in {}", dir.display())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lists_as_iptux_writes_them_parse() {
        let list = b"10000:a.txt:1f:65f0a3b2:1:\x07:10001:b::c.bin:400:65f0a3b2:1:14=1:\x07";
        let files = parse_list(list, Encoding::Utf8);
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0],
            Attachment {
                id: 10000,
                name: "a.txt".into(),
                size: 0x1f,
                attr: 1
            }
        );
        assert_eq!(files[1].name, "b:c.bin");
        assert_eq!(files[1].size, 0x400);
        assert!(parse_list(b"x:y\x07\x07::", Encoding::Gbk).is_empty());
    }

    #[test]
    fn our_list_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r:port.txt");
        std::fs::write(&path, b"hello").unwrap();
        let offer = Offer::new(0, &path).unwrap();
        let files = parse_list(&encode_list(&[offer], Encoding::Gbk), Encoding::Gbk);
        assert_eq!(files[0].name, "r_port.txt");
        assert_eq!(files[0].size, 5);
    }

    #[test]
    fn placing_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"old").unwrap();
        let tmp = dir.path().join(".a.part");
        std::fs::write(&tmp, b"new").unwrap();
        let placed = place(&tmp, dir.path(), "a").unwrap();
        assert_eq!(placed, dir.path().join("a.1"));
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"old");
        assert!(!tmp.exists());
    }

    proptest! {
        #[test]
        fn parse_list_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            prop_assert!(parse_list(&data, Encoding::Gbk).len() <= MAX_FILES);
        }
    }
}
