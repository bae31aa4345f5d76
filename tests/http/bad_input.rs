//! URLs refused before anything is sent: one clear line, a non-zero exit, no panic.
use crate::http;

#[test]
fn bad_urls_are_one_clear_error_line() {
    let cases = [
        // No scheme: said so, with the form to use.
        ("127.0.0.1:9/x", "give the scheme"),
        ("example.invalid/x", "give the scheme"),
        ("localhost:9/x", "give the scheme"),
        ("", "give the scheme"),
        // A scheme other than http and https.
        ("ftp://127.0.0.1/x", "unsupported scheme \"ftp\""),
        ("file:///etc/passwd", "unsupported scheme \"file\""),
        ("gopher://127.0.0.1:70/", "unsupported scheme \"gopher\""),
        // No host.
        ("http://", "empty host"),
        ("https://", "empty host"),
        ("http://:8080/x", "empty host"),
        ("http://user:pw@/x", "empty host"),
        // Not a URL at all.
        ("http://[::1/x", "invalid IPv6 address"),
        ("http://127.0.0.1:99999/", "invalid port"),
    ];
    for (url, want) in cases {
        for raw in [false, true] {
            let args: &[&str] = if raw { &["--raw", url] } else { &[url] };
            let run = http(args);
            let line = run.assert_error(want);
            assert!(!line.contains("pw@"), "{line}");
            assert!(run.stdout.is_empty(), "{url:?}: {}", run.out());
        }
    }
}

#[test]
fn raw_refuses_https() {
    http(&["--raw", "https://127.0.0.1:9/"]).assert_error("http:// URLs");
}
