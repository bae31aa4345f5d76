//! WebDAV with the real clients: `rclone` (its webdav remote) syncs a tree of 1,000 files up
//! and down and after changes on either side, and through a connection cut again and again
//! ends with the same trees; `cadaver` makes, uploads, locks, moves, copies and removes.
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{WAIT, Web, bytes, common, need, tree_hashes};

/// Runs rclone with a `tj:` remote on the page's WebDAV (at `addr`), its config kept empty.
fn rclone(web: &Web, addr: &str, args: &[&str]) -> (bool, String) {
    let conf = web.path("rclone.conf");
    std::fs::write(&conf, "").unwrap();
    let mut cmd = std::process::Command::new("rclone");
    cmd.args(["--config", conf.to_str().unwrap(), "-q"])
        .args(args)
        .env("RCLONE_CONFIG_TJ_TYPE", "webdav")
        .env("RCLONE_CONFIG_TJ_URL", format!("http://{addr}/dav/"))
        .env("RCLONE_CONFIG_TJ_VENDOR", "other")
        .env("RCLONE_CONFIG_TJ_BEARER_TOKEN", &web.token)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("start rclone");
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A tree of `n` files in nested folders, sizes 0 to 20 KB, some names with spaces and CJK.
fn make_tree(dir: &Path, n: usize, seed: u64) {
    for i in 0..n {
        let sub = dir.join(format!("d{}/e {}", i % 17, i % 5));
        std::fs::create_dir_all(&sub).unwrap();
        let name = if i % 10 == 0 {
            format!("文件 {i}.bin")
        } else {
            format!("f{i}.bin")
        };
        let size = (i * 7919 + seed as usize) % 20_000;
        std::fs::write(sub.join(name), bytes(size, seed + i as u64)).unwrap();
    }
}

#[test]
fn rclone_syncs_a_tree_of_1000_files_both_ways() {
    if !need("rclone") {
        return;
    }
    let web = Web::start(&[]);
    let local = web.path("local");
    make_tree(&local, 1000, 1);
    let up = |what: &str| {
        let (ok, out) = rclone(
            &web,
            &web.addr,
            &[
                "sync",
                local.to_str().unwrap(),
                "tj:tree",
                "--transfers",
                "4",
            ],
        );
        assert!(ok, "rclone sync up ({what}): {out}");
        assert_eq!(
            tree_hashes(&web.root("tree")),
            tree_hashes(&local),
            "the server's tree after {what}"
        );
    };
    up("the first sync");
    // Changes here: some files gone, some new, some changed (another size: the remote keeps
    // no times rclone can set, so sizes tell changes).
    for i in (0..1000).step_by(20) {
        let sub = local.join(format!("d{}/e {}", i % 17, i % 5));
        let name = if i % 10 == 0 {
            format!("文件 {i}.bin")
        } else {
            format!("f{i}.bin")
        };
        std::fs::remove_file(sub.join(name)).unwrap();
    }
    for i in (1..1000).step_by(37) {
        let sub = local.join(format!("d{}/e {}", i % 17, i % 5));
        let name = if i % 10 == 0 {
            format!("文件 {i}.bin")
        } else {
            format!("f{i}.bin")
        };
        if sub.join(&name).exists() {
            std::fs::write(sub.join(name), bytes(30_000 + i, 99)).unwrap();
        }
    }
    std::fs::create_dir_all(local.join("new/deeper")).unwrap();
    std::fs::write(local.join("new/deeper/late.bin"), bytes(123_456, 5)).unwrap();
    up("changes here");
    // Down into an empty folder, then after a change on the server.
    let down = web.path("down");
    let (ok, out) = rclone(
        &web,
        &web.addr,
        &[
            "sync",
            "tj:tree",
            down.to_str().unwrap(),
            "--transfers",
            "4",
        ],
    );
    assert!(ok, "rclone sync down: {out}");
    assert_eq!(tree_hashes(&down), tree_hashes(&local));
    std::fs::write(web.root("tree/server-side.txt"), b"written on the server").unwrap();
    std::fs::remove_dir_all(web.root("tree/new")).unwrap();
    let (ok, out) = rclone(
        &web,
        &web.addr,
        &["sync", "tj:tree", down.to_str().unwrap()],
    );
    assert!(ok, "rclone sync down again: {out}");
    assert_eq!(tree_hashes(&down), tree_hashes(&web.root("tree")));
    assert!(!down.join("new").exists());
}

/// A proxy in front of the server that cuts each of its first `cuts` connections after
/// `after` bytes (either way); later ones pass.
fn cutting_proxy(target: String, cuts: usize, after: usize) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let cut = Arc::new(AtomicUsize::new(0));
    let counted = cut.clone();
    std::thread::spawn(move || {
        for (i, client) in l.incoming().enumerate() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&target) else {
                return;
            };
            let limit = if i < cuts { after } else { usize::MAX };
            let moved = Arc::new(AtomicUsize::new(0));
            let counted = counted.clone();
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let (moved, counted) = (moved.clone(), counted.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if moved.fetch_add(n, Ordering::Relaxed) + n > limit {
                            // Cut: both ends see the connection die.
                            if moved.swap(usize::MAX / 2, Ordering::Relaxed) < usize::MAX / 2 {
                                counted.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
        }
    });
    (addr, cut)
}

#[test]
fn rclone_through_a_connection_cut_again_and_again_ends_with_the_same_trees() {
    if !need("rclone") {
        return;
    }
    let web = Web::start(&[]);
    let local = web.path("local");
    std::fs::create_dir_all(local.join("a/b")).unwrap();
    for i in 0..12 {
        std::fs::write(
            local.join(format!("a/b/f{i}.bin")),
            bytes(1_500_000 + i * 1000, 40 + i as u64),
        )
        .unwrap();
    }
    let (proxy, cut) = cutting_proxy(web.addr.clone(), 8, 2_000_000);
    let retries = [
        "--retries",
        "5",
        "--low-level-retries",
        "20",
        "--transfers",
        "2",
        "--contimeout",
        "5s",
    ];
    let mut args = vec!["sync", local.to_str().unwrap(), "tj:tree"];
    args.extend(retries);
    let (ok, out) = rclone(&web, &proxy, &args);
    assert!(ok, "rclone sync up through the cuts: {out}");
    assert!(cut.load(Ordering::Relaxed) > 0, "the proxy cut nothing");
    assert_eq!(tree_hashes(&web.root("tree")), tree_hashes(&local));
    // Nothing half-written was left beside the files by the cut uploads.
    let leftovers: Vec<_> = std::fs::read_dir(web.root("tree/a/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("taojie-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (proxy, cut) = cutting_proxy(web.addr.clone(), 6, 2_500_000);
    let down = web.path("down");
    let mut args = vec!["sync", "tj:tree", down.to_str().unwrap()];
    args.extend(retries);
    let (ok, out) = rclone(&web, &proxy, &args);
    assert!(ok, "rclone sync down through the cuts: {out}");
    assert!(cut.load(Ordering::Relaxed) > 0);
    assert_eq!(tree_hashes(&down), tree_hashes(&local));
}

#[test]
fn cadaver_makes_uploads_locks_moves_copies_and_removes() {
    if !need("cadaver") {
        return;
    }
    let web = Web::start(&[]);
    std::fs::write(web.root("hello.txt"), b"hello from the server\n").unwrap();
    let home = web.path("home");
    std::fs::create_dir(&home).unwrap();
    let netrc = home.join(".netrc");
    std::fs::write(
        &netrc,
        format!("machine 127.0.0.1\nlogin anyone\npassword {}\n", web.token),
    )
    .unwrap();
    std::fs::set_permissions(&netrc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let local = web.path("upload.txt");
    std::fs::write(&local, b"sent by cadaver\n").unwrap();
    let got = web.path("got.txt");
    let script = format!(
        "ls\nmkcol box\ncd box\nput {up} up.txt\nlock up.txt\nput {up} up.txt\nunlock up.txt\n\
         copy up.txt copy.txt\nmove up.txt moved.txt\nrm copy.txt\nget /dav/hello.txt {got}\nls\nquit\n",
        up = local.display(),
        got = got.display()
    );
    let url = format!("http://{}/dav/", web.addr);
    let mut child = std::process::Command::new("cadaver")
        .arg(&url)
        .env("HOME", &home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let status = common::wait_timeout(&mut child, WAIT).expect("cadaver finished");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "cadaver: {out}");
    for step in [
        "Creating `box': succeeded",
        "Locking `up.txt': succeeded",
        "Unlocking `up.txt': succeeded",
        "Copying `/dav/box/up.txt' to `/dav/box/copy.txt':  succeeded",
        "Moving `/dav/box/up.txt' to `/dav/box/moved.txt':  succeeded",
        "Deleting `copy.txt': succeeded",
    ] {
        assert!(out.contains(step), "cadaver did not say {step:?}:\n{out}");
    }
    assert_eq!(
        std::fs::read(web.root("box/moved.txt")).unwrap(),
        b"sent by cadaver\n"
    );
    assert!(!web.root("box/up.txt").exists() && !web.root("box/copy.txt").exists());
    assert_eq!(std::fs::read(&got).unwrap(), b"hello from the server\n");
}
