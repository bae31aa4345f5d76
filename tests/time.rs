//! `taojie serve time` and `taojie time`: the seed's UDP strftime service driven by a Python
//! client written like the seed's, daytime over TCP, SNTP against Python's ntplib, bad input
//! of every kind, and the client's behaviour when nobody answers.
mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Server, run_program, run_with_input};

const LIMIT: Duration = Duration::from_secs(60);
/// How long a test waits for a datagram's answer before calling it lost: a bound that only
/// ends a hang (how fast the server answers is bench/'s question).
const ANSWER: Duration = Duration::from_secs(30);

fn start() -> Server {
    Server::start(
        &[
            "serve",
            "time",
            "--listen",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--sntp",
            "127.0.0.1:0",
        ],
        3,
    )
}

fn udp_client() -> UdpSocket {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(ANSWER)).unwrap();
    u
}

/// Sends one datagram and returns the one answer.
fn ask(u: &UdpSocket, addr: &str, request: &[u8]) -> String {
    u.send_to(request, addr).unwrap();
    let mut buf = vec![0; 70_000];
    let n = u.recv(&mut buf).expect("an answer");
    String::from_utf8(buf[..n].to_vec()).expect("a UTF-8 answer")
}

/// The seed's client, fed a list of formats; prints each answer as JSON-quoted text, then
/// Python's own strftime for the stable formats, before and after (a year or a date may turn
/// over between the two).
const SEED_CLIENT: &str = r#"
import json, sys, time
from socket import *
host, port = sys.argv[1].rsplit(':', 1)
ip_port = (host, int(port))
bufsize = 1024
tcp_client = socket(AF_INET, SOCK_DGRAM)
tcp_client.settimeout(30)
before = [time.strftime(f) for f in ('%Y', '%Y-%m-%d', '%Y年%m月')]
answers = {}
for msg in ['%Y', '%H:%M:%S', '%Y-%m-%d %X', '%Y年%m月', '%Y-%m-%d', '']:
    tcp_client.sendto(msg.encode('utf-8'), ip_port)
    data = tcp_client.recv(bufsize)
    answers[msg] = data.decode('utf-8')
after = [time.strftime(f) for f in ('%Y', '%Y-%m-%d', '%Y年%m月')]
print(json.dumps({'answers': answers, 'before': before, 'after': after}))
"#;

#[test]
fn a_seed_style_python_client_gets_strftime_answers() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let server = start();
    let (status, out, err) = run_program(
        "python3",
        &["-c", SEED_CLIENT, &server.addr("time", "udp")],
        b"",
        LIMIT,
    );
    assert!(status.success(), "python failed: {err}");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let answer = |f: &str| v["answers"][f].as_str().unwrap().to_string();
    for (i, f) in ["%Y", "%Y-%m-%d", "%Y年%m月"].iter().enumerate() {
        let got = answer(f);
        assert!(
            got == v["before"][i] || got == v["after"][i],
            "{f}: server said {got:?}, Python {} / {}",
            v["before"][i],
            v["after"][i]
        );
    }
    let is_time = |s: &str| {
        s.len() == 8
            && s.bytes().enumerate().all(|(i, b)| {
                if i % 3 == 2 {
                    b == b':'
                } else {
                    b.is_ascii_digit()
                }
            })
    };
    assert!(is_time(&answer("%H:%M:%S")), "{}", answer("%H:%M:%S"));
    // An empty datagram means the seed's default, `%Y-%m-%d %X`.
    for f in ["", "%Y-%m-%d %X"] {
        let a = answer(f);
        let (date, time) = a.split_once(' ').unwrap_or_else(|| panic!("{f:?}: {a:?}"));
        assert_eq!(date.len(), 10, "{a}");
        assert!(is_time(time), "{a}");
    }
}

#[test]
fn bad_requests_get_an_error_line_and_the_server_keeps_serving() {
    let server = start();
    let addr = server.addr("time", "udp");
    let u = udp_client();
    let year = ask(&u, &addr, b"%Y");
    let bad: &[(&str, Vec<u8>)] = &[
        ("largest datagram", vec![b'%'; 65_507]),
        ("not UTF-8", b"\xff\xfe%Y".to_vec()),
        ("unknown specifier", b"%Y %Q".to_vec()),
        ("trailing lone %", b"%H:%M %".to_vec()),
        ("wide answer", "%c".repeat(500).into_bytes()),
    ];
    for (what, request) in bad {
        let a = ask(&u, &addr, request);
        assert!(a.starts_with("error: "), "{what}: {a:?}");
        assert!(!a.contains('\n'), "{what}: one line, got {a:?}");
        assert_eq!(ask(&u, &addr, b"%Y"), year, "after {what}");
    }
}

/// A forged source address makes every answer a packet to a victim: the answer may be at
/// most twice the request's datagram (headers of 28 bytes included), however wide the format.
#[test]
fn answers_are_at_most_twice_the_request_on_the_wire() {
    let server = start();
    let addr = server.addr("time", "udp");
    let u = udp_client();
    let requests: Vec<Vec<u8>> = vec![
        "%c".repeat(230).into_bytes(), // 460 bytes asking for 5.5 KB
        "%+%+%+%+".into(),
        "%A, %d %B %Y %H:%M:%S".into(),
        b"%Q".to_vec(),
        b"%".to_vec(),
        b"\xff".to_vec(),
        Vec::new(),
        vec![b'%'; 3000],
    ];
    for request in &requests {
        let answer = ask(&u, &addr, request);
        assert!(
            28 + answer.len() <= 2 * (28 + request.len()),
            "{} bytes answered a request of {}",
            answer.len(),
            request.len()
        );
    }
    assert_eq!(ask(&u, &addr, b"%Y").len(), 4);
}

/// One address sending as fast as it can gets its burst and then its rate; another address
/// is answered meanwhile.
#[test]
fn one_address_gets_a_few_answers_a_second() {
    let server = start();
    let addr = server.addr("time", "udp");
    let flood = udp_client();
    // The end of the answers is a quiet second and a half (the time counts in `took`, so a
    // busy machine's slowness only widens what is allowed).
    flood
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let started = std::time::Instant::now();
    for _ in 0..400 {
        flood.send_to(b"%Y", &addr).unwrap();
    }
    let mut answers = 0;
    let mut buf = [0u8; 64];
    while flood.recv(&mut buf).is_ok() {
        answers += 1;
    }
    // 40 at once, then 20 a second at most, from the first request to the last answer.
    let took = started.elapsed().as_secs_f64();
    let allowed = 40.0 + 20.0 * took;
    assert!(
        answers >= 40 && f64::from(answers) <= allowed,
        "{answers} answers to 400 requests within {took:.3} s"
    );
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    other.set_read_timeout(Some(ANSWER)).unwrap();
    assert_eq!(ask(&other, &addr, b"%Y").len(), 4);
}

#[test]
fn the_time_client_prints_answers_and_reports_errors_on_stderr() {
    let server = start();
    let addr = server.addr("time", "udp");
    let (status, out, _) = run_with_input(&["time", &addr, "%Y年"], b"", LIMIT);
    assert!(status.success());
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.ends_with("年\n") && out.len() == "2024年\n".len(),
        "{out:?}"
    );

    let (status, out, err) = run_with_input(&["time", &addr, "%Q"], b"", LIMIT);
    assert_eq!(status.code(), Some(1));
    assert!(out.is_empty());
    assert!(
        err.contains("error: invalid format") && err.contains("%Q"),
        "{err}"
    );
}

fn daytime_line(addr: &str, send_first: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(ANSWER)).unwrap();
    s.write_all(send_first).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    String::from_utf8(got).unwrap()
}

/// Asserts that `text` is an RFC 2822 time between `before` and now (in whole seconds, as
/// the line has them): the server's clock, not a bound on how long it took.
fn assert_rfc2822_since(text: &str, before: SystemTime) {
    let t = chrono::DateTime::parse_from_rfc2822(text.trim_end())
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let secs = |at: SystemTime| at.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (from, to) = (secs(before), secs(SystemTime::now()));
    assert!(
        (from..=to).contains(&t.timestamp()),
        "{text:?} is not between {from} and {to} (Unix seconds)"
    );
}

#[test]
fn daytime_sends_one_ascii_line_and_closes() {
    let server = start();
    let addr = server.addr("daytime", "tcp");
    // A client that says nothing, and one that sends junk first (RFC 867: ignored).
    for first in [&b""[..], b"hello\r\n"] {
        let before = SystemTime::now();
        let line = daytime_line(&addr, first);
        assert!(line.is_ascii() && line.ends_with("\r\n"), "{line:?}");
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert_rfc2822_since(&line, before);
    }
    let before = SystemTime::now();
    let (status, out, err) = run_with_input(&["time", &addr, "--tcp"], b"", LIMIT);
    assert!(status.success(), "{err}");
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with('\n') && !out.contains('\r'), "{out:?}");
    assert_rfc2822_since(&out, before);
}

/// A client request (version 4, mode 3) whose transmit timestamp is `tag`.
fn sntp_request(tag: u64) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 4 << 3 | 3;
    p[40..48].copy_from_slice(&tag.to_be_bytes());
    p
}

#[test]
fn sntp_answers_client_requests_and_ignores_everything_else() {
    let server = start();
    let addr = server.addr("sntp", "udp");
    let u = udp_client();
    let mut too_short = sntp_request(1);
    too_short.truncate(47);
    let mut server_mode = sntp_request(2);
    server_mode[0] = 4 << 3 | 4;
    let mut control = sntp_request(3);
    control[0] = 2 << 3 | 6;
    let mut private = sntp_request(4);
    private[0] = 2 << 3 | 7; // the mode ntpd's monlist amplification used
    let mut version0 = sntp_request(5);
    version0[0] = 3;
    let bad = [
        ("empty", vec![]),
        ("47 bytes", too_short),
        ("mode 4", server_mode),
        ("mode 6", control),
        ("mode 7", private),
        ("version 0", version0),
    ];
    let mut buf = [0u8; 1024];
    for (i, (what, packet)) in bad.iter().enumerate() {
        u.send_to(packet, &addr).unwrap();
        // The good request goes after the bad one; the first reply must be the good one's.
        let tag = 0xE000_0000_0000_0000 | i as u64;
        let before = SystemTime::now();
        u.send_to(&sntp_request(tag), &addr).unwrap();
        let n = u
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("after {what}: {e}"));
        let r = &buf[..n];
        assert_eq!(n, 48, "after {what}");
        assert_eq!(r[0], 4 << 3 | 4, "LI 0, VN 4, mode 4 after {what}");
        assert_eq!(r[1], 10, "stratum");
        assert_eq!(&r[12..16], b"LOCL");
        assert_eq!(
            u64::from_be_bytes(r[24..32].try_into().unwrap()),
            tag,
            "originate after {what}"
        );
        // The server's transmit time lies between the request and now: its clock.
        let ntp_secs = u64::from(u32::from_be_bytes(r[40..44].try_into().unwrap()));
        let unix = |at: SystemTime| at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let (from, to) = (unix(before), unix(SystemTime::now()));
        assert!(
            (from..=to).contains(&(ntp_secs - 2_208_988_800)),
            "transmit {ntp_secs} (NTP seconds) not between {from} and {to} (Unix)"
        );
    }
}

const NTPLIB_CLIENT: &str = r#"
import json, sys, ntplib
r = ntplib.NTPClient().request('127.0.0.1', port=int(sys.argv[1]), version=4, timeout=30)
print(json.dumps({'offset': r.offset, 'delay': r.delay, 'stratum': r.stratum,
                  'version': r.version, 'mode': r.mode, 'leap': r.leap}))
"#;

#[test]
fn ntplib_measures_a_small_offset() {
    if !crate::common::need::python("ntplib") {
        return;
    }
    let server = start();
    let port = server
        .addr("sntp", "udp")
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    let (status, out, err) = run_program("python3", &["-c", NTPLIB_CLIENT, &port], b"", LIMIT);
    assert!(status.success(), "ntplib failed: {err}");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    // One clock at both ends: what the server stamped lies between the client's send and
    // receive, so the offset is within half the round trip, however slow the machine.
    let (offset, delay) = (v["offset"].as_f64().unwrap(), v["delay"].as_f64().unwrap());
    assert!(delay >= 0.0 && offset.abs() <= delay / 2.0 + 1e-3, "{v}");
    assert_eq!(
        (v["stratum"].as_u64(), v["version"].as_u64()),
        (Some(10), Some(4)),
        "{v}"
    );
    assert_eq!(
        (v["mode"].as_u64(), v["leap"].as_u64()),
        (Some(4), Some(0)),
        "{v}"
    );
}

#[test]
fn the_sntp_client_reports_offset_and_delay() {
    let server = start();
    let addr = server.addr("sntp", "udp");
    let (status, out, err) = run_with_input(&["time", &addr, "--sntp", "--json"], b"", LIMIT);
    assert!(status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    // As with ntplib: one clock, so the offset is within half the round trip.
    let (offset, delay) = (
        v["offset_ms"].as_f64().unwrap(),
        v["delay_ms"].as_f64().unwrap(),
    );
    assert!(delay >= 0.0 && offset.abs() <= delay / 2.0 + 1.0, "{v}");
    assert_eq!(v["stratum"], 10);
    assert_eq!(v["ref_id"], "LOCL");

    let (status, out, _) = run_with_input(&["time", &addr, "--sntp"], b"", LIMIT);
    assert!(status.success());
    let out = String::from_utf8(out).unwrap();
    for label in ["server time", "offset", "delay", "stratum"] {
        assert!(
            out.lines().any(|l| l.starts_with(label)),
            "no {label} in {out}"
        );
    }
}

#[test]
fn the_client_gives_up_clearly_when_nobody_answers() {
    // A socket that takes datagrams and never answers: every try times out.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    for mode in [&[][..], &["--sntp"]] {
        let mut args = vec!["time", addr.as_str(), "--timeout", "0.2", "--retries", "1"];
        args.extend_from_slice(mode);
        let (status, out, err) = run_with_input(&args, b"", LIMIT);
        assert!(!status.success() && out.is_empty(), "{mode:?}");
        assert!(
            err.contains("no answer") && err.contains("2 tries"),
            "{mode:?}: {err}"
        );
    }
    // A port held by this test that takes no datagram: the kernel's port-unreachable ends it
    // at once (a port found free and let go could be another test's server by now).
    let (_udp, addr) = common::ports::unreachable_udp();
    let (status, _, err) = run_with_input(&["time", &addr.to_string()], b"", LIMIT);
    assert!(!status.success());
    assert!(err.contains("nothing listens"), "{err}");
    // And a daytime port held bound and never listening.
    let (_tcp, addr) = common::ports::refused_tcp();
    let (status, _, err) = run_with_input(&["time", &addr.to_string(), "--tcp"], b"", LIMIT);
    assert!(!status.success());
    assert!(err.contains("cannot connect"), "{err}");
}
