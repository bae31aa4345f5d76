//! Hostile input: overlong lines, lines with no end, invalid UTF-8 and terminal escapes.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use super::{chat_server, raw_client};

fn read_until(r: &mut BufReader<TcpStream>, what: &str) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line).unwrap();
        assert!(
            n > 0,
            "closed before {what:?}; got {}",
            String::from_utf8_lossy(&all)
        );
        all.extend_from_slice(&line);
        if String::from_utf8_lossy(&line).contains(what) {
            return all;
        }
    }
}

#[test]
fn hostile_lines_are_refused_or_neutralised() {
    let server = chat_server(&["--max-line", "100"]);
    let addr = server.addr("chat", "tcp");
    let (mut a, mut ar) = raw_client(&addr, "mal");
    let (_b, mut br) = raw_client(&addr, "vic");
    read_until(&mut ar, "vic");

    a.write_all(&[b'y'; 150]).unwrap();
    a.write_all(b"\n").unwrap();
    read_until(&mut ar, "*** line too long (over 100 bytes); not sent");
    // A line with no end at all is refused as soon as it passes the limit, not buffered.
    a.write_all(&vec![b'z'; 1 << 20]).unwrap();
    read_until(&mut ar, "line too long");
    a.write_all(b"\nbad \xff\xfe utf8\n\x1b[2J\x1b]0;title\x07 clear\n\x9b\xc2\x9b31m c1\n")
        .unwrap();
    let got = read_until(&mut br, "c1");
    let text = String::from_utf8(got).expect("only valid UTF-8 reaches others");
    assert!(text.contains("<mal> bad \u{fffd}\u{fffd} utf8\n"), "{text}");
    assert!(text.contains("<mal> ^[[2J^[]0;title^G clear\n"), "{text}");
    assert!(text.contains("<mal> \u{fffd}\u{fffd}31m c1\n"), "{text}");
    assert!(
        !text.contains('y') && !text.contains('z'),
        "overlong lines leaked: {text}"
    );
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
}
