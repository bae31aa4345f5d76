//! The proxy's side of the wire: SOCKS5 greetings, logins and requests and HTTP CONNECT
//! heads as a client sends them, arriving a few bytes at a time; and the text a user gives
//! (`--allow`/`--deny` rules, `--proxy` URLs).
use std::fmt::Debug;

use crate::proxy::{Action, Rule};
use crate::proxy_wire::http_connect::{self, MAX_HEAD};
use crate::proxy_wire::{Host, Parsed, ProxyUrl, parse_authority, socks5};

/// The first byte picks the read size (byte + 1); the rest is what a client sends. Each
/// parser reads the bytes as the server would, message after message; a message once whole
/// stays the same however many more bytes come after it, and never takes more than it has.
/// A SOCKS request encodes back to its own bytes; lines of the text are tried as rules and
/// as proxy URLs, whose printed form never holds the password.
pub fn proxy_requests(data: &[u8]) {
    let (chunk, data) = super::split_first(data);
    let chunk = usize::from(chunk) + 1;
    let mut at = 0;
    if let Some((_, n)) = feed(&data[at..], chunk, socks5::parse_greeting) {
        at += n;
        if let Some((_, n)) = feed(&data[at..], chunk, socks5::parse_credentials) {
            at += n;
        }
    }
    if let Some((req, n)) = feed(&data[at..], chunk, socks5::parse_request)
        && let socks5::Command::Connect = req.command
    {
        let again =
            socks5::encode_request(1, &req.host, req.port).expect("a parsed request encodes");
        assert_eq!(
            socks5::parse_request(&again),
            Ok(Parsed::Done(req, again.len()))
        );
        assert!(n <= data.len() - at);
    }
    if let Some((head, n)) = feed(data, chunk, http_connect::parse_request) {
        assert!(n <= MAX_HEAD);
        let authority = format!("{}:{}", head.host, head.port);
        let (host, port) = parse_authority(&authority).expect("a target prints as it parsed");
        assert_eq!((&host, port), (&head.host, head.port));
    }
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(8) {
        if let Ok(rule) = Rule::parse(Action::Deny, line) {
            assert!(rule.to_string().starts_with("deny "));
        }
        if let Ok(url) = ProxyUrl::parse(line)
            && let Some((_, password)) = &url.credentials
            && password.len() > 3
        {
            for shown in [url.to_string(), format!("{url:?}")] {
                assert!(!shown.contains(&format!(":{password}@")), "{shown}");
            }
        }
        let _ = Host::parse(line);
    }
}

/// Feeds `data` to `parse` `chunk` bytes more each time, until a message is whole; checks it
/// is the same message with the rest of `data` behind it.
fn feed<T: Debug + PartialEq, E: Debug + PartialEq>(
    data: &[u8],
    chunk: usize,
    parse: impl Fn(&[u8]) -> Result<Parsed<T>, E>,
) -> Option<(T, usize)> {
    let mut have = 0;
    loop {
        have = (have + chunk).min(data.len());
        match parse(&data[..have]) {
            Ok(Parsed::Done(t, n)) => {
                assert!(n <= have, "took {n} of {have} bytes");
                assert_eq!(parse(data), Ok(Parsed::Done(t, n)), "the message changed");
                let Ok(Parsed::Done(t, n)) = parse(data) else {
                    unreachable!()
                };
                return Some((t, n));
            }
            Ok(Parsed::Incomplete) if have < data.len() => continue,
            Ok(Parsed::Incomplete) | Err(_) => return None,
        }
    }
}
