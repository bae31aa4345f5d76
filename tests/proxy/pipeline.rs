//! Plain HTTP requests after the first on one client connection: pipelined, or sent on a
//! connection kept alive. The proxy passes on one request per connection, so the origin
//! server gets the first request and its body and nothing after them (a second request, for
//! another host, with the client's Proxy-Authorization, is not its to see); the client gets
//! the first answer marked `Connection: close`, then the end of the connection, and its
//! retry on a new connection reaches the second host. A chunked body (no length to know
//! where the request ends) is refused with 411.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::{proxy, users_file};

/// `ann:s3cret pass` in Basic's base64.
const ANN_BASIC: &str = "YW5uOnMzY3JldCBwYXNz";
const WAIT: Duration = Duration::from_secs(10);

/// An origin server answering `name` on each connection it accepts, as a server that would
/// keep the connection alive does (no `Connection: close`), once it has a whole head and its
/// `Content-Length` body; then it stops sending and reads on until the proxy's end. Each
/// connection's bytes, all of them, come back on the channel.
fn origin(name: &'static str) -> (TcpListener, u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let l = listener.try_clone().unwrap();
    thread::spawn(move || {
        while let Ok((mut s, _)) = l.accept() {
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let mut answered = false;
            loop {
                if !answered && whole_request(&got) {
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nKeep-Alive: timeout=5\r\n\r\n{name}",
                        name.len()
                    );
                    let _ = s.write_all(answer.as_bytes());
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    answered = true;
                }
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if tx.send(String::from_utf8_lossy(&got).into_owned()).is_err() {
                break;
            }
        }
    });
    (listener, port, rx)
}

/// Whether `got` holds a head and the body its Content-Length names.
fn whole_request(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    body.len() >= length
}

/// A client connection to the proxy.
fn client(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

fn request(method: &str, port: u16, path: &str, body: &str) -> String {
    format!(
        "{method} http://127.0.0.1:{port}{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
Proxy-Authorization: Basic {ANN_BASIC}\r\nProxy-Connection: keep-alive\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn a_pipelined_second_request_is_not_passed_to_the_first_host_and_goes_on_when_retried() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let (_server, addr) = proxy("127.0.0.1:0", &["--allow", "127.0.0.1", "--users", &users]);
    let (_a, a, from_a) = origin("A");
    let (_b, b, from_b) = origin("B");
    let first = request("POST", a, "/one", "first");
    let second = request("POST", b, "/two", "more!");
    let mut s = client(&addr);
    s.write_all(format!("{first}{second}").as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200 OK\r\n")
            && answer.contains("\r\nConnection: close\r\n")
            && !answer.contains("Keep-Alive")
            && answer.ends_with("\r\n\r\nA"),
        "{answer}"
    );
    let got = from_a.recv_timeout(WAIT).unwrap();
    assert!(
        got.starts_with("POST /one HTTP/1.1\r\n") && got.ends_with("\r\n\r\nfirst"),
        "{got}"
    );
    assert!(
        !got.contains("/two") && !got.contains(ANN_BASIC) && !got.contains("more!"),
        "the first host saw the second request: {got}"
    );
    // B saw nothing of it (a connection would be reported when it ends).
    assert!(from_b.recv_timeout(Duration::from_millis(300)).is_err());

    // The client retries the unanswered request on a new connection: it reaches B.
    let mut s = client(&addr);
    s.write_all(second.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with("\r\n\r\nB"), "{answer}");
    let got = from_b.recv_timeout(WAIT).unwrap();
    assert!(
        got.starts_with("POST /two HTTP/1.1\r\n") && got.ends_with("\r\n\r\nmore!"),
        "{got}"
    );
}

#[test]
fn a_kept_alive_connection_ends_after_its_first_answer() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let (_server, addr) = proxy("127.0.0.1:0", &["--allow", "127.0.0.1", "--users", &users]);
    let (_a, a, from_a) = origin("A");
    let mut s = client(&addr);
    s.write_all(request("GET", a, "/one", "").as_bytes())
        .unwrap();
    // The whole answer, as a keep-alive client reads it: head, then Content-Length bytes.
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).unwrap();
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    s.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"A");
    // The same host again on the same connection: it has ended, and the origin saw one
    // request only.
    let _ = s.write_all(request("GET", a, "/again", "").as_bytes());
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    let got = from_a.recv_timeout(WAIT).unwrap();
    assert!(
        got.starts_with("GET /one HTTP/1.1\r\n") && !got.contains("/again"),
        "{got}"
    );
    assert!(from_a.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn a_chunked_request_body_is_refused_with_411_and_the_origin_sees_nothing() {
    let (_server, addr) = proxy("127.0.0.1:0", &["--allow", "127.0.0.1"]);
    let (_a, a, from_a) = origin("A");
    let mut s = client(&addr);
    let chunked = format!(
        "POST http://127.0.0.1:{a}/up HTTP/1.1\r\nHost: 127.0.0.1:{a}\r\n\
Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n"
    );
    s.write_all(chunked.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 411 "), "{answer}");
    assert!(from_a.recv_timeout(Duration::from_millis(300)).is_err());
}
