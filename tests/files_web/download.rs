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
