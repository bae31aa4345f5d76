//! A local user against the files server's root: one who can write inside the root (and
//! holds a key) swaps a directory on a requested path for a symbolic link to a directory
//! outside it, between the server's check and its use. Nothing from outside is ever sent,
//! and nothing outside is ever created or replaced, because every name is resolved beneath
//! the root's directory descriptor and a download is read from the descriptor checked.
use std::os::unix::fs::{PermissionsExt, symlink};

use super::wire;
use super::*;

const DECOY: &[u8] = b"a decoy of the right size......\n";
const SECRET: &[u8] = b"ROOT-ONLY SECRET from outside!!\n";

/// The header/accept swap: `get sub/secret` is answered with the header of the decoy inside
/// the root; before accepting, the client renames `sub` and puts a symbolic link to a
/// directory outside the root in its place (no race: the server waits for the accept).
#[tokio::test(flavor = "multi_thread")]
async fn a_swap_between_header_and_accept_sends_nothing_from_outside() {
    assert_eq!(DECOY.len(), SECRET.len());
    for flags in [&[][..], &["--read-only"][..]] {
        let fx = Fixture::new();
        std::fs::create_dir_all(fx.p("root/sub")).unwrap();
        std::fs::write(fx.p("root/sub/secret"), DECOY).unwrap();
        std::fs::create_dir(fx.p("outside")).unwrap();
        std::fs::write(fx.p("outside/secret"), SECRET).unwrap();
        let srv = fx.serve(flags);
        let mut t = wire::client(&srv.addr("files", "tcp"), &fx.p("key")).await;
        t.send_control(&Msg::Get {
            names: vec!["sub/secret".into()],
        })
        .await
        .unwrap();
        let header = match t.recv_control::<Msg>().await.unwrap() {
            Msg::File { header } => header,
            other => panic!("{other:?}"),
        };
        assert_eq!(header.size, DECOY.len() as u64);
        std::fs::rename(fx.p("root/sub"), fx.p("root/sub.moved")).unwrap();
        symlink(fx.p("outside"), fx.p("root/sub")).unwrap();
        let got = wire::take(&mut t, header.size).await;
        assert_eq!(t.recv_control::<Msg>().await.unwrap(), Msg::End);
        assert_ne!(got, SECRET, "{flags:?}: the file outside the root was sent");
        assert_eq!(got, DECOY, "{flags:?}");
        // And asked again now, the link is refused, not followed.
        t.send_control(&Msg::Get {
            names: vec!["sub/secret".into()],
        })
        .await
        .unwrap();
        let answer = t.recv_control::<Msg>().await.unwrap();
        assert!(matches!(answer, Msg::Error { .. }), "{flags:?}: {answer:?}");
    }
}

/// How long the local user swaps directories while uploads run.
const RACE_SECONDS: &str = "20";

/// The upload race: a root-run server, a root it serves with a directory `shared/` that an
/// unprivileged local user (uid 65534, via setpriv) owns, and a directory outside the root
/// that user cannot write. The user swaps `shared/d` (a directory) with `shared/l` (a link to
/// the outside directory) with renameat2(RENAME_EXCHANGE) in a loop, while a client uploads
/// into `shared/d/` as fast as it can: replacing `important.conf` (`overwrite`), new files,
/// and new files in new directories. Afterwards the outside directory holds exactly what it
/// held before.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_user_racing_uploads_never_gets_a_file_written_outside_the_root() {
    // A root-run server, and a user dropped to uid 65534 (setpriv) running /usr/bin/python3.
    if !need::root() || !need::tools(&["setpriv", "/usr/bin/python3"]) {
        return;
    }
    let fx = Fixture::new();
    // The user must reach shared/ through the fixture's directories.
    for d in ["", "root"] {
        std::fs::set_permissions(fx.p(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let victim = fx.p("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("important.conf"), b"the real configuration\n").unwrap();
    let shared = fx.p("root/shared");
    std::fs::create_dir_all(shared.join("d")).unwrap();
    symlink(&victim, shared.join("l")).unwrap();
    let chown = |p: &Path| {
        let st = Command::new("chown")
            .args(["-h", "65534:65534", p.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    for p in [shared.clone(), shared.join("d"), shared.join("l")] {
        chown(&p);
    }
    // Warnings only: a line per upload would be thousands of lines.
    let (root, key) = (fx.s("root"), fx.s("key"));
    let args = [
        "serve",
        "files",
        "--listen",
        "127.0.0.1:0",
        "--root",
        &root,
        "--key",
        &key,
    ];
    let srv = Server::start_with_env(&args, 1, &[("RUST_LOG", "warn")]);

    // The racer gets the script's text, not its path: the user it runs as may not be able
    // to reach the checkout (a clone under a 0700 directory, say).
    let script = std::fs::read_to_string(common::peer_script("swap_race.py")).unwrap();
    let (d, l) = (shared.join("d"), shared.join("l"));
    let mut racer = common::Proc::spawn(
        "setpriv",
        &[
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            &script,
            d.to_str().unwrap(),
            l.to_str().unwrap(),
            RACE_SECONDS,
        ],
    );
    // Uploads start once the racer is swapping (its first line), and end when it stops.
    racer.wait_stderr("swapping", Duration::from_secs(10));

    let mut t = wire::client(&srv.addr("files", "tcp"), &fx.p("key")).await;
    let data = b"written by the client\n";
    let (mut verified, mut refused, mut i) = (0u32, 0u32, 0u32);
    while racer.child.try_wait().unwrap().is_none() {
        i += 1;
        let (name, overwrite) = match i % 3 {
            0 => ("shared/d/important.conf".to_string(), true),
            1 => (format!("shared/d/new-{i}"), false),
            _ => (format!("shared/d/dir-{i}/f"), false),
        };
        let header = wire::header(&name, data, 0o644);
        let offer = Msg::PutFile {
            header,
            overwrite,
            fresh: false,
        };
        t.send_control(&offer).await.unwrap();
        match wire::send_offered(&mut t, data).await.unwrap() {
            Msg::Verified { .. } => verified += 1,
            _ => refused += 1,
        }
        assert!(i < 1_000_000, "bounded");
    }
    let (status, swaps, err) = racer.finish(Duration::from_secs(60));
    assert!(status.success(), "the racer failed: {err}");
    let swaps: u64 = String::from_utf8_lossy(&swaps).trim().parse().unwrap();
    eprintln!("{swaps} swaps; {i} uploads: {verified} verified, {refused} refused");
    assert!(
        swaps > 1000 && verified > 0,
        "{swaps} swaps, {verified} uploads"
    );
    let mut outside: Vec<_> = std::fs::read_dir(&victim)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert_eq!(
        outside,
        vec!["important.conf".to_string()],
        "created outside the root"
    );
    assert_eq!(
        std::fs::read(victim.join("important.conf")).unwrap(),
        b"the real configuration\n",
        "replaced outside the root"
    );
}
