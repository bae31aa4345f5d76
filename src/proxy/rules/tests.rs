//! The rules: parsing, first match wins, and the defaults.
use super::*;

fn rules(list: &[(Action, &str)]) -> Rules {
    let rules = list
        .iter()
        .map(|(a, s)| Rule::parse(*a, s).unwrap())
        .collect();
    Rules {
        rules,
        own: vec!["192.0.2.7".parse().unwrap()],
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

use Action::{Allow, Deny};

#[test]
fn defaults_deny_the_proxy_host_and_its_link() {
    let r = rules(&[]);
    for denied in [
        "127.0.0.1",
        "127.8.9.1",
        "::1",
        "::ffff:127.0.0.1",
        "169.254.1.1",
        "fe80::1",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "192.0.2.7",
    ] {
        assert_eq!(r.decide(None, ip(denied), 80).action, Deny, "{denied}");
    }
    assert_eq!(r.decide(None, ip("198.51.100.1"), 80).action, Allow);
    assert!(r.decide(None, ip("127.0.0.1"), 80).why.contains("loopback"));
}

#[test]
fn first_match_wins_and_names_allow_by_name_only() {
    let r = rules(&[
        (Allow, "10.1.2.3"),
        (Deny, "10.0.0.0/8"),
        (Deny, ":22"),
        (Allow, "localhost:8000-8100"),
        (Allow, "[::1]:9000"),
        (Deny, "*.example.com"),
    ]);
    assert_eq!(r.decide(None, ip("10.1.2.3"), 80).action, Allow);
    let v = r.decide(None, ip("10.9.9.9"), 80);
    assert_eq!((v.action, v.why.as_str()), (Deny, "deny 10.0.0.0/8"));
    assert_eq!(r.decide(None, ip("198.51.100.1"), 22).action, Deny);
    assert_eq!(
        r.decide(Some("localhost"), ip("127.0.0.1"), 8080).action,
        Allow
    );
    assert_eq!(r.decide(Some("LOCALHOST."), ip("::1"), 8100).action, Allow);
    // The same address by number, or another port, falls to the defaults.
    assert_eq!(r.decide(None, ip("127.0.0.1"), 8080).action, Deny);
    assert_eq!(
        r.decide(Some("localhost"), ip("127.0.0.1"), 8101).action,
        Deny
    );
    assert_eq!(r.decide(None, ip("::1"), 9000).action, Allow);
    assert_eq!(
        r.decide(Some("a.example.com"), ip("198.51.100.1"), 443)
            .action,
        Deny
    );
    assert_eq!(
        r.decide(Some("example.com"), ip("198.51.100.1"), 443)
            .action,
        Allow
    );
}

#[test]
fn a_name_is_decided_before_resolving_only_when_no_address_rule_comes_first() {
    let r = rules(&[
        (Deny, "*.internal"),
        (Deny, "10.0.0.0/8"),
        (Allow, "ok.test"),
    ]);
    assert_eq!(
        r.decide_name("db.internal", 5432).map(|v| v.action),
        Some(Deny)
    );
    assert_eq!(r.decide_name("ok.test", 80), None);
    assert_eq!(rules(&[]).decide_name("x", 1), None);
}

#[test]
fn bad_rules_say_why() {
    for bad in [
        "",
        "10.0.0.0/33:80",
        "host:99999",
        "host:9-1",
        "[::1",
        "a b",
        "*.",
        ":",
    ] {
        assert!(Rule::parse(Deny, bad).is_err(), "{bad}");
    }
    assert!(Rule::parse(Allow, "*").is_ok());
    assert!(Rule::parse(Allow, "fe80::/10").is_ok());
    assert!(Rule::parse(Allow, "[fe80::/10]:22").is_ok());
}
