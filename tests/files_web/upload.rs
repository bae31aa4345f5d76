//! Uploads as the page sends them (chunks with a `Content-Digest`, asking where to continue)
//! and whole files in one `PUT`: the file under its name only when whole and verified, a
//! server stopped and started again resumes from what it held, and every chunk that is wrong
//! (offset, size, digest, length) is refused with nothing written.
use super::{Web, bin, bytes, digest, need, run};

const MIB: usize = 1 << 20;
const CHUNK: usize = 8 * MIB;

/// `?size=N&mtime=MS` for an upload of `data`.
fn q(data: &[u8]) -> String {
    format!("size={}&mtime=1767225600000", data.len())
}

/// Asks where the upload of `name` continues.
fn start(web: &Web, name: &str, data: &[u8]) -> u64 {
    let r = web.send("POST", &format!("/{name}?upload&{}", q(data)), &[], b"");
    assert_eq!(r.status, 200, "start: {}", r.text());
    r.json()["offset"].as_u64().unwrap()
}

/// Sends the chunk of `data` at `offset` (`len` bytes); the response.
fn chunk(web: &Web, name: &str, data: &[u8], offset: usize, len: usize) -> super::Resp {
    let piece = &data[offset..offset + len];
    let target = format!("/{name}?offset={offset}&{}", q(data));
    web.send(
        "PATCH",
        &target,
        &[("Content-Digest", &digest(piece))],
        piece,
    )
}

/// The partial file beside `name` (what is held so far), if any.
fn partial_len(web: &Web, name: &str) -> Option<u64> {
    std::fs::metadata(web.root(&format!(".{name}.taojie-part")))
        .ok()
        .map(|m| m.len())
}

#[test]
fn chunks_make_the_file_only_when_whole_and_a_restart_resumes_from_what_was_held() {
    let web = Web::start(&[]);
    let data = bytes(3 * CHUNK + 12345, 3);
    assert_eq!(start(&web, "big.bin", &data), 0);
    for i in 0..2 {
        let r = chunk(&web, "big.bin", &data, i * CHUNK, CHUNK);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["offset"], (i + 1) * CHUNK);
        assert!(
            !web.root("big.bin").exists(),
            "not under its name before it is whole"
        );
    }
    // The partial file is no name of the tree.
    let names: Vec<String> = web.send("GET", "/?json", &[], b"").json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.is_empty(), "{names:?}");
    // The server stops (Ctrl-C) and starts again on the same address: the page asks where to
    // continue and is told the two chunks it sent.
    let addr = web.addr.clone();
    let dir = web.stop();
    let web = Web::start_in(dir, &addr, &[]);
    assert_eq!(start(&web, "big.bin", &data), 2 * CHUNK as u64);
    let r = chunk(&web, "big.bin", &data, 2 * CHUNK, CHUNK);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = chunk(&web, "big.bin", &data, 3 * CHUNK, 12345);
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert_eq!(body["done"], true);
    assert_eq!(body["blake3"], blake3::hash(&data).to_hex().as_str());
    assert_eq!(std::fs::read(web.root("big.bin")).unwrap(), data);
    assert_eq!(partial_len(&web, "big.bin"), None, "nothing left beside it");
    let mtime = std::fs::metadata(web.root("big.bin"))
        .unwrap()
        .modified()
        .unwrap();
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(secs, 1_767_225_600, "the file keeps the time the page gave");
    // A name that exists is not replaced unless asked.
    let r = web.send("POST", &format!("/big.bin?upload&{}", q(b"x")), &[], b"");
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["exists"], true);
    let r = web.send(
        "POST",
        &format!("/big.bin?upload&{}&overwrite=1", q(b"x")),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        std::fs::read(web.root("big.bin")).unwrap(),
        data,
        "replaced only once whole"
    );
}

#[test]
fn wrong_chunks_are_refused_and_write_nothing() {
    let web = Web::start(&["--web-chunk", "8M"]);
    let data = bytes(2 * CHUNK + 100, 4);
    let name = "f.bin";
    assert_eq!(start(&web, name, &data), 0);
    let held = |web: &Web| partial_len(web, name).unwrap();
    // At the wrong offset: told where to continue, nothing written.
    let r = chunk(&web, name, &data, CHUNK, CHUNK);
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["offset"], 0);
    assert_eq!(held(&web), 0);
    // Beyond the declared size, or bigger than a chunk may be.
    let target = format!("/{name}?offset=0&size=10&mtime=1767225600000");
    let r = web.send(
        "PATCH",
        &target,
        &[("Content-Digest", &digest(&data[..20]))],
        &data[..20],
    );
    assert_eq!(r.status, 413, "{}", r.text());
    let big = &data[..CHUNK + 4 * MIB];
    let target = format!("/{name}?offset=0&{}", q(&data));
    let r = web.send("PATCH", &target, &[("Content-Digest", &digest(big))], big);
    assert_eq!(r.status, 413);
    // Not ending on a segment boundary (except the last chunk).
    let r = chunk(&web, name, &data, 0, MIB);
    assert_eq!(r.status, 400);
    // No digest, or one that does not match: nothing held.
    let piece = &data[..CHUNK];
    let r = web.send("PATCH", &target, &[], piece);
    assert_eq!(r.status, 400);
    let mut damaged = piece.to_vec();
    damaged[12345] ^= 1;
    let r = web.send(
        "PATCH",
        &target,
        &[("Content-Digest", &digest(piece))],
        &damaged,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["offset"], 0);
    assert_eq!(held(&web), 0, "a damaged chunk is forgotten");
    // A chunk cut off half-way: forgotten too, the next try is taken.
    let head = format!(
        "PATCH {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Digest: {}\r\nContent-Length: {}\r\n\r\n",
        web.addr,
        web.bearer(),
        digest(piece),
        piece.len()
    );
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(&web.addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&piece[..3 * MIB]).unwrap();
    }
    let deadline = std::time::Instant::now() + super::WAIT;
    let r = loop {
        let r = chunk(&web, name, &data, 0, CHUNK);
        if r.status != 409 || std::time::Instant::now() > deadline {
            break r;
        }
        // The cut-off chunk is still being let go of.
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chunk(&web, name, &data, CHUNK, CHUNK).status, 200);
    assert_eq!(chunk(&web, name, &data, 2 * CHUNK, 100).status, 201);
    assert_eq!(std::fs::read(web.root(name)).unwrap(), data);
    // An empty file is one empty chunk.
    let target = format!("/empty?offset=0&{}", q(b""));
    let r = web.send("PATCH", &target, &[("Content-Digest", &digest(b""))], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(std::fs::read(web.root("empty")).unwrap(), b"");
}

/// Sends the chunk of `data` at `offset` on a connection of its own and reads the answer in
/// a thread: several in flight at once, as the page sends them.
fn chunk_in_thread<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    web: &Web,
    name: &'s str,
    data: &'s [u8],
    offset: usize,
) -> std::thread::ScopedJoinHandle<'s, super::Resp> {
    let (addr, auth) = (web.addr.clone(), web.bearer());
    scope.spawn(move || {
        let piece = &data[offset..(offset + CHUNK).min(data.len())];
        let target = format!("/{name}?offset={offset}&{}", q(data));
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Digest", &digest(piece)),
        ];
        super::request(&addr, "PATCH", &target, &headers, piece)
    })
}

#[test]
fn chunks_in_flight_at_once_and_out_of_order_give_the_exact_file() {
    let web = Web::start(&[]);
    let data = bytes(5 * CHUNK + 4321, 6);
    let name = "many.bin";
    assert_eq!(start(&web, name, &data), 0);
    // Every chunk at once, the last ones first: each is written when the ones before it are.
    let answers: Vec<(usize, super::Resp)> = std::thread::scope(|s| {
        let offsets: Vec<usize> = (0..6).rev().map(|i| i * CHUNK).collect();
        let handles: Vec<_> = offsets
            .iter()
            .map(|&at| (at, chunk_in_thread(s, &web, name, &data, at)))
            .collect();
        handles
            .into_iter()
            .map(|(at, h)| (at, h.join().unwrap()))
            .collect()
    });
    for (at, r) in &answers {
        let end = (at + CHUNK).min(data.len());
        let want = if end == data.len() { 201 } else { 200 };
        assert_eq!(r.status, want, "chunk at {at}: {}", r.text());
        assert_eq!(r.json()["offset"], end, "chunk at {at}: held up to its end");
    }
    let last = &answers[0].1;
    assert_eq!(last.json()["blake3"], blake3::hash(&data).to_hex().as_str());
    assert_eq!(std::fs::read(web.root(name)).unwrap(), data);
    assert_eq!(partial_len(&web, name), None, "nothing left beside it");
}

#[test]
fn a_chunk_ahead_waits_for_the_ones_before_and_a_restart_resumes_after_what_is_contiguous() {
    let web = Web::start(&[]);
    let data = bytes(4 * CHUNK, 7);
    let name = "gap.bin";
    assert_eq!(start(&web, name, &data), 0);
    assert_eq!(chunk(&web, name, &data, 0, CHUNK).status, 200);
    // Overlapping what is held, or not starting where a segment does: refused at once.
    let r = chunk(&web, name, &data, 0, CHUNK);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["offset"], CHUNK);
    let r = chunk(&web, name, &data, CHUNK + 4096, CHUNK - 4096);
    assert_eq!(r.status, 400, "{}", r.text());
    // The third chunk without the second: verified in memory, never written; once nobody
    // sends the second, it is let go and told where the upload continues.
    let r = chunk(&web, name, &data, 2 * CHUNK, CHUNK);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["offset"], CHUNK);
    assert_eq!(
        partial_len(&web, name),
        Some(CHUNK as u64),
        "nothing past the gap"
    );
    // A chunk that claims a range another chunk in flight has claimed is refused, and the
    // first is still taken: the third chunk waits while the second is being sent slowly.
    let (answers, dup) = std::thread::scope(|s| {
        use std::io::Write;
        let piece = &data[CHUNK..2 * CHUNK];
        let head = format!(
            "PATCH /{name}?offset={CHUNK}&{} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nConnection: close\r\nContent-Digest: {}\r\nContent-Length: {}\r\n\r\n",
            q(&data),
            web.addr,
            web.bearer(),
            digest(piece),
            piece.len()
        );
        let mut slow = std::net::TcpStream::connect(&web.addr).unwrap();
        slow.write_all(head.as_bytes()).unwrap();
        slow.write_all(&piece[..MIB]).unwrap();
        // The second chunk is on its way (its first bytes reach the partial file): the same
        // range again is refused.
        let deadline = std::time::Instant::now() + super::WAIT;
        while partial_len(&web, name).unwrap() == CHUNK as u64 {
            assert!(
                std::time::Instant::now() < deadline,
                "the slow chunk never began"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let dup = chunk(&web, name, &data, CHUNK, CHUNK);
        let third = chunk_in_thread(s, &web, name, &data, 2 * CHUNK);
        slow.write_all(&piece[MIB..]).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut slow, &mut raw).unwrap();
        (vec![super::parse(&raw), third.join().unwrap()], dup)
    });
    assert_eq!(dup.status, 409, "{}", dup.text());
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(r.status, 200, "chunk {}: {}", i + 1, r.text());
        assert_eq!(r.json()["offset"], (i + 2) * CHUNK);
    }
    // Stopped now and started again: the upload continues after the three chunks held.
    let addr = web.addr.clone();
    let dir = web.stop();
    let web = Web::start_in(dir, &addr, &[]);
    assert_eq!(start(&web, name, &data), 3 * CHUNK as u64);
    let r = chunk(&web, name, &data, 3 * CHUNK, CHUNK);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(std::fs::read(web.root(name)).unwrap(), data);
}

#[test]
fn a_whole_put_is_kept_only_whole_and_replaces_only_when_asked() {
    if !need("curl") {
        return;
    }
    let web = Web::start(&[]);
    let data = bytes(5 * MIB + 3, 5);
    let src = web.path("src.bin");
    std::fs::write(&src, &data).unwrap();
    let auth = format!("Authorization: {}", web.bearer());
    let url = format!("http://{}/in/sub/curl.bin", web.addr);
    let (ok, _, err) = run(
        "curl",
        &["-sSf", "-H", &auth, "-T", src.to_str().unwrap(), &url],
    );
    assert!(ok, "curl -T: {err}");
    assert_eq!(std::fs::read(web.root("in/sub/curl.bin")).unwrap(), data);
    let (ok, _, _) = run("curl", &["-sSf", "-H", &auth, "-T", "/etc/hostname", &url]);
    assert!(!ok, "an existing file is not replaced without ?overwrite");
    let (ok, _, _) = run(
        "curl",
        &[
            "-sSf",
            "-H",
            &auth,
            "-T",
            "/etc/hostname",
            &format!("{url}?overwrite"),
        ],
    );
    assert!(ok);
    assert_eq!(
        std::fs::read(web.root("in/sub/curl.bin")).unwrap(),
        std::fs::read("/etc/hostname").unwrap()
    );
    // A body cut off: nothing under the name, nothing beside it.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(&web.addr).unwrap();
        let head = format!(
            "PUT /cut.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n",
            web.addr,
            web.bearer(),
            data.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&data[..MIB]).unwrap();
    }
    let deadline = std::time::Instant::now() + super::WAIT;
    while partial_len(&web, "cut.bin").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the cut-off PUT's partial file stayed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!web.root("cut.bin").exists());
    // A Content-Digest that does not match: discarded.
    let r = web.send(
        "PUT",
        "/digest.bin",
        &[("Content-Digest", &digest(b"other"))],
        b"bytes",
    );
    assert_eq!(r.status, 422);
    assert!(!web.root("digest.bin").exists());
}

#[test]
fn folders_are_made_renamed_searched_and_removed_and_a_qr_code_is_drawn() {
    let web = Web::start(&[]);
    assert_eq!(web.send("POST", "/Projects?mkdir", &[], b"").status, 201);
    assert_eq!(
        web.send("POST", "/Projects?mkdir", &[], b"").status,
        409,
        "exists"
    );
    assert_eq!(
        web.send("POST", "/no/such?mkdir", &[], b"").status,
        404,
        "its parent is missing"
    );
    assert_eq!(
        web.send("PUT", "/Projects/Plan%20A.txt", &[], b"plan")
            .status,
        201
    );
    assert_eq!(
        web.send("PUT", "/Projects/other.txt", &[], b"other").status,
        201
    );
    let r = web.send(
        "POST",
        "/Projects/Plan%20A.txt?move=Projects/Plan%20B.txt",
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        std::fs::read(web.root("Projects/Plan B.txt")).unwrap(),
        b"plan"
    );
    let r = web.send(
        "POST",
        "/Projects/other.txt?move=Projects/Plan%20B.txt",
        &[],
        b"",
    );
    assert_eq!(r.status, 409, "a rename never replaces unless asked");
    assert_eq!(
        web.send("POST", "/Projects?move=Archive", &[], b"").status,
        200
    );
    let found = web.send("GET", "/?search=plan", &[], b"").json();
    let names: Vec<&str> = found["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Archive/Plan B.txt"]);
    let listing = web.send("GET", "/Archive/?json", &[], b"").json();
    assert_eq!(listing["entries"].as_array().unwrap().len(), 2);
    assert_eq!(web.send("DELETE", "/Archive", &[], b"").status, 200);
    assert!(
        !web.root("Archive").exists(),
        "a folder goes with what it holds"
    );
    assert_eq!(web.send("DELETE", "/Archive", &[], b"").status, 404);
    // The share dialog's QR code: an SVG drawn here.
    let r = web.send(
        "GET",
        "/.taojie/qr.svg?text=http%3A%2F%2F127.0.0.1%3A9081%2F",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    assert!(r.text().starts_with("<svg") && r.text().contains("<path d=\"M4,4h1v1h-1z"));
    let r = web.send("POST", "/.taojie/api/share?path=&expires=3600", &[], b"");
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("http://{}/.taojie/share/", web.addr)),
        "{url}"
    );
}

#[test]
fn a_chunk_size_that_splits_a_segment_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    for bad in ["5M", "0", "3M"] {
        let args = [
            "serve",
            "files",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root,
            "--insecure-no-auth",
            "--web",
            "127.0.0.1:0",
            "--web-chunk",
            bad,
        ];
        let (status, out, err) = super::common::run_program(bin(), &args, b"", super::WAIT);
        assert!(!status.success(), "--web-chunk {bad} was taken");
        assert!(
            out.is_empty(),
            "nothing announced: {}",
            String::from_utf8_lossy(&out)
        );
        assert!(
            err.contains("not a multiple of 4M"),
            "--web-chunk {bad}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
