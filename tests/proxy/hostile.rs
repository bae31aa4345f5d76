//! What a hostile or broken client sends: a 255-byte name, truncated requests, unknown
//! commands and address types, other HTTP methods, a huge head, and 10,000 junk
//! connections. Each gets its refusal (or a close) and the proxy goes on serving others.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use crate::{HELLO, curl, nginx, proxy};

/// Sends `bytes` on a new connection, half-closes, and returns all that comes back.
fn exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// A SOCKS5 request after the no-auth greeting; returns the reply after the method choice.
fn socks(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut msg = vec![5, 1, 0];
    msg.extend_from_slice(request);
    let out = exchange(addr, &msg);
    assert_eq!(out.get(..2), Some(&[5, 0][..]), "method choice: {out:?}");
    out[2..].to_vec()
}

#[test]
fn bad_requests_get_their_answer_and_the_proxy_serves_on() {
    let n = nginx();
    let (_server, addr) = proxy(
        "127.0.0.1:0",
        &["--allow", "127.0.0.1", "--handshake-timeout", "2"],
    );
    // A 255-byte name that resolves to nothing: host unreachable (4), as a whole reply.
    let mut r = vec![5, 1, 0, 3, 255];
    r.extend(std::iter::repeat_n(b'a', 255));
    r.extend_from_slice(&80u16.to_be_bytes());
    let reply = socks(&addr, &r);
    assert_eq!((reply.len(), reply[0], reply[1]), (10, 5, 4), "{reply:?}");
    // BIND and an unknown command: 7; an unknown address type: 8.
    assert_eq!(socks(&addr, &[5, 2, 0, 1, 127, 0, 0, 1, 0, 80])[1], 7);
    assert_eq!(socks(&addr, &[5, 9, 0, 1, 127, 0, 0, 1, 0, 80])[1], 7);
    assert_eq!(socks(&addr, &[5, 1, 0, 7, 1, 2, 3])[1], 8);
    // Truncated: a greeting, a request cut short; SOCKS4; nothing at all. Closed, no reply.
    for cut in [
        &[5u8, 3, 0][..],
        &[5, 1, 0, 5, 1, 0, 1, 127, 0],
        &[4, 1, 0, 80, 127, 0, 0, 1, 0],
        &[],
    ] {
        let out = exchange(&addr, cut);
        assert!(out.len() <= 2, "{cut:?} got {out:?}");
    }
    // HTTP: an https:// or origin-form target on a plain request, a bad target, a head past
    // 8 KiB.
    let status = |bytes: &[u8]| {
        String::from_utf8_lossy(&exchange(&addr, bytes))
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    for bad in [
        &b"GET https://x/ HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://user:pw@x/ HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(status(bad), "HTTP/1.1 400 Bad Request");
    }
    assert_eq!(
        status(b"CONNECT nowhere HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    let mut big = b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 20_000));
    assert_eq!(status(&big), "HTTP/1.1 431 Request Header Fields Too Large");
    // A client that says nothing is closed at the handshake deadline.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(idle.read(&mut [0u8; 16]).unwrap_or(0), 0);
    let c = curl(
        &["--proxy", &format!("socks5://{addr}")],
        &n.url("/hello.txt"),
    );
    assert_eq!((c.code, c.body.as_str()), (0, HELLO), "{}", c.stderr);
}

#[test]
fn ten_thousand_junk_connections_leave_the_proxy_serving() {
    let n = nginx();
    let (mut server, addr) = proxy("127.0.0.1:0", &["--allow", "127.0.0.1"]);
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let addr = addr.clone();
            thread::spawn(move || {
                let mut served = 0;
                for i in 0..2_500u32 {
                    let Ok(mut s) = TcpStream::connect(&addr) else {
                        continue;
                    };
                    let junk = [
                        (i.wrapping_mul(7919) ^ t) as u8,
                        0xff,
                        0,
                        13,
                        10,
                        (i >> 3) as u8,
                    ];
                    let _ = s.write_all(&junk[..1 + (i as usize % junk.len())]);
                    served += 1;
                }
                served
            })
        })
        .collect();
    let served: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(served, 10_000);
    let c = curl(
        &["--proxy", &format!("socks5h://{addr}")],
        &n.url("/hello.txt"),
    );
    assert_eq!((c.code, c.body.as_str()), (0, HELLO), "{}", c.stderr);
    // Refusals are summarised per kind and address, not a line each: the few shown
    // before the curl's own line.
    server.wait_stderr("relayed");
    assert!(
        server.stderr.len() < 100,
        "{} log lines: {:?}",
        server.stderr.len(),
        &server.stderr[..20]
    );
    assert!(server.child.try_wait().unwrap().is_none(), "the proxy died");
}
