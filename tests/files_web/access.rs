//! Who gets in, and what hostile requests get: the token (login URL, cookie, Bearer, Basic),
//! the page's own origin for every change, loopback host names, names that climb out of the
//! root, links out of it, the service's modes, and share links.
use std::os::unix::fs::symlink;

use base64::Engine;

use super::{WAIT, Web, bin, request};

#[test]
fn without_the_token_nothing_is_served_and_the_login_url_sets_a_cookie() {
    let web = Web::start(&[]);
    std::fs::write(web.root("secret.txt"), b"only for the token").unwrap();
    for (method, target) in [
        ("GET", "/"),
        ("GET", "/?json"),
        ("GET", "/secret.txt"),
        ("GET", "/?archive=zip"),
        ("PUT", "/new.txt"),
        ("PROPFIND", "/dav/"),
        ("GET", "/dav/secret.txt"),
        ("POST", "/.taojie/api/share?path=secret.txt"),
    ] {
        let r = request(&web.addr, method, target, &[], b"x");
        assert_eq!(
            r.status,
            401,
            "{method} {target} without the token: {}",
            r.text()
        );
        assert!(!r.text().contains("only for the token"));
        let wrong = request(
            &web.addr,
            method,
            target,
            &[("Authorization", "Bearer 00")],
            b"x",
        );
        assert_eq!(wrong.status, 401, "{method} {target} with a wrong token");
    }
    assert!(!web.root("new.txt").exists());
    let dav = request(&web.addr, "PROPFIND", "/dav/", &[], b"");
    assert!(
        dav.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic"))
    );
    // The page's own files hold nothing secret.
    assert_eq!(
        request(&web.addr, "GET", "/.taojie/app.js", &[], b"").status,
        200
    );

    let bad = request(&web.addr, "GET", "/?token=0000", &[], b"");
    assert_eq!(bad.status, 401);
    let login = request(
        &web.addr,
        "GET",
        &format!("/?token={}", web.token),
        &[],
        b"",
    );
    assert_eq!(login.status, 303);
    assert_eq!(
        login.header("location"),
        Some("/"),
        "the token leaves the address bar"
    );
    let cookie = login.header("set-cookie").expect("a cookie").to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let page = request(&web.addr, "GET", "/secret.txt", &[("Cookie", pair)], b"");
    assert_eq!(page.body, b"only for the token");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("anyone:{}", web.token));
    let auth = format!("Basic {basic}");
    let r = request(
        &web.addr,
        "GET",
        "/secret.txt",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.body, b"only for the token");
}

#[test]
fn changes_from_another_origin_or_host_are_refused_and_nothing_is_written() {
    let web = Web::start(&[]);
    std::fs::write(web.root("keep.txt"), b"keep").unwrap();
    let evil = [("Origin", "http://evil.example")];
    let cross = [("Sec-Fetch-Site", "cross-site")];
    for headers in [&evil[..], &cross[..]] {
        let r = web.send("POST", "/made?mkdir", headers, b"");
        assert_eq!(r.status, 403, "{}", r.text());
        let r = web.send("PUT", "/planted.txt", headers, b"planted");
        assert_eq!(r.status, 403);
        let r = web.send("DELETE", "/keep.txt", headers, b"");
        assert_eq!(r.status, 403);
        let r = web.send("POST", "/keep.txt?move=moved.txt", headers, b"");
        assert_eq!(r.status, 403);
    }
    assert!(!web.root("made").exists() && !web.root("planted.txt").exists());
    assert_eq!(std::fs::read(web.root("keep.txt")).unwrap(), b"keep");
    // The page's own origin may.
    let own = format!("http://{}", web.addr);
    let r = web.send(
        "POST",
        "/made?mkdir",
        &[("Origin", &own), ("Sec-Fetch-Site", "same-origin")],
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // A site whose name resolves to 127.0.0.1 (DNS rebinding) is refused outright.
    let r = web.send("GET", "/keep.txt", &[("Host", "evil.example")], b"");
    assert_eq!(r.status, 403);
}

#[test]
fn names_that_climb_out_or_go_through_links_are_refused() {
    let web = Web::start(&[]);
    let outside = web.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"outside the root").unwrap();
    symlink(&outside, web.root("out")).unwrap();
    symlink(web.path("key"), web.root("key-link")).unwrap();
    std::fs::create_dir(web.root("d")).unwrap();
    for target in [
        "/../key",
        "/%2e%2e/key",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/d/%2e%2e/%2e%2e/key",
        "/d/..%2f..%2fkey",
        "//etc/passwd",
        "/d//x",
        "/a%00b",
        "/a%5c..%5ckey",
        "/%ff",
        "/dav/%2e%2e/key",
        "/.taojie/share/x/%2e%2e/key",
    ] {
        let r = web.send("GET", target, &[], b"");
        assert!(
            matches!(r.status, 400 | 401 | 403 | 404),
            "GET {target}: {}",
            r.status
        );
        assert!(
            !r.text().contains("the web key") && !r.text().contains("outside the root"),
            "{target}"
        );
    }
    for target in [
        "/out/secret",
        "/key-link",
        "/dav/out/secret",
        "/out/?archive=zip",
        "/out/?json",
    ] {
        let r = web.send("GET", target, &[], b"");
        assert_eq!(r.status, 403, "GET {target}: {}", r.text());
        assert!(!r.text().contains("outside the root"));
    }
    for (method, target, body) in [
        ("PUT", "/out/planted", &b"x"[..]),
        ("PUT", "/%2e%2e/planted", b"x"),
        ("PUT", "/dav/out/planted", b"x"),
        ("POST", "/out/made?mkdir", b""),
        ("POST", "/d?move=../escaped", b""),
        ("POST", "/d?move=out/escaped", b""),
        ("MKCOL", "/dav/out/made", b""),
        ("POST", "/out/big?upload&size=10&mtime=0", b""),
    ] {
        let r = web.send(method, target, &[], body);
        assert!(
            matches!(r.status, 400 | 403 | 409),
            "{method} {target}: {} {}",
            r.status,
            r.text()
        );
    }
    let r = web.send("MOVE", "/dav/d", &[("Destination", "/dav/../escaped")], b"");
    assert_eq!(r.status, 400);
    let r = web.send(
        "COPY",
        "/dav/d",
        &[("Destination", "/elsewhere/escaped")],
        b"",
    );
    assert_eq!(r.status, 502);
    let mut left: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["secret"], "nothing was written outside the root");
    assert!(web.root("d").is_dir() && !web.path("escaped").exists());
}

#[test]
fn read_only_and_upload_only_are_kept_by_the_server() {
    let ro = Web::start(&["--read-only"]);
    std::fs::write(ro.root("f.txt"), b"f").unwrap();
    assert_eq!(ro.send("GET", "/f.txt", &[], b"").body, b"f");
    assert_eq!(ro.send("GET", "/?json", &[], b"").json()["mode"], "ro");
    for (method, target) in [
        ("PUT", "/g.txt"),
        ("POST", "/g.txt?upload&size=1&mtime=0"),
        ("PATCH", "/g.txt?offset=0&size=1&mtime=0"),
        ("POST", "/new?mkdir"),
        ("DELETE", "/f.txt"),
        ("POST", "/f.txt?move=h.txt"),
        ("PUT", "/dav/g.txt"),
        ("DELETE", "/dav/f.txt"),
        ("MKCOL", "/dav/new"),
    ] {
        let r = ro.send(method, target, &[], b"g");
        assert_eq!(
            r.status,
            403,
            "{method} {target} on a read-only server: {}",
            r.text()
        );
    }
    assert!(ro.root("f.txt").exists() && !ro.root("g.txt").exists() && !ro.root("new").exists());

    let up = Web::start(&["--upload-only"]);
    std::fs::write(up.root("f.txt"), b"f").unwrap();
    let listing = up.send("GET", "/?json", &[], b"").json();
    assert_eq!(listing["mode"], "upload");
    assert!(
        listing["entries"].is_null(),
        "an upload-only server lists nothing"
    );
    for (method, target) in [
        ("GET", "/f.txt"),
        ("GET", "/?archive=zip"),
        ("GET", "/?search=f"),
        ("PROPFIND", "/dav/"),
        ("DELETE", "/f.txt"),
        ("POST", "/f.txt?move=h.txt"),
    ] {
        let r = up.send(method, target, &[("Depth", "1")], b"");
        assert_eq!(r.status, 403, "{method} {target} on an upload-only server");
        assert_ne!(r.body, b"f");
    }
    let r = up.send("PUT", "/dropped.txt", &[], b"dropped");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(std::fs::read(up.root("dropped.txt")).unwrap(), b"dropped");
}

#[test]
fn a_share_link_reaches_what_it_names_read_only_until_it_expires() {
    let web = Web::start(&[]);
    std::fs::create_dir_all(web.root("pub/sub")).unwrap();
    std::fs::write(web.root("pub/sub/a.txt"), b"shared").unwrap();
    std::fs::write(web.root("private.txt"), b"not shared").unwrap();
    let key = web.path("key");
    let share = |name: &str, expires: &str| -> String {
        let (status, out, err) = super::common::run_with_input(
            &[
                "share",
                &web.addr,
                name,
                "--expires",
                expires,
                "--key",
                key.to_str().unwrap(),
            ],
            b"",
            WAIT,
        );
        assert!(status.success(), "taojie share: {err}");
        let link = String::from_utf8(out).unwrap().trim().to_string();
        let path = link
            .strip_prefix(&format!("http://{}", web.addr))
            .expect("a link to the page")
            .to_string();
        assert!(
            path.starts_with("/.taojie/share/") && path.ends_with('/'),
            "{link}"
        );
        path
    };
    let folder = share("pub", "1h");
    let get = |target: &str| request(&web.addr, "GET", target, &[], b"");
    let listing = get(&format!("{folder}?json")).json();
    assert_eq!(listing["mode"], "ro");
    assert_eq!(listing["entries"][0]["name"], "sub");
    assert_eq!(get(&format!("{folder}sub/a.txt")).body, b"shared");
    assert_eq!(get(&format!("{folder}?archive=tar.gz")).status, 200);
    for escape in [
        "../private.txt",
        "%2e%2e/private.txt",
        "sub/../../private.txt",
    ] {
        let r = get(&format!("{folder}{escape}"));
        assert!(matches!(r.status, 400 | 404), "{escape}: {}", r.status);
        assert_ne!(r.body, b"not shared");
    }
    // Read-only, whatever the method.
    for (method, target) in [
        ("PUT", "sub/b.txt"),
        ("DELETE", "sub/a.txt"),
        ("POST", "new?mkdir"),
    ] {
        let r = request(&web.addr, method, &format!("{folder}{target}"), &[], b"x");
        assert_eq!(r.status, 405, "{method} through a share link");
    }
    assert!(web.root("pub/sub/a.txt").exists() && !web.root("pub/sub/b.txt").exists());
    // Nothing else of the page opens with it.
    assert_eq!(get("/private.txt").status, 401);

    let file = share("pub/sub/a.txt", "1h");
    let r = get(&file);
    assert_eq!(r.body, b"shared");
    assert!(
        r.header("content-disposition")
            .is_some_and(|v| v.contains("a.txt"))
    );
    assert_eq!(get(&format!("{file}x")).status, 409, "nothing below a file");

    // One changed character anywhere: refused.
    let mut altered = folder.clone().into_bytes();
    let at = altered.len() - 3;
    altered[at] = if altered[at] == b'0' { b'1' } else { b'0' };
    assert_eq!(get(&String::from_utf8(altered).unwrap()).status, 403);
    let longer = folder.replacen(".taojie/share/", ".taojie/share/cHJpdmF0ZS50eHQ", 1);
    assert_eq!(get(&longer).status, 403);

    let soon = share("pub", "1s");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let r = get(&format!("{soon}sub/a.txt"));
        if r.status == 410 {
            break;
        }
        assert_eq!(r.body, b"shared", "valid until it expires");
        assert!(
            std::time::Instant::now() < deadline,
            "the link never expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // A link from another key: refused.
    let other = web.path("other-key");
    std::fs::write(&other, "another key 0123456789abcdef0123456").unwrap();
    let (_, out, _) = super::common::run_program(
        bin(),
        &["share", &web.addr, "pub", "--key", other.to_str().unwrap()],
        b"",
        WAIT,
    );
    let link = String::from_utf8(out).unwrap();
    let path = link
        .trim()
        .strip_prefix(&format!("http://{}", web.addr))
        .unwrap()
        .to_string();
    assert_eq!(get(&format!("{path}?json")).status, 403);
}
