//! A full disk on the server: an upload into a 10 MiB tmpfs (mounted in a private mount
//! namespace, so it needs root and goes away with the server) says "no space" in one line
//! naming the server, keeps the verified part for a resume (or nothing, when the client asks),
//! never creates the final name, and the server goes on serving.
use super::*;

/// Size of the tmpfs the server's root is.
const DISK_MIB: u64 = 10;
const MIB: u64 = 1 << 20;

/// `taojie serve files` with its root on a fresh tmpfs, or `None` when not root (mounting a
/// tmpfs in a private mount namespace needs it; `need` reports the skip).
fn serve_on_tmpfs(fx: &Fixture) -> Option<Server> {
    if !need::root() || !need::tool("unshare") {
        return None;
    }
    std::fs::create_dir(fx.p("disk")).unwrap();
    // unshare execs sh, sh execs taojie: the child's PID is the server's, and the mount lives
    // in the namespace that ends with it.
    let script = format!(
        "mount -t tmpfs -o size={DISK_MIB}m tmpfs \"$1\" && exec \"$0\" serve files \
         --listen 127.0.0.1:0 --root \"$1\" --key \"$2\""
    );
    let (disk, key) = (fx.s("disk"), fx.s("key"));
    let args = ["-m", "sh", "-c", &script, bin(), &disk, &key];
    Some(Server::start_program("unshare", &args, 1, &[]))
}

/// A path inside the server's mount namespace, seen from ours.
fn on_disk(srv: &Server, fx: &Fixture, name: &str) -> PathBuf {
    let disk = fx.p("disk");
    let rel = disk.strip_prefix("/").unwrap();
    PathBuf::from(format!("/proc/{}/root", srv.child.id()))
        .join(rel)
        .join(name)
}

fn free(srv: &Server, fx: &Fixture) -> u64 {
    taojie::sys::free_space(&on_disk(srv, fx, "")).unwrap()
}

/// The lines of `put`'s standard error that are its own errors.
fn error_lines(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.starts_with("taojie:")).collect()
}

#[test]
fn a_full_disk_says_so_keeps_the_verified_part_and_the_server_goes_on() {
    let fx = Fixture::new();
    let Some(srv) = serve_on_tmpfs(&fx) else {
        return;
    };
    let addr = srv.addr("files", "tcp");
    assert!(
        free(&srv, &fx) <= DISK_MIB * MIB,
        "the root is not the tmpfs"
    );
    // Someone else's 1 MiB, then a file of exactly the space left: it passes the server's
    // free-space check, and the disk fills near its end (the resume state takes a page too).
    std::fs::write(on_disk(&srv, &fx, "other"), vec![1u8; MIB as usize]).unwrap();
    let size = free(&srv, &fx);
    assert_eq!(size, (DISK_MIB - 1) * MIB);
    random_file(&fx.p("src/big"), size as usize, 14);
    random_file(&fx.p("src/small"), 100_000, 15);
    let (big, small) = (fx.s("src/big"), fx.s("src/small"));
    let part = on_disk(&srv, &fx, ".big.taojie-part");

    let (ok, _, err) = fx.run(&["put", &addr, &big]);
    assert!(!ok, "put into a full disk succeeded: {err}");
    let lines = error_lines(&err);
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(
        lines[0]
            .starts_with("taojie: the server has no space left for big (the disk filled after ")
            && lines[0].contains("of 9.00 MiB; 8.00 MiB kept: put it again to resume"),
        "{err}"
    );
    assert!(
        !on_disk(&srv, &fx, "big").exists(),
        "the final name was created"
    );
    // Two whole segments verified and kept; the bytes after them given back.
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 8 * MIB);
    assert!(on_disk(&srv, &fx, ".big.taojie-state").exists());

    // The server goes on: a small put, a get and a listing.
    let (ok, _, err) = fx.run(&["put", &addr, &small]);
    assert!(ok, "{err}");
    assert!(same(&fx.p("src/small"), &on_disk(&srv, &fx, "small")));
    let out = fx.s("out");
    let (ok, _, err) = fx.run(&["get", &addr, "small", "-o", &out]);
    assert!(ok, "{err}");
    assert!(same(&fx.p("src/small"), &fx.p("out/small")));
    let (ok, listing, err) = fx.run(&["ls", &addr, "--json"]);
    assert!(ok, "{err}");
    let names: Vec<String> = json(&listing)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["other", "small"]);

    // Still no room for the rest: refused before a byte moves, the kept part untouched.
    let (ok, _, err) = fx.run(&["put", &addr, &big]);
    assert!(!ok);
    let lines = error_lines(&err);
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("taojie: the server has no space left for big (needs 1.00 MiB more, ")
            && lines[0].contains(" free; 8.00 MiB kept"),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 8 * MIB);

    // Room made on the server: the same put resumes and sends only the missing 1 MiB.
    std::fs::remove_file(on_disk(&srv, &fx, "other")).unwrap();
    let (ok, report, err) = fx.run(&["put", &addr, &big, "--json"]);
    assert!(ok, "{err}");
    let file = &json(&report)["files"][0];
    assert_eq!(file["status"], "verified", "{report}");
    assert_eq!(file["resumed_from"], 8 * MIB, "{report}");
    assert_eq!(file["wire_bytes"], size - 8 * MIB, "{report}");
    assert!(same(&fx.p("src/big"), &on_disk(&srv, &fx, "big")));
    assert!(!part.exists());

    let mut srv = srv;
    assert!(srv.child.try_wait().unwrap().is_none(), "the server died");
}

#[test]
fn with_no_resume_a_full_disk_keeps_nothing() {
    let fx = Fixture::new();
    let Some(srv) = serve_on_tmpfs(&fx) else {
        return;
    };
    let addr = srv.addr("files", "tcp");
    let size = free(&srv, &fx);
    assert_eq!(
        size,
        DISK_MIB * MIB,
        "the root is not an empty {DISK_MIB} MiB tmpfs"
    );
    random_file(&fx.p("src/big"), size as usize, 16);
    let big = fx.s("src/big");

    let (ok, _, err) = fx.run(&["put", &addr, &big, "--no-resume"]);
    assert!(!ok, "{err}");
    let lines = error_lines(&err);
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("taojie: the server has no space left for big (the disk filled")
            && lines[0].ends_with("; nothing kept)"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(on_disk(&srv, &fx, ""))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left on the server: {left:?}");
    assert_eq!(free(&srv, &fx), size, "the space was not given back");

    // A kept part from a plain put is removed by a --no-resume put that still does not fit.
    let (ok, _, _) = fx.run(&["put", &addr, &big]);
    assert!(!ok);
    assert!(on_disk(&srv, &fx, ".big.taojie-part").exists());
    let (ok, _, err) = fx.run(&["put", &addr, &big, "--no-resume"]);
    assert!(!ok);
    assert!(err.contains("; nothing kept)"), "{err}");
    assert!(!on_disk(&srv, &fx, ".big.taojie-part").exists());
    assert!(!on_disk(&srv, &fx, ".big.taojie-state").exists());
}

/// A full disk on the client's side: `get` into a 10 MiB tmpfs (its own mount namespace, as
/// the server's above) that 1 MiB of someone else's leaves 9 MiB of: the file of 9 MiB fills
/// it mid-file; one line says this side has no space, the verified segments are kept beside
/// the target, and once there is room the same get fetches only the rest.
#[test]
fn get_into_a_full_local_disk_says_so_and_resumes_when_there_is_room() {
    if !need::root() || !need::tools(&["unshare", "mount", "sh"]) {
        return;
    }
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    let size = (DISK_MIB - 1) * MIB;
    random_file(&fx.p("root/big"), size as usize, 16);
    std::fs::create_dir(fx.p("disk")).unwrap();
    // Everything that looks at the tmpfs runs inside the namespace that holds it.
    let script = r#"
        mount -t tmpfs -o size=10m tmpfs "$1" || exit 99
        head -c 1048576 /dev/zero > "$1/other"
        "$0" get "$2" big -o "$1" --key "$3"; echo "first $?"
        for f in "$1"/.big*part "$1"/big; do [ -e "$f" ] && echo "file ${f##*/} $(stat -c %s "$f")"; done
        rm "$1/other"
        "$0" get "$2" big -o "$1" --key "$3" --json; echo "second $?"
        cmp -s "$1/big" "$4" && echo same
    "#;
    let (disk, key, want) = (fx.s("disk"), fx.s("key"), fx.s("root/big"));
    let (st, out, err) = run_program(
        "unshare",
        &["-m", "sh", "-c", script, bin(), &disk, &addr, &key, &want],
        b"",
        LIMIT,
    );
    let out = String::from_utf8_lossy(&out);
    assert!(st.success(), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"first 1"), "the first get: {out}{err}");
    let errors = error_lines(&err);
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(
        errors[0].starts_with(&format!(
            "taojie: {disk} has no space left for big (the disk filled after "
        )) && errors[0].contains("8.00 MiB kept: get it again to resume"),
        "{err}"
    );
    // Two whole segments kept beside the target; no file at the final name.
    assert!(
        lines.contains(&format!("file .big.taojie-part {}", 8 * MIB).as_str()),
        "{out}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("file big ")), "{out}");
    // With room, the rest only.
    assert!(lines.contains(&"second 0"), "{out}{err}");
    let report = lines
        .iter()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{out}"));
    let file = &json(report)["files"][0];
    assert_eq!(file["resumed_from"], 8 * MIB, "{report}");
    assert_eq!(file["wire_bytes"], size - 8 * MIB, "{report}");
    assert!(lines.contains(&"same"), "{out}");
}
