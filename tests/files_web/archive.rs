//! Folders as archives: `unzip` and `tar` take them, names and times kept, links left out, and
//! a 4 GiB folder streams as zip and as tar.gz while the server stays under 64 MiB resident.
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::{Web, bytes, need, run, tree_hashes};

#[test]
fn unzip_and_tar_take_a_folder_whole_with_its_names_and_times() {
    if !need("unzip") || !need("tar") || !need("curl") {
        return;
    }
    let web = Web::start(&[]);
    let top = web.root("photos");
    std::fs::create_dir_all(top.join("2026/一月")).unwrap();
    std::fs::create_dir_all(top.join("empty")).unwrap();
    std::fs::write(top.join("2026/一月/snow day.jpg"), bytes(300_000, 1)).unwrap();
    std::fs::write(top.join("2026/notes.txt"), b"notes").unwrap();
    std::fs::write(
        top.join(format!("{}.txt", "long".repeat(40))),
        b"a long name",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc", top.join("etc-link")).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(top.join("2026/notes.txt"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let auth = format!("Authorization: {}", web.bearer());
    for (kind, file) in [("zip", "photos.zip"), ("tar.gz", "photos.tar.gz")] {
        let out = web.path(file);
        let url = format!("http://{}/photos/?archive={kind}", web.addr);
        let (ok, _, err) = run(
            "curl",
            &["-sSf", "-H", &auth, "-o", out.to_str().unwrap(), &url],
        );
        assert!(ok, "curl {kind}: {err}");
        let into = web.path(&format!("x-{kind}"));
        std::fs::create_dir(&into).unwrap();
        let (ok, listing, err) = if kind == "zip" {
            let (ok, _, err) = run("unzip", &["-t", out.to_str().unwrap()]);
            assert!(ok, "unzip -t: {err}");
            run(
                "unzip",
                &["-q", out.to_str().unwrap(), "-d", into.to_str().unwrap()],
            )
        } else {
            let (ok, list, err) = run("tar", &["-tzf", out.to_str().unwrap()]);
            assert!(ok, "tar -t: {err}");
            let (ok2, _, err2) = run(
                "tar",
                &["-xzf", out.to_str().unwrap(), "-C", into.to_str().unwrap()],
            );
            (ok && ok2, list, err + &err2)
        };
        assert!(ok, "{kind}: {err}");
        assert!(!listing.contains("etc-link"), "links are left out");
        let got = into.join("photos");
        assert_eq!(
            tree_hashes(&got),
            tree_hashes(&top),
            "{kind}: the tree whole"
        );
        assert!(got.join("empty").is_dir(), "{kind}: an empty folder kept");
        assert!(!got.join("etc-link").exists());
        let t = std::fs::metadata(got.join("2026/notes.txt"))
            .unwrap()
            .modified()
            .unwrap();
        let drift = t.duration_since(old).unwrap_or_else(|e| e.duration());
        assert!(
            drift <= Duration::from_secs(2),
            "{kind}: the time kept ({drift:?} off)"
        );
    }
}

/// The server's resident memory, sampled until stopped; the highest seen.
struct Rss {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
}

impl Rss {
    fn watch(pid: u32) -> Rss {
        let (stop, max) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, m) = (stop.clone(), max.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(pid, "VmRSS:") {
                    m.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Rss { stop, max }
    }

    fn max_mib(&self) -> f64 {
        self.max.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for Rss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// curl's output for `url`, written into `out` with runs of zeros left as holes (the archive
/// of sparse files is mostly zeros: the copy on disk stays small).
fn fetch_sparse(auth: &str, url: &str, out: &std::path::Path) -> u64 {
    let mut curl = Command::new("curl")
        .args(["-sSf", "-H", auth, url])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut body = curl.stdout.take().unwrap();
    let mut file = std::fs::File::create(out).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match body.read(&mut buf[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            file.seek(SeekFrom::Current(n as i64)).unwrap();
        } else {
            file.write_all(&buf[..n]).unwrap();
        }
        len += n as u64;
    }
    file.set_len(len).unwrap();
    assert!(curl.wait().unwrap().success(), "curl {url}");
    len
}

#[test]
fn a_4_gib_folder_streams_as_zip_and_tar_gz_in_constant_memory() {
    if !need("unzip") || !need("tar") || !need("curl") {
        return;
    }
    let web = Web::start(&[]);
    let big = web.root("big");
    std::fs::create_dir(&big).unwrap();
    for i in 1..=4 {
        let f = std::fs::File::create(big.join(format!("part{i}.bin"))).unwrap();
        f.set_len(1 << 30).unwrap(); // sparse: no disk used
    }
    std::fs::write(big.join("tail.bin"), bytes(100_000, 9)).unwrap();
    let auth = format!("Authorization: {}", web.bearer());
    let pid = web.server.child.id();

    let rss = Rss::watch(pid);
    let zip = web.path("big.zip");
    let len = fetch_sparse(
        &auth,
        &format!("http://{}/big/?archive=zip", web.addr),
        &zip,
    );
    let zip_mib = rss.max_mib();
    drop(rss);
    assert!(len > 4 << 30, "the zip holds every byte ({len})");
    let (ok, out, err) = run("unzip", &["-t", zip.to_str().unwrap()]);
    assert!(ok, "unzip -t of a 4 GiB zip (ZIP64): {out}{err}");
    assert!(out.contains("No errors detected"), "{out}");
    let (_, list, _) = run("unzip", &["-l", zip.to_str().unwrap()]);
    for i in 1..=4 {
        assert!(
            list.contains("1073741824") && list.contains(&format!("big/part{i}.bin")),
            "{list}"
        );
    }
    std::fs::remove_file(&zip).unwrap();

    let rss = Rss::watch(pid);
    let mut curl = Command::new("curl")
        .args([
            "-sSf",
            "-H",
            &auth,
            &format!("http://{}/big/?archive=tar.gz", web.addr),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let tar = Command::new("tar")
        .args(["-tvzf", "-"])
        .stdin(curl.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(curl.wait().unwrap().success());
    let tgz_mib = rss.max_mib();
    drop(rss);
    let listing = String::from_utf8_lossy(&tar.stdout);
    assert!(
        tar.status.success(),
        "tar -t: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    assert_eq!(listing.matches("1073741824").count(), 4, "{listing}");
    assert!(listing.contains("big/tail.bin"));

    eprintln!("server resident memory at most: zip {zip_mib:.1} MiB, tar.gz {tgz_mib:.1} MiB");
    assert!(
        zip_mib <= 64.0,
        "the server held {zip_mib:.1} MiB while streaming the zip"
    );
    assert!(
        tgz_mib <= 64.0,
        "the server held {tgz_mib:.1} MiB while streaming the tar.gz"
    );
}
