//! Downloads over the page's HTTP as curl makes them: exact ranges (`-r`), a resumed download
//! (`-C -`), HEAD and conditional requests, and what a file's own bytes may do in the page's
//! origin (nothing).
use super::{Web, bytes, need, run};

#[test]
fn curl_ranges_are_exact_and_curl_resumes_a_download() {
    if !need("curl") {
        return;
    }
    let web = Web::start(&[]);
    let data = bytes(3 << 20, 7);
    std::fs::write(web.root("big.bin"), &data).unwrap();
    let url = format!("http://{}/big.bin", web.addr);
    let auth = format!("Authorization: {}", web.bearer());
    let out = web.path("out.bin");
    let out_s = out.to_str().unwrap();
    let n = data.len();
    for (range, a, b) in [
        ("0-0", 0, 1),
        ("10-19", 10, 20),
        ("1048575-1048577", 1048575, 1048578),
        (&format!("{}-", n - 5) as &str, n - 5, n),
        ("-100", n - 100, n),
        (&format!("{}-{}", n - 2, n + 1000), n - 2, n),
    ] {
        let (ok, _, err) = run(
            "curl",
            &["-sSf", "-H", &auth, "-r", range, "-o", out_s, &url],
        );
        assert!(ok, "curl -r {range}: {err}");
        assert_eq!(std::fs::read(&out).unwrap(), &data[a..b], "curl -r {range}");
    }
    let (ok, _, _) = run(
        "curl",
        &[
            "-sSf",
            "-H",
            &auth,
            "-r",
            &format!("{n}-"),
            "-o",
            out_s,
            &url,
        ],
    );
    assert!(!ok, "a range past the end is refused (416)");

    // A download broken off after 1 MiB and some: curl -C - fetches only the rest.
    std::fs::write(&out, &data[..(1 << 20) + 12345]).unwrap();
    let (ok, fetched, err) = run(
        "curl",
        &[
            "-sSf",
            "-H",
            &auth,
            "-C",
            "-",
            "-o",
            out_s,
            "-w",
            "%{size_download}",
            &url,
        ],
    );
    assert!(ok, "curl -C -: {err}");
    assert_eq!(std::fs::read(&out).unwrap(), data, "resumed whole");
    assert_eq!(
        fetched.trim(),
        (n - (1 << 20) - 12345).to_string(),
        "only the rest crossed"
    );
}

#[test]
fn head_conditions_and_a_file_that_holds_a_script() {
    let web = Web::start(&[]);
    std::fs::write(web.root("page.html"), b"<script>alert(1)</script>").unwrap();
    let r = web.send("HEAD", "/page.html", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("25"));
    assert!(r.body.is_empty());
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "a file's bytes run nothing: {csp}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(
        web.send("GET", "/page.html", &[("If-None-Match", &etag)], b"")
            .status,
        304
    );
    // If-Range with another version: the whole file, not a piece of a different one.
    let r = web.send(
        "GET",
        "/page.html",
        &[("Range", "bytes=0-3"), ("If-Range", "\"other\"")],
        b"",
    );
    assert_eq!((r.status, r.body.len()), (200, 25));
    let r = web.send(
        "GET",
        "/page.html",
        &[("Range", "bytes=0-3"), ("If-Range", &etag)],
        b"",
    );
    assert_eq!((r.status, r.body.as_slice()), (206, &b"<scr"[..]));
    let r = web.send("GET", "/page.html?download", &[], b"");
    assert!(
        r.header("content-disposition")
            .is_some_and(|v| v.starts_with("attachment"))
    );
    // The page's own answers carry its policy: no inline script anywhere.
    let page = web.send("GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        !page.text().contains("<script>"),
        "no inline script in the page"
    );
}

/// Reads one response off a kept-alive connection: its head, then exactly the body its
/// `Content-Length` gives (none for a `HEAD`).
fn read_one(s: &mut std::net::TcpStream, head_only: bool) -> super::Resp {
    use std::io::Read;
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).unwrap();
        assert!(n == 1, "the connection closed in a response head: {raw:?}");
        raw.push(byte[0]);
    }
    let mut r = super::parse(&raw);
    let len: usize = r.header("content-length").unwrap().parse().unwrap();
    if !head_only {
        r.body = vec![0; len];
        s.read_exact(&mut r.body).unwrap();
    }
    r
}

#[test]
fn one_kept_alive_connection_serves_whole_files_ranges_and_heads_in_a_row() {
    use std::io::Write;
    let web = Web::start(&[]);
    // More than one of the server's 8 MiB send frames, and not a whole number of them.
    let data = bytes((9 << 20) + 12345, 11);
    std::fs::write(web.root("big.bin"), &data).unwrap();
    std::fs::write(web.root("small.txt"), b"small\n").unwrap();
    let mut s = std::net::TcpStream::connect(&web.addr).unwrap();
    s.set_read_timeout(Some(super::WAIT)).unwrap();
    let (host, auth) = (web.addr.clone(), web.bearer());
    let req = |method: &str, target: &str, extra: &str| {
        format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n{extra}\r\n"
        )
    };
    // All sent at once (pipelined): each response must carry its own file's bytes.
    let sent = [
        req("GET", "/big.bin", ""),
        req("GET", "/big.bin", "Range: bytes=8388600-8388700\r\n"),
        req("HEAD", "/big.bin", ""),
        req("GET", "/small.txt", ""),
        req("GET", "/big.bin?download", "Range: bytes=-5\r\n"),
        req("GET", "/?json", ""),
    ];
    s.write_all(sent.concat().as_bytes()).unwrap();
    let r = read_one(&mut s, false);
    assert_eq!(r.status, 200);
    assert!(r.body == data, "the whole file, byte for byte");
    let r = read_one(&mut s, false);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (206, &data[8388600..=8388700])
    );
    let r = read_one(&mut s, true);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(&*data.len().to_string()));
    let r = read_one(&mut s, false);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"small\n"[..]));
    let r = read_one(&mut s, false);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (206, &data[data.len() - 5..])
    );
    let r = read_one(&mut s, false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("small.txt"), "{}", r.text());
}

#[test]
fn a_file_cut_short_while_sent_ends_its_response_and_nothing_else_is_sent() {
    use std::io::{Read, Write};
    let web = Web::start(&[]);
    let data = bytes(64 << 20, 13);
    std::fs::write(web.root("shrinks.bin"), &data).unwrap();
    let mut s = std::net::TcpStream::connect(&web.addr).unwrap();
    s.set_read_timeout(Some(super::WAIT)).unwrap();
    let head = format!(
        "GET /shrinks.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
        web.addr,
        web.bearer()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The head and the first bytes, then the file loses all but its first 2 MiB while the
    // rest of the response waits for this reader.
    let mut first = vec![0u8; 64 << 10];
    let mut got = 0;
    while got < first.len() {
        let n = s.read(&mut first[got..]).unwrap();
        assert!(n > 0, "closed before the body began");
        got += n;
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(web.root("shrinks.bin"))
        .unwrap();
    f.set_len(2 << 20).unwrap();
    let mut raw = first;
    let _ = s.read_to_end(&mut raw);
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let r = super::parse(&raw[..end]);
    assert_eq!(r.header("content-length"), Some(&*data.len().to_string()));
    let body = &raw[end..];
    assert!(
        body.len() < data.len(),
        "the response is cut, not padded to its length ({} bytes came)",
        body.len()
    );
    assert!(
        body == &data[..body.len()],
        "what came is the file's own bytes"
    );
    // The server goes on serving.
    let r = web.send("GET", "/shrinks.bin", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &data[..2 << 20]));
}
