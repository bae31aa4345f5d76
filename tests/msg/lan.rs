//! Three taojie members on a LAN that exists only inside the test: three network namespaces
//! joined by veth pairs on a bridge (10.213.0.0/24). Here the members use their default
//! broadcast addresses, as on a real LAN: the namespace's own subnet broadcast.
use std::time::Duration;

use super::common::{run_program, wait_timeout};
use super::{Lab, WAIT};

/// Runs `taojie ARGS` inside host `i` of `lab`; returns (success, stdout, stderr).
fn run_in(lab: &Lab, i: usize, args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = run_program("ip", &lab.taojie(i, args), b"", WAIT * 2);
    (
        status.success(),
        String::from_utf8_lossy(&out).into_owned(),
        err,
    )
}

#[test]
fn three_members_find_each_other_talk_in_utf8_and_gbk_share_a_file_and_leave() {
    let Some(lab) = Lab::new("lan", 3) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let mut ann = lab.listen(0, &["--name", "ann", "--group", "dev"]);
    // bob fetches what cat offers without asking (cat sends from port 2425).
    let cat_ip = lab.ip(2);
    let mut bob = lab.listen(
        1,
        &[
            "--name",
            "bob",
            "--encoding",
            "gbk",
            "--accept-files",
            inbox.to_str().unwrap(),
            "--accept-from",
            &cat_ip,
        ],
    );
    assert_eq!(ann.addr, "0.0.0.0:2425");
    // bob's entry reaches ann by broadcast; ann's answer tells bob about her.
    ann.wait_event("bob's entry", |e| {
        e["event"] == "entry" && e["nick"] == "bob"
    });
    bob.wait_event("ann's answer", |e| {
        e["event"] == "entry" && e["nick"] == "ann"
    });

    // cat asks who is there.
    let (ok, out, err) = run_in(&lab, 2, &["msg", "who", "--name", "cat", "--json"]);
    assert!(ok, "{err}");
    let who: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |nick: &str| {
        who.iter()
            .find(|m| m["nick"] == nick)
            .unwrap_or_else(|| panic!("{nick} not in msg who: {out}"))
    };
    assert_eq!(find("ann")["addr"], format!("{}:2425", lab.ip(0)));
    assert_eq!(find("ann")["group"], "dev");
    assert_eq!(find("ann")["encoding"], "utf8");
    assert_eq!(find("bob")["addr"], format!("{}:2425", lab.ip(1)));
    assert_eq!(find("bob")["encoding"], "gbk");
    assert!(
        find("bob")["version"]
            .as_str()
            .unwrap()
            .starts_with("1_taojie")
    );

    // By name to ann (UTF-8), by address to bob (GBK on the wire, as bob asked).
    let (ok, _, err) = run_in(
        &lab,
        2,
        &["msg", "send", "--name", "cat", "ann", "你好 ann"],
    );
    assert!(ok && err.contains("acknowledged by ann"), "{err}");
    ann.wait_message("你好 ann");
    let bob_ip = lab.ip(1);
    let (ok, _, err) = run_in(
        &lab,
        2,
        &["msg", "send", "--name", "cat", &bob_ip, "你好 bob，收到吗"],
    );
    assert!(ok && err.contains("acknowledged by bob"), "{err}");
    let m = bob.wait_message("你好 bob，收到吗");
    assert_eq!(m["user"], "cat");
    // bob (GBK) answers ann (UTF-8): each side reads the other right.
    let ann_ip = lab.ip(0);
    let (ok, _, err) = run_in(
        &lab,
        1,
        &[
            "msg",
            "send",
            "--name",
            "bob",
            "--encoding",
            "gbk",
            "--bind",
            &bob_ip,
            &ann_ip,
            "回复：好的",
        ],
    );
    // bob's listener holds port 2425 on his host: the sender takes another port and ann
    // acknowledges to the port the message came from.
    assert!(
        ok && err.contains(&format!("acknowledged by {ann_ip}")),
        "{err}"
    );
    ann.wait_message("回复：好的");

    // A file from cat to bob, fetched into bob's inbox.
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let src = dir.path().join("报告.bin");
    std::fs::write(&src, &body).unwrap();
    let (ok, _, err) = run_in(
        &lab,
        2,
        &[
            "msg",
            "send",
            "--name",
            "cat",
            &bob_ip,
            "the report",
            "--file",
            src.to_str().unwrap(),
            "--wait",
            "10",
        ],
    );
    assert!(ok, "{err}");
    bob.wait_message("the report");
    let saved = bob.wait_event("the file", |e| e["event"] == "file");
    assert_eq!(saved["error"], serde_json::Value::Null, "{saved}");
    assert_eq!(std::fs::read(inbox.join("报告.bin")).unwrap(), body);

    // To everyone: both acknowledge.
    let (ok, _, err) = run_in(
        &lab,
        2,
        &["msg", "send", "--name", "cat", "--all", "all hands"],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("acknowledged by ann") && err.contains("acknowledged by bob"),
        "{err}"
    );
    ann.wait_message("all hands");
    bob.wait_message("all hands");

    // Seed 000's loop: every host address of the subnet; the two members acknowledge.
    let (ok, _, err) = run_in(
        &lab,
        2,
        &[
            "msg",
            "send",
            "--name",
            "cat",
            "--subnet",
            "10.213.0.0/24",
            "群发",
        ],
    );
    assert!(ok, "{err}");
    ann.wait_message("群发");
    bob.wait_message("群发");

    // bob leaves; ann sees it.
    let (status, _) = bob.stop();
    assert!(status.success());
    ann.wait_event("bob's exit", |e| e["event"] == "exit" && e["nick"] == "bob");
    let mut ann_proc = ann.proc;
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of the child we started.
    unsafe {
        libc::kill(ann_proc.child.id() as i32, libc::SIGTERM);
    }
    assert!(
        wait_timeout(&mut ann_proc.child, Duration::from_secs(10)).is_some_and(|s| s.success())
    );
}

#[test]
fn a_broadcast_with_no_route_is_said_once_at_info() {
    // One host on the lab's subnet and no default route: its subnet's broadcast goes out,
    // 255.255.255.255 has no route.
    let Some(lab) = Lab::new("nobcast", 1) else {
        return;
    };
    let (ok, out, err) = run_in(&lab, 0, &["msg", "who", "--name", "cat", "--wait", "0.5"]);
    assert!(ok, "{err}");
    let said: Vec<&str> = err.lines().filter(|l| l.contains("broadcast")).collect();
    assert_eq!(
        said.len(),
        1,
        "once, though entry and exit both failed: {err}"
    );
    assert!(said[0].contains(" INFO "), "{err}");
    assert!(said[0].contains("255.255.255.255:2425"), "{err}");
    // It passes through: it does not list itself as a member of the LAN.
    assert!(out.contains("nobody answered"), "{out}");
}
