//! Downloads from nginx: sizes, a gzip body (chunked), 404, `--overwrite`, IPv6, `--raw`.
use crate::nginx::Nginx;
use crate::{assert_same_file, head_of, http, names, write_pattern};

#[test]
fn files_of_0_b_1_b_1_mib_and_100_mib_arrive_byte_identical() {
    if !crate::common::need::tool("nginx") {
        return;
    }
    let nginx = Nginx::start();
    let out = tempfile::tempdir().unwrap();
    for (name, len) in [
        ("empty.bin", 0u64),
        ("one.bin", 1),
        ("mib.bin", 1 << 20),
        ("big.bin", 100 << 20),
    ] {
        let src = nginx.www().join(name);
        write_pattern(&src, len, len + 7);
        let dest = out.path().join(name);
        let run = http(&[
            "-o",
            dest.to_str().unwrap(),
            &nginx.url(&format!("/{name}")),
        ]);
        run.assert_ok();
        assert!(run.stdout.is_empty(), "{name}: stdout {:?}", run.out());
        assert_same_file(&dest, &src);
    }
    // The body on stdout when no -o is given.
    let run = http(&[&nginx.url("/mib.bin")]);
    run.assert_ok();
    assert!(run.stdout == std::fs::read(nginx.www().join("mib.bin")).unwrap());
    // Only the files asked for: no temporary file left beside them.
    assert_eq!(
        names(out.path()),
        ["big.bin", "empty.bin", "mib.bin", "one.bin"]
    );
    // nginx sent each file whole, with its length (not compressed, not chunked).
    let log = nginx.access_lines(5);
    assert!(
        log.iter().any(|l| l.contains(&format!(
            "/big.bin 200 {} enc=- len={}",
            100 << 20,
            100 << 20
        ))),
        "{log:?}"
    );
}

#[test]
fn a_gzip_response_comes_chunked_and_is_decoded() {
    if !crate::common::need::tool("nginx") {
        return;
    }
    let nginx = Nginx::start();
    let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(nginx.www().join("text.txt"), &text).unwrap();

    let run = http(&["-i", &nginx.url("/text.txt")]);
    run.assert_ok();
    let out = run.out();
    let head = head_of(&out);
    assert!(head.starts_with("http/1.1 200 ok\n"), "{head}");
    assert!(head.contains("\ntransfer-encoding: chunked"), "{head}");
    assert!(!head.contains("\ncontent-length:"), "{head}");
    let body = &out[out.find("\n\n").unwrap() + 2..];
    assert!(body == text, "decoded body differs ({} bytes)", body.len());

    let dest = tempfile::tempdir().unwrap();
    let file = dest.path().join("text.txt");
    http(&["-o", file.to_str().unwrap(), &nginx.url("/text.txt")]).assert_ok();
    assert_same_file(&file, &nginx.www().join("text.txt"));

    // On the wire: gzip, no Content-Length (so chunked), far fewer bytes than the text.
    let log = nginx.access_lines(2);
    assert_eq!(log.len(), 2, "{log:?}");
    for line in &log {
        assert!(line.ends_with("enc=gzip len=-"), "{line}");
        let sent: usize = line.split(' ').nth(4).unwrap().parse().unwrap();
        assert!(
            sent < text.len() / 3,
            "{sent} bytes sent for {}",
            text.len()
        );
    }
}

#[test]
fn a_404_is_one_error_line_and_leaves_no_file() {
    if !crate::common::need::tool("nginx") {
        return;
    }
    let nginx = Nginx::start();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("missing.bin");
    let url = nginx.url("/missing.bin");
    let run = http(&["-o", dest.to_str().unwrap(), &url]);
    let line = run.assert_error("404");
    assert!(line.contains("Not Found") && line.contains(&url), "{line}");
    assert!(run.stdout.is_empty());
    assert!(names(out.path()).is_empty(), "{:?}", names(out.path()));
    // Without -o as well: an error, and the error page not passed off as the body.
    let run = http(&[&url]);
    run.assert_error("404");
    assert!(run.stdout.is_empty(), "{}", run.out());
}

#[test]
fn an_existing_file_is_replaced_only_with_overwrite() {
    if !crate::common::need::tool("nginx") {
        return;
    }
    let nginx = Nginx::start();
    write_pattern(&nginx.www().join("mib.bin"), 1 << 20, 3);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mine.bin");
    std::fs::write(&dest, "keep me\n").unwrap();
    let url = nginx.url("/mib.bin");

    let run = http(&["-o", dest.to_str().unwrap(), &url]);
    run.assert_error("--overwrite");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "keep me\n");
    assert_eq!(names(out.path()), ["mine.bin"]);

    http(&["-o", dest.to_str().unwrap(), "--overwrite", &url]).assert_ok();
    assert_same_file(&dest, &nginx.www().join("mib.bin"));
    assert_eq!(names(out.path()), ["mine.bin"]);
}

#[test]
fn an_ipv6_literal_url_reaches_nginx_on_loopback() {
    if !crate::common::need::tool("nginx") {
        return;
    }
    let nginx = Nginx::start();
    write_pattern(&nginx.www().join("mib.bin"), 1 << 20, 6);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mib.bin");
    http(&["-o", dest.to_str().unwrap(), &nginx.url6("/mib.bin")]).assert_ok();
    assert_same_file(&dest, &nginx.www().join("mib.bin"));
    let log = nginx.access_lines(1);
    assert!(log[0].starts_with("::1 GET /mib.bin 200 "), "{log:?}");
}

#[test]
fn raw_shows_the_request_sent_and_the_reply_as_it_came() {
    if !crate::common::need::tool("nginx") {
        return;
    }
    let nginx = Nginx::start();
    let body = "seed 000 asked for this\n";
    std::fs::write(nginx.www().join("page.bin"), body).unwrap();
    let run = http(&["--raw", &nginx.url("/page.bin?x=1")]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "GET /page.bin?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            nginx.port
        )
    );
    let out = run.out();
    let (head, rest) = out
        .split_once("\r\n\r\n")
        .expect("no blank line after the head");
    // As nginx wrote it: CRLF lines, its own capitals (hyper would have lower-cased them).
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nServer: nginx"), "{head}");
    assert!(
        head.contains(&format!("\r\nContent-Length: {}", body.len())),
        "{head}"
    );
    assert!(head.contains("\r\nConnection: close"), "{head}");
    assert_eq!(rest, body);
}
