//! Ctrl-C and SIGTERM during a transfer on a slow link: what is verified is kept, one line
//! says how much and how to go on, and the next run sends only the rest; the progress bar of
//! that run counts only the bytes that move (issue 24, items 2 and 10).
use super::common::Proc;
use super::*;

const SIZE: usize = 50 << 20;
/// The slow link: 50 MiB take 5 s, so a signal at 70 % lands mid-file.
const RATE: u64 = 10 << 20;
const SEGMENT: u64 = 4 << 20;

/// Runs `taojie ARGS`; once `watch` holds 70 % of the file, sends `sig`. Returns the exit
/// code and standard error.
fn signal_at_70_percent(args: &[&str], watch: &Path, sig: i32) -> (Option<i32>, String) {
    let mut proc = Proc::spawn(bin(), args);
    let deadline = Instant::now() + LIMIT;
    loop {
        let len = std::fs::metadata(watch).map(|m| m.len()).unwrap_or(0);
        if len >= SIZE as u64 * 7 / 10 {
            break;
        }
        assert!(
            proc.child.try_wait().unwrap().is_none(),
            "finished before the signal: {:?}",
            proc.stderr
        );
        assert!(Instant::now() < deadline, "no progress in {LIMIT:?}");
        thread::sleep(Duration::from_millis(5));
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of a child we started and have not reaped.
    unsafe {
        libc::kill(proc.child.id() as i32, sig);
    }
    let (status, _, err) = proc.finish(LIMIT);
    (status.code(), err)
}

/// The verified bytes a state file records (its stamp line, then 32 bytes per segment).
fn recorded(state: &Path) -> u64 {
    let bytes = std::fs::read(state).unwrap();
    let stamp = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    ((bytes.len() - stamp) / 32) as u64 * SEGMENT
}

fn mib(n: u64) -> String {
    format!("{:.2} MiB", n as f64 / (1 << 20) as f64)
}

#[test]
fn a_get_stopped_by_ctrl_c_keeps_what_is_verified_and_the_next_fetches_the_rest() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    random_file(&fx.p("root/big"), SIZE, 31);
    let (key, out) = (fx.s("key"), fx.s("out"));
    let slow = Proxy::slow(&addr, RATE);
    let args = ["get", &slow.addr, "big", "-o", &out, "--key", &key];
    let (code, err) = signal_at_70_percent(&args, &fx.p("out/.big.taojie-part"), libc::SIGINT);
    assert_eq!(code, Some(130), "{err}");
    let kept = recorded(&fx.p("out/.big.taojie-state"));
    assert!(kept >= SIZE as u64 / 2, "only {kept} bytes recorded");
    assert_eq!(
        err.trim_end(),
        format!(
            "taojie: interrupted: kept in {out}: {} of 50.00 MiB of big (verified); run the \
             same get again to resume from there",
            mib(kept)
        )
    );
    assert!(
        !fx.p("out/big").exists(),
        "a partial file at the final name"
    );

    // Again, on a terminal: the bar's rate is the link's, not the resumed bytes'.
    let again = Proxy::slow(&addr, RATE);
    let driver = common::peer_script("pty_type.py");
    let (status, shown, _) = run_program(
        "python3",
        &[
            &driver,
            "--",
            bin(),
            "get",
            &again.addr,
            "big",
            "-o",
            &out,
            "--key",
            &key,
        ],
        b"",
        LIMIT,
    );
    let shown = String::from_utf8_lossy(&shown);
    assert!(status.success(), "{shown}");
    assert!(same(&fx.p("root/big"), &fx.p("out/big")));
    let rest = SIZE as u64 - kept;
    assert!(
        again.bytes_down() < rest + (1 << 20),
        "{} bytes crossed for the last {rest}",
        again.bytes_down()
    );
    assert!(
        shown.contains(&format!(
            "; resumed: {} already there, {} crossed",
            mib(kept),
            mib(rest)
        )),
        "{shown}"
    );
    let rates = rates_in(&shown);
    assert!(!rates.is_empty(), "no rate on the bar: {shown}");
    assert!(
        rates.iter().all(|r| *r < 2.0 * RATE as f64),
        "rates {rates:?} on a {} link: {shown}",
        mib(RATE)
    );
}

/// Every "N.NN MiB/s" (or KiB/s, B/s) on the terminal, in bytes per second.
fn rates_in(shown: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for (i, _) in shown.match_indices("/s") {
        let before: Vec<&str> = shown[..i].rsplitn(3, [' ', '(']).collect();
        let (unit, number) = match before.as_slice() {
            [unit, number, ..] => (*unit, *number),
            _ => continue,
        };
        let scale = match unit {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => (1 << 20) as f64,
            "GiB" => (1 << 30) as f64,
            _ => continue,
        };
        if let Ok(n) = number.parse::<f64>() {
            out.push(n * scale);
        }
    }
    out
}

#[test]
fn a_put_stopped_by_sigint_or_sigterm_keeps_what_the_server_verified() {
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let fx = Fixture::new();
        let srv = fx.serve(&[]);
        let addr = srv.addr("files", "tcp");
        random_file(&fx.p("src/big"), SIZE, 32 + sig as u64);
        let (key, file) = (fx.s("key"), fx.s("src/big"));
        let slow = Proxy::slow(&addr, RATE);
        let args = ["put", &slow.addr, &file, "--key", &key];
        let (got, err) = signal_at_70_percent(&args, &fx.p("root/.big.taojie-part"), sig);
        assert_eq!(got, Some(code), "{err}");
        let kept = recorded(&fx.p("root/.big.taojie-state"));
        assert!(kept >= SIZE as u64 / 2, "only {kept} bytes recorded");
        let word = if sig == libc::SIGINT {
            "interrupted"
        } else {
            "terminated"
        };
        assert_eq!(
            err.trim_end(),
            format!(
                "taojie: {word}: the server keeps {} of 50.00 MiB of big (verified); run the \
                 same put again to resume from there",
                mib(kept)
            )
        );
        assert!(
            !fx.p("root/big").exists(),
            "a partial file at the final name"
        );

        let again = Proxy::start(&addr, None);
        let (ok, out, err) = fx.run(&["put", &again.addr, &file, "--json"]);
        assert!(ok, "{err}");
        let rest = SIZE as u64 - kept;
        assert!(
            again.bytes_up() < rest + (1 << 20),
            "{} bytes crossed for the last {rest}",
            again.bytes_up()
        );
        assert_eq!(json(&out)["files"][0]["resumed_from"], kept, "{out}");
        assert!(same(&fx.p("src/big"), &fx.p("root/big")));
    }
}
