//! Brokers joined through a real `nats-server -js` on loopback (issue 13): lines, names,
//! `/who` and history across three brokers; a broker killed with SIGKILL; NATS stopped and
//! started again; what a foreign publisher on NATS can and cannot get through.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::common::{Server, peer_script, run_program};
use super::{Client, WAIT, unstamp, welcomed};

/// A `nats-server -js` of this test's own, on a port it chose, with a store in a temp dir.
pub(super) struct Nats {
    child: Child,
    port: u16,
    store: tempfile::TempDir,
}

impl Nats {
    pub(super) fn start() -> Nats {
        Nats::start_with(&[])
    }

    /// Started with more flags (`--auth TOKEN`, `-c FILE`).
    pub(super) fn start_with(extra: &[&str]) -> Nats {
        let store = tempfile::tempdir().unwrap();
        let (child, port) = spawn_nats(store.path(), "-1", extra);
        Nats { child, port, store }
    }

    pub(super) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGKILL, by PID) and waits for it to be gone.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same store.
    fn restart(&mut self) {
        let (child, _) = spawn_nats(self.store.path(), &self.port.to_string(), &[]);
        self.child = child;
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs nats-server and waits (bounded) for the line saying where it listens.
fn spawn_nats(store: &Path, port: &str, extra: &[&str]) -> (Child, u16) {
    // Debian installs it in /usr/sbin, which a user's PATH may leave out.
    let program = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nats-server");
    let mut child = Command::new(program)
        .args(["-js", "-a", "127.0.0.1", "-p", port, "-sd"])
        .arg(store)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nats-server is installed (.ci/run installs it)");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut port = None;
    let mut log = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!("nats-server did not say it was ready: {log:#?}");
        };
        log.push(line.clone());
        if let Some(p) = line
            .split("Listening for client connections on 127.0.0.1:")
            .nth(1)
        {
            port = p.trim().parse().ok();
        }
        if line.contains("Server is ready") {
            break;
        }
    }
    // Keep draining its log so it never blocks on a full pipe.
    thread::spawn(move || for _ in rx {});
    (child, port.expect("nats-server said its port"))
}

pub(super) fn broker(nats: &Nats, extra: &[&str]) -> Server {
    let url = nats.url();
    let mut args = vec!["serve", "chat", "--listen", "127.0.0.1:0", "--nats", &url];
    args.extend_from_slice(extra);
    Server::start(&args, 1)
}

/// An nc member that took `name` (and is in `room` unless that is the lobby).
pub(super) fn nc_member(addr: &str, name: &str, room: &str) -> Client {
    let mut c = Client::nc(addr);
    c.send(&format!("/nick {name}"));
    c.wait_for("own rename", |l| {
        l.ends_with(&format!("is now known as {name}"))
    });
    if room != "lobby" {
        c.send(&format!("/join {room}"));
        c.wait_line(&format!("*** {name} joined {room}"));
    }
    c
}

/// Sends `/who` until the answer is `want` (another broker's copy of the names may be a
/// moment behind), for at most [`WAIT`].
pub(super) fn who_until(c: &mut Client, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        c.send("/who");
        let got = c.wait_for("a /who answer", |l| l.starts_with("*** in "));
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/who kept saying {got:?}, not {want:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn three_brokers_carry_two_rooms_with_names_who_and_history_across_them() {
    if !crate::common::need::tools(&["nats-server", "nc"]) {
        return;
    }
    let nats = Nats::start();
    let brokers: Vec<Server> = (0..3).map(|_| broker(&nats, &[])).collect();
    let addr = |i: usize| brokers[i].addr("chat", "tcp");
    // Two rooms, each spread over the three brokers; nc and taojie chat clients.
    let mut members: Vec<(&str, &str, Client)> = vec![
        ("ann", "lobby", nc_member(&addr(0), "ann", "lobby")),
        ("ben", "lobby", nc_member(&addr(1), "ben", "lobby")),
        ("dev1", "dev", nc_member(&addr(0), "dev1", "dev")),
        ("dev2", "dev", nc_member(&addr(1), "dev2", "dev")),
        ("dev3", "dev", nc_member(&addr(2), "dev3", "dev")),
    ];
    let mut cat = Client::taojie(&addr(2), "cat", &[]);
    cat.wait_for("own welcome", welcomed("cat"));
    members.push(("cat", "lobby", cat));

    // Names clash across brokers as on one: case and look-alikes too.
    let mut clash = Client::nc(&addr(2));
    clash.send("/nick ANN");
    clash.wait_line("*** the name ANN is taken (or looks like one that is)");
    clash.send("/nick dev1");
    clash.wait_line("*** the name dev1 is taken (or looks like one that is)");
    drop(clash);
    who_until(&mut members[0].2, "*** in lobby (3): ann, ben, cat");
    who_until(&mut members[4].2, "*** in dev (3): dev1, dev2, dev3");

    // Everyone talks at once.
    const N: usize = 25;
    for i in 0..N {
        for (name, _, c) in members.iter_mut() {
            c.send(&format!("{name} says {i}"));
        }
    }
    let rooms: Vec<(String, String)> = members
        .iter()
        .map(|(n, r, _)| (n.to_string(), r.to_string()))
        .collect();
    for (me, room, c) in members.iter_mut() {
        for (other, other_room) in &rooms {
            if other == me {
                continue;
            }
            let prefix = format!("<{other}> ");
            if other_room == room {
                c.saw_or_wait(&format!("<{other}> {other} says {}", N - 1));
            }
            let got: Vec<&String> = c.seen.iter().filter(|l| l.starts_with(&prefix)).collect();
            let want: Vec<String> = if other_room == room {
                (0..N)
                    .map(|i| format!("<{other}> {other} says {i}"))
                    .collect()
            } else {
                Vec::new()
            };
            assert_eq!(got, want.iter().collect::<Vec<_>>(), "{me} saw {other}");
        }
        assert!(
            !c.seen.iter().any(|l| l.starts_with(&format!("<{me}> "))),
            "{me} got its own line back"
        );
    }

    // A newcomer on a broker started only now gets dev's last 20 lines, from JetStream, each
    // with the time it was said (a while before the newcomer came: not the time it came).
    let said_by = chrono::Utc::now();
    thread::sleep(Duration::from_secs(2));
    let late = broker(&nats, &[]);
    let mut eve = nc_member(&late.addr("chat", "tcp"), "eve", "lobby");
    eve.send("/join dev");
    eve.wait_line("*** eve joined dev");
    let stamped: Vec<(chrono::DateTime<chrono::Utc>, &str)> = eve
        .seen
        .iter()
        .skip_while(|l| !l.ends_with("is now known as eve"))
        .take_while(|l| *l != "*** eve joined dev")
        .filter(|l| !l.starts_with("***"))
        .map(|l| unstamp(l).unwrap_or_else(|| panic!("a line of history without its time: {l}")))
        .collect();
    let history: Vec<&str> = stamped.iter().map(|(_, l)| *l).collect();
    assert_eq!(history.len(), 20, "{:#?}", eve.seen);
    for (at, line) in &stamped {
        assert!(
            *at <= said_by && said_by - *at < chrono::TimeDelta::minutes(10),
            "{line} said at {at}, not before {said_by}"
        );
    }
    // Only dev's lines, each sender's in order and up to its last.
    for sender in ["dev1", "dev2", "dev3"] {
        let prefix = format!("<{sender}> {sender} says ");
        let numbers: Vec<usize> = history
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .collect();
        let first = N - numbers.len();
        assert_eq!(
            numbers,
            (first..N).collect::<Vec<_>>(),
            "{sender} in {history:#?}"
        );
    }
    assert!(
        history.iter().all(|l| l.starts_with("<dev")),
        "{history:#?}"
    );
    // ... and /who there lists the room across all four brokers.
    who_until(&mut eve, "*** in dev (4): dev1, dev2, dev3, eve");
}

/// How long a test waits for a killed broker's names to be freed and its members seen to
/// leave before calling it a hang (issue 13 wants it within 30 s: a figure for a benchmark,
/// not for a test on a machine that may be busy).
const FREED: Duration = Duration::from_secs(120);

/// Reads `c`'s lines until one satisfies `pred` (called `what`), up to `deadline` (for waits
/// the issue bounds itself, longer than [`WAIT`]); returns it.
fn wait_until(
    c: &mut Client,
    what: &str,
    pred: impl Fn(&str) -> bool,
    deadline: Instant,
) -> String {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.rx.recv_timeout(left) {
            Ok(line) => {
                c.seen.push(line.clone());
                if pred(&line) {
                    return line;
                }
            }
            Err(_) => panic!("never saw {what}; saw {:#?}", c.seen),
        }
    }
}

#[test]
fn a_killed_brokers_names_are_freed_and_its_clients_come_back_on_another() {
    if !crate::common::need::tools(&["nats-server", "nc"]) {
        return;
    }
    let nats = Nats::start();
    let a = broker(&nats, &[]);
    // b's log is read: the test waits for b to take a for gone.
    let url = nats.url();
    let mut b_cmd = crate::common::command(crate::common::bin());
    b_cmd.args(["serve", "chat", "--listen", "127.0.0.1:0", "--nats", &url]);
    let mut b = Server::spawn_capturing(b_cmd, 1);
    let c = broker(&nats, &[]);
    let (aa, ba, ca) = (
        a.addr("chat", "tcp"),
        b.addr("chat", "tcp"),
        c.addr("chat", "tcp"),
    );
    let mut watcher = nc_member(&ba, "watcher", "dev");
    let mut lobbyist = nc_member(&ba, "lob", "lobby");
    let kim = nc_member(&aa, "kim", "lobby");
    // zed is given both addresses; it joins the first (a).
    let list = format!("{aa},{ba}");
    let mut zed = Client::taojie(&list, "zed", &[]);
    zed.wait_for("own welcome", welcomed("zed"));
    zed.send("/join dev");
    zed.wait_line("*** zed joined dev");
    watcher.wait_line("*** zed joined dev");
    zed.send("before");
    watcher.wait_line("<zed> before");

    a.signal(libc::SIGKILL);
    let killed = Instant::now();
    let since_kill = watcher.seen.len();
    // The others see zed leave; or, when c took a for gone before b did and zed's client got
    // its name back on b meanwhile, they see zed come back (and no "left" after it, which
    // would read as the new zed leaving). It comes back straight in under its name (`/hello`)
    // when a's hold on the name is gone, else under a default name until it is.
    let left = "*** zed left dev (their broker is gone)";
    let back = |l: &str| {
        l == "*** zed joined dev"
            || (l.starts_with("*** user") && l.ends_with("is now known as zed"))
    };
    wait_until(
        &mut watcher,
        "zed leave or come back",
        |l| l == left || back(l),
        killed + FREED,
    );
    // kim's room on b is told, whichever survivor freed the name (no one takes it before).
    let kim_left = "*** kim left lobby (their broker is gone)";
    wait_until(&mut lobbyist, kim_left, |l| l == kim_left, killed + FREED);
    // kim's name is free again on another broker.
    let mut taker = Client::nc(&ca);
    let deadline = killed + FREED;
    loop {
        taker.send("/nick kim");
        let got = taker.wait_for("an answer to /nick", |l| {
            l.ends_with("is now known as kim") || l.contains("the name kim is taken")
        });
        if got.ends_with("is now known as kim") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kim was not freed {FREED:?} after its broker was killed"
        );
        thread::sleep(Duration::from_millis(500));
    }
    // zed's client came back on b, under its name, in its room.
    // Straight in when a's hold on the name is gone, else under a default name until it is.
    zed.wait_for("the rejoin", |l| {
        l.starts_with("*** welcome, you are zed in dev;")
            || (l.ends_with("is now known as zed") && l.starts_with("*** user"))
    });
    if !watcher.seen[since_kill..].iter().any(|l| back(l)) {
        watcher.wait_for("zed back", back);
    }
    zed.send("after");
    watcher.wait_line("<zed> after");
    // Once b has taken a for gone (whatever it told, it told before it logged), /who's
    // answer comes after every line it sent the watcher.
    b.wait_stderr("a broker went silent");
    who_until(&mut watcher, "*** in dev (2): watcher, zed");
    let came_back = since_kill
        + watcher.seen[since_kill..]
            .iter()
            .position(|l| back(l))
            .unwrap();
    assert!(
        !watcher.seen[came_back..].iter().any(|l| l == left),
        "told that zed left after it came back: {:#?}",
        watcher.seen
    );
    drop(kim);
}

#[test]
fn local_chat_goes_on_without_nats_and_cross_broker_chat_resumes_by_itself() {
    if !crate::common::need::tools(&["nats-server", "nc"]) {
        return;
    }
    let mut nats = Nats::start();
    let a = broker(&nats, &[]);
    let b = broker(&nats, &[]);
    let (aa, ba) = (a.addr("chat", "tcp"), b.addr("chat", "tcp"));
    let mut ann = nc_member(&aa, "ann", "lobby");
    let mut bob = nc_member(&aa, "bob", "lobby");
    let mut cat = nc_member(&ba, "cat", "lobby");
    ann.send("all there");
    cat.wait_line("<ann> all there");

    nats.stop();
    const DOWN: &str = "*** the link to the other brokers is down: only members of this broker hear you until it is back";
    ann.wait_line(DOWN);
    bob.wait_line(DOWN);
    ann.send("only here");
    bob.wait_line("<ann> only here");
    bob.send("/who");
    bob.wait_line("*** in lobby (2): ann, bob");

    nats.restart();
    const BACK: &str = "*** the link to the other brokers is back";
    for c in [&mut ann, &mut bob, &mut cat] {
        c.wait_line(BACK);
    }
    ann.send("across again");
    cat.wait_line("<ann> across again");
    cat.send("and back");
    bob.wait_line("<cat> and back");
    // The names were written again: they clash and are listed across brokers as before.
    who_until(&mut cat, "*** in lobby (3): ann, bob, cat");
    cat.send("/nick BOB");
    cat.wait_line("*** the name BOB is taken (or looks like one that is)");
    for c in [&ann, &bob] {
        let downs = c.seen.iter().filter(|l| *l == DOWN).count();
        assert_eq!(downs, 1, "one notice when the link went down");
    }
}

#[test]
fn lines_from_nats_are_checked_and_held_to_the_limits() {
    if !crate::common::need::tools(&["nats-server", "nc", "python3"]) {
        return;
    }
    let nats = Nats::start();
    let a = broker(&nats, &["--max-line", "100", "--rate", "5"]);
    let mut ann = nc_member(&a.addr("chat", "tcp"), "ann", "lobby");
    // A foreign publisher: malformed posts, a line too long, a flood past --rate, and one
    // good line at the end, which must arrive (so the ones before it were dropped, not late).
    let started = Instant::now();
    let (status, out, err) = run_program(
        "python3",
        &[&peer_script("nats_pub.py"), &nats.url(), "lobby"],
        b"",
        WAIT,
    );
    assert!(status.success(), "{err}\n{}", String::from_utf8_lossy(&out));
    ann.wait_line("<trent> last");
    let took = started.elapsed().as_secs_f64();
    let from_mallory: Vec<&String> = ann
        .seen
        .iter()
        .filter(|l| l.starts_with("<mallory>"))
        .collect();
    assert!(
        !ann.seen
            .iter()
            .any(|l| l.contains("bad") || l.contains('\u{1b}') || l.contains("xxxxxxxxxx")),
        "a malformed line got through: {:#?}",
        ann.seen
    );
    // 4 × --rate in a burst at most, and what the bucket earned in the time all this took
    // (the longer a busy machine takes, the more may pass: a bound on the count, not on time).
    let most = 4 * 5 + (5.0 * took).ceil() as usize;
    assert!(
        (1..=most).contains(&from_mallory.len()),
        "flood from NATS not held to --rate: {} lines in {took:.1} s",
        from_mallory.len()
    );
    // The broker is still up and serving.
    let mut ben = nc_member(&a.addr("chat", "tcp"), "ben", "lobby");
    ben.send("still here");
    ann.wait_line("<ben> still here");
}

#[test]
fn a_member_that_stops_reading_lines_from_another_broker_is_dropped_and_everyone_is_told() {
    if !crate::common::need::tools(&["nats-server", "nc"]) {
        return;
    }
    let nats = Nats::start();
    let a = broker(&nats, &[]);
    let b = broker(&nats, &["--queue", "100", "--max-lag", "1"]);
    let (aa, ba) = (a.addr("chat", "tcp"), b.addr("chat", "tcp"));
    let (_slow, _slow_r) = super::slow::small_window_client(&ba, "slow");
    let mut reader_b = nc_member(&ba, "rb", "lobby");
    let mut reader_a = nc_member(&aa, "ra", "lobby");
    let (mut w, _wr) = super::raw_client(&aa, "w");
    // A broker that stops reading the writer ends the test at the write, not in a hang.
    w.set_write_timeout(Some(Duration::from_secs(120))).unwrap();
    // Lines from a, through NATS, to b's members: the one that never reads falls behind, is
    // dropped (its queue caps hold for lines from the backplane too), and both brokers'
    // members are told; the one that reads gets every line, in order.
    // 10 MB: more than the kernel's socket buffers hold for the silent member.
    const LINES: usize = 100_000;
    const PAD: &str =
        "padding padding padding padding padding padding padding padding padding padding";
    for chunk in 0..LINES / 100 {
        let text: String = (0..100)
            .map(|i| format!("{:06} {PAD}\n", chunk * 100 + i))
            .collect();
        std::io::Write::write_all(&mut w, text.as_bytes()).unwrap_or_else(|e| {
            panic!(
                "the broker stopped taking the flood at line {}: {e}",
                chunk * 100
            )
        });
    }
    reader_b.wait_line(&format!("<w> {:06} {PAD}", LINES - 1));
    let got: Vec<usize> = reader_b
        .seen
        .iter()
        .filter_map(|l| l.strip_prefix("<w> ")?.get(..6)?.parse().ok())
        .collect();
    assert_eq!(
        got,
        (0..LINES).collect::<Vec<_>>(),
        "b's reader lost or reordered lines"
    );
    reader_b.saw_or_wait("*** slow dropped (not reading)");
    reader_a.saw_or_wait("*** slow dropped (not reading)");
}

/// The name a member gets before it picks one: `userN-TAG`, TAG its broker's, the same for
/// every member of one broker and another for each broker, so two brokers' defaults never
/// clash; a member of the other broker sees it as it is.
#[test]
fn default_names_carry_their_brokers_tag() {
    if !crate::common::need::tools(&["nats-server", "nc"]) {
        return;
    }
    let nats = Nats::start();
    let a = broker(&nats, &[]);
    let b = broker(&nats, &[]);
    let welcome = |addr: &str| {
        let mut c = Client::nc(addr);
        let line = c.wait_for("the welcome", |l| l.starts_with("*** welcome, you are "));
        let name = line["*** welcome, you are ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        (c, name)
    };
    let (mut a1, a1_name) = welcome(&a.addr("chat", "tcp"));
    let (_a2, a2_name) = welcome(&a.addr("chat", "tcp"));
    let (mut b1, b1_name) = welcome(&b.addr("chat", "tcp"));
    let tag = |name: &str| {
        let (user, tag) = name
            .split_once('-')
            .unwrap_or_else(|| panic!("no tag: {name}"));
        assert!(
            user.strip_prefix("user")
                .is_some_and(|n| n.parse::<u32>().is_ok()),
            "{name}"
        );
        assert!(
            !tag.is_empty() && tag.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
        tag.to_string()
    };
    assert_eq!(tag(&a1_name), tag(&a2_name), "one broker, one tag");
    assert_ne!(a1_name, a2_name);
    assert_ne!(
        tag(&a1_name),
        tag(&b1_name),
        "two brokers, one tag: {a1_name} {b1_name}"
    );
    who_until(
        &mut b1,
        &format!("*** in lobby (3): {}", {
            let mut all = [a1_name.clone(), a2_name.clone(), b1_name.clone()];
            all.sort();
            all.join(", ")
        }),
    );
    a1.send("under my default name");
    b1.wait_line(&format!("<{a1_name}> under my default name"));
}
