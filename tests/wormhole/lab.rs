//! A private network namespace with only `lo`, named for this test alone, holding a mailbox
//! server and a transit relay — the real ones (the Python mailbox server from PyPI and
//! Debian's transit relay, as ../shared/wormhole-lab.sh runs them) or `taojie serve relay` —
//! and the programs the test runs there. Everything started is stopped by its PID and the
//! namespace deleted on drop.
use std::io::Read;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Server, bin, line_channel, wait_timeout};

/// The mailbox and relay ports inside every lab (each lab is its own namespace).
const MAILBOX_PORT: u16 = 4000;
const RELAY_PORT: u16 = 4001;

/// One test's namespace and servers.
pub struct Lab {
    pub ns: String,
    pub dir: tempfile::TempDir,
    pub relay_url: String,
    pub transit: String,
    servers: Vec<Child>,
    taojie_relay: Option<Server>,
}

/// Says why the lab cannot run (`common::need`): a failure under CI (where .ci/run installs
/// everything), a counted skip elsewhere.
fn cannot(why: &str) -> Option<Lab> {
    crate::common::need::unmet(why);
    None
}

fn have(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Python mailbox server in `ns`, its database in `dir` (so a restart keeps the state).
fn start_mailbox(ns: &str, dir: &Path) -> Child {
    let db = |n: &str| dir.join(n).display().to_string();
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "python3",
            "-m",
            "twisted",
            "wormhole-mailbox",
        ])
        .arg(format!("--port=tcp:{MAILBOX_PORT}:interface=127.0.0.1"))
        .arg(format!("--channel-db={}", db("channel.sqlite")))
        .arg(format!("--usage-db={}", db("usage.sqlite")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn new_ns() -> Option<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    if !crate::common::need::root() {
        return None;
    }
    let ns = format!(
        "tjwh{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    if !have("ip", &["netns", "add", &ns]) {
        cannot("network namespaces (ip netns add failed)");
        return None;
    }
    assert!(have("ip", &["-n", &ns, "link", "set", "lo", "up"]));
    Some(ns)
}

impl Lab {
    /// The real mailbox server and transit relay.
    pub fn python() -> Option<Lab> {
        if !have("wormhole", &["--version"]) || !have("twist3", &["--help"]) {
            return cannot(
                "wormhole and twist3 (apt-get install magic-wormhole magic-wormhole-transit-relay)",
            );
        }
        if !have("python3", &["-c", "import wormhole_mailbox_server"]) {
            return cannot("python3 with wormhole_mailbox_server (.ci/run installs it)");
        }
        let ns = new_ns()?;
        let dir = tempfile::tempdir().unwrap();
        let mailbox = start_mailbox(&ns, dir.path());
        let relay = Command::new("ip")
            .args(["netns", "exec", &ns, "twist3", "transitrelay"])
            .arg(format!("--port=tcp:{RELAY_PORT}:interface=127.0.0.1"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lab = Lab {
            relay_url: format!("ws://127.0.0.1:{MAILBOX_PORT}/v1"),
            transit: format!("tcp:127.0.0.1:{RELAY_PORT}"),
            ns,
            dir,
            servers: vec![mailbox, relay],
            taojie_relay: None,
        };
        lab.wait_listening(&[MAILBOX_PORT, RELAY_PORT]);
        Some(lab)
    }

    /// Stops the Python mailbox server (by its PID) and starts it again on the same port and
    /// database, as an operator restarting it would: every client connection drops.
    #[allow(dead_code)]
    pub fn restart_mailbox(&mut self) {
        let old = &mut self.servers[0];
        let _ = old.kill();
        let _ = old.wait();
        self.servers[0] = start_mailbox(&self.ns, self.dir.path());
        self.wait_listening(&[MAILBOX_PORT]);
    }

    /// `taojie serve relay` in place of both, with `extra` flags.
    pub fn taojie(extra: &[&str]) -> Option<Lab> {
        Lab::taojie_at("127.0.0.1:0", "127.0.0.1:0", extra)
    }

    /// `taojie serve relay --listen LISTEN --transit TRANSIT` and `extra` flags.
    pub fn taojie_at(listen: &str, transit: &str, extra: &[&str]) -> Option<Lab> {
        if !have("wormhole", &["--version"]) {
            return cannot("the wormhole client (apt-get install magic-wormhole)");
        }
        let ns = new_ns()?;
        let mut args = vec!["netns", "exec", &ns, bin(), "serve", "relay"];
        args.extend(["--listen", listen, "--transit", transit]);
        args.extend(extra);
        let server = Server::start_program("ip", &args, 2, &[]);
        let relay_url = format!("ws://{}/v1", server.addr("relay", "tcp"));
        let transit = format!("tcp:{}", server.addr("relay-transit", "tcp"));
        Some(Lab {
            ns,
            dir: tempfile::tempdir().unwrap(),
            relay_url,
            transit,
            servers: Vec::new(),
            taojie_relay: Some(server),
        })
    }

    /// The taojie relay server, when this lab runs one.
    #[allow(dead_code)]
    pub fn relay_server(&mut self) -> &mut Server {
        self.taojie_relay.as_mut().expect("a taojie relay lab")
    }

    /// Waits (10 s at most) until `ports` listen on 127.0.0.1 in the namespace.
    fn wait_listening(&self, ports: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.ns, "ss", "-Hltn"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            if ports
                .iter()
                .all(|p| text.contains(&format!("127.0.0.1:{p} ")))
            {
                return;
            }
            assert!(Instant::now() < deadline, "servers did not listen: {text}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `program ARGS` in the namespace, in `cwd`, with `input` on stdin.
    pub fn spawn(&self, program: &str, args: &[&str], cwd: &Path, input: &[u8]) -> Running {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, program])
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&input);
        });
        let mut out = child.stdout.take().unwrap();
        let err = line_channel(child.stderr.take().unwrap());
        Running {
            what: format!("{program} {args:?}"),
            child,
            out: thread::spawn(move || {
                let mut v = Vec::new();
                let _ = out.read_to_end(&mut v);
                v
            }),
            err,
            lines: Vec::new(),
        }
    }

    /// `taojie ARGS --relay-url ... --transit-helper ...` in the namespace.
    pub fn taojie_cmd(&self, args: &[&str], cwd: &Path, input: &[u8]) -> Running {
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--relay-url",
            &self.relay_url,
            "--transit-helper",
            &self.transit,
        ]);
        self.spawn(bin(), &all, cwd, input)
    }

    /// `wormhole --relay-url ... --transit-helper ... ARGS` in the namespace.
    pub fn wormhole(&self, args: &[&str], cwd: &Path, input: &[u8]) -> Running {
        let mut all = vec![
            "--relay-url",
            &self.relay_url,
            "--transit-helper",
            &self.transit,
        ];
        all.extend(args);
        self.spawn("wormhole", &all, cwd, input)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
        drop(self.taojie_relay.take());
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// A program running in a lab.
pub struct Running {
    what: String,
    pub child: Child,
    out: thread::JoinHandle<Vec<u8>>,
    err: std::sync::mpsc::Receiver<String>,
    lines: Vec<String>,
}

/// How a program ended.
#[derive(Debug)]
pub struct Done {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Running {
    /// Stderr: the lines read so far and, once the program has ended, the rest.
    fn stderr(&mut self) -> String {
        self.lines.extend(self.err.iter());
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Waits up to `limit` for the end; a program still running then is killed and the
    /// test fails with its stderr.
    pub fn finish(mut self, limit: Duration) -> Done {
        match wait_timeout(&mut self.child, limit) {
            Some(status) => Done {
                status,
                stderr: self.stderr(),
                stdout: self.out.join().unwrap(),
            },
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = self.stderr();
                panic!("{} did not finish in {limit:?}; stderr: {err}", self.what);
            }
        }
    }

    /// Kills it now.
    pub fn kill(mut self) -> Done {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        Done {
            status,
            stderr: self.stderr(),
            stdout: self.out.join().unwrap(),
        }
    }

    /// Waits (up to `limit`) for a stderr line containing `text`; returns it.
    pub fn wait_line(&mut self, text: &str, limit: Duration) -> String {
        if let Some(l) = self.lines.iter().find(|l| l.contains(text)) {
            return l.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(line) => {
                    self.lines.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "{}: no line {text:?} in {limit:?}: {:?}",
                    self.what, self.lines
                ),
            }
        }
    }

    /// The code a sender prints (`Wormhole code is: CODE`, taojie's and wormhole's alike).
    pub fn wait_code(&mut self, limit: Duration) -> String {
        let line = self.wait_line("Wormhole code is: ", limit);
        line.rsplit(' ').next().unwrap().trim().to_string()
    }
}

/// Both succeeded, or the test fails showing both stderrs.
pub fn both_ok(a: &Done, b: &Done) {
    assert!(
        a.status.success() && b.status.success(),
        "first: {:?}\n{}\nsecond: {:?}\n{}",
        a.status,
        a.stderr,
        b.status,
        b.stderr
    );
}

/// `nft ARGS` in the namespace `ns` (its rules, counters); what it printed.
pub fn nft(ns: &str, args: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args.split(' '))
        .output()
        .expect("nft (apt-get install nftables)");
    assert!(
        out.status.success(),
        "nft {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
