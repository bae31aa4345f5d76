//! What `taojie http` says when a request cannot be made as asked: a refused connection and
//! https to a plain port each in one line of their own, `-o DIR` saving into the directory
//! under the URL's name, and every refusal about `-o` made before anything is asked of the
//! server, never naming the temporary file (issue 24, item 12).
use crate::nginx::{Nginx, free_port};
use crate::{assert_same_file, http, names, write_pattern};

#[test]
fn a_refused_connection_and_https_to_a_plain_port_are_one_line_each() {
    let port = free_port();
    let run = http(&[&format!("http://127.0.0.1:{port}/x")]);
    let line = run.assert_error("");
    assert_eq!(
        line,
        format!(
            "taojie: error: cannot connect to http://127.0.0.1:{port}: connection refused \
             (nothing listens there)"
        )
    );

    let nginx = Nginx::start();
    std::fs::write(nginx.www().join("a.txt"), "a\n").unwrap();
    let https = nginx.url("/a.txt").replacen("http://", "https://", 1);
    let run = http(&[&https]);
    let line = run.assert_error("");
    assert_eq!(
        line,
        format!(
            "taojie: error: {}: the server did not answer with TLS (a plain port? try {})",
            https.trim_end_matches("/a.txt"),
            nginx.url("/a.txt")
        )
    );
}

#[test]
fn o_with_a_directory_saves_there_under_the_urls_name() {
    let nginx = Nginx::start();
    write_pattern(&nginx.www().join("mib.bin"), 1 << 20, 41);
    std::fs::write(nginx.www().join("caf%C3%A9 two.txt"), "x\n").unwrap();
    std::fs::write(nginx.www().join("café two.txt"), "café\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    // With the slash (curl's --output-dir) and without (as cp takes a directory).
    http(&["-o", &format!("{dir}/"), &nginx.url("/mib.bin")]).assert_ok();
    assert_same_file(&out.path().join("mib.bin"), &nginx.www().join("mib.bin"));
    http(&["-o", dir, &nginx.url("/caf%C3%A9%20two.txt")]).assert_ok();
    assert_eq!(
        std::fs::read_to_string(out.path().join("café two.txt")).unwrap(),
        "café\n"
    );
    // Already there: refused before the request, and kept.
    let before = nginx.access_lines(2).len();
    http(&["-o", dir, &nginx.url("/mib.bin")]).assert_error(&format!(
        "{dir}/mib.bin exists; not replacing it (--overwrite to replace)"
    ));
    http(&["-o", dir, "--overwrite", &nginx.url("/mib.bin")]).assert_ok();
    assert_eq!(names(out.path()), ["café two.txt", "mib.bin"]);
    assert_eq!(nginx.access_lines(before + 1).len(), before + 1);
}

#[test]
fn refusals_about_o_come_before_the_download_and_name_no_temporary_file() {
    let nginx = Nginx::start();
    write_pattern(&nginx.www().join("mib.bin"), 1 << 20, 42);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    std::fs::create_dir(out.path().join("mib.bin")).unwrap();
    std::fs::create_dir(out.path().join("mib.bin/mib.bin")).unwrap();
    let (nested, none_dir, none_file) = (
        format!("{dir}/mib.bin/"),
        format!("{dir}/none/"),
        format!("{dir}/none/x.bin"),
    );
    let cases = [
        // --overwrite does not replace a directory.
        (
            vec!["-o", dir, "--overwrite", "/mib.bin"],
            format!("{dir}/mib.bin is a directory; not replacing it"),
        ),
        (
            vec!["-o", &nested, "--overwrite", "/mib.bin"],
            format!("{dir}/mib.bin/mib.bin is a directory; not replacing it"),
        ),
        // A URL with no name to save under.
        (
            vec!["-o", dir, "/"],
            format!("-o {dir}: the URL's path names no file to save there (give -o DIR/NAME)"),
        ),
        // Directories that are not there.
        (
            vec!["-o", &none_dir, "/mib.bin"],
            format!("-o {dir}/none/: no such directory"),
        ),
        (
            vec!["-o", &none_file, "/mib.bin"],
            format!("-o {dir}/none/x.bin: {dir}/none is not a directory"),
        ),
    ];
    for (args, want) in cases {
        let (last, flags) = args.split_last().unwrap();
        let url = nginx.url(last);
        let mut all = flags.to_vec();
        all.push(&url);
        let run = http(&all);
        let line = run.assert_error(&want);
        assert!(!line.contains("taojie-part"), "{line}");
    }
    assert_eq!(names(out.path()), ["mib.bin"]);
    assert_eq!(names(&out.path().join("mib.bin")), ["mib.bin"]);
    assert!(out.path().join("mib.bin/mib.bin").is_dir());
    assert!(nginx.access_log().is_empty(), "{}", nginx.access_log());
}
