//! The SOCKS5 parsers against what clients send, hand-made bytes and arbitrary ones.
use proptest::prelude::*;

use super::*;

#[test]
fn curl_style_greeting_and_requests() {
    assert_eq!(
        parse_greeting(&[5, 2, 0, 2]),
        Ok(Parsed::Done(
            Greeting {
                methods: vec![0, 2]
            },
            4
        ))
    );
    assert_eq!(parse_greeting(&[5, 2, 0]), Ok(Parsed::Incomplete));
    assert_eq!(parse_greeting(&[4, 1, 0]), Err(WireError::Version(4)));
    assert_eq!(parse_greeting(&[5, 0]), Err(WireError::NoMethods));
    // CONNECT 127.0.0.1:80, then a name of 255 bytes.
    let r = [5, 1, 0, 1, 127, 0, 0, 1, 0, 80];
    let want = Request {
        command: Command::Connect,
        host: Host::Ip("127.0.0.1".parse().unwrap()),
        port: 80,
    };
    assert_eq!(parse_request(&r), Ok(Parsed::Done(want, 10)));
    let name = "a".repeat(255);
    let r = encode_request(1, &Host::Name(name.clone()), 443).unwrap();
    assert_eq!(r.len(), 4 + 1 + 255 + 2);
    match parse_request(&r) {
        Ok(Parsed::Done(req, n)) => assert_eq!((req.host, n), (Host::Name(name), r.len())),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_request(&[5, 1, 0, 9, 0, 0]),
        Err(WireError::AddressType(9))
    );
    assert_eq!(
        parse_request(&[5, 1, 0, 3, 0, 0, 80]),
        Err(WireError::BadName)
    );
    assert!(encode_request(1, &Host::Name("a".repeat(256)), 1).is_none());
}

#[test]
fn credentials_round_trip_and_never_print_the_password() {
    let b = encode_credentials(b"ann", b"s3cret").unwrap();
    let Ok(Parsed::Done(c, n)) = parse_credentials(&b) else {
        panic!()
    };
    assert_eq!(
        (c.user.as_slice(), c.password.as_slice(), n),
        (&b"ann"[..], &b"s3cret"[..], b.len())
    );
    assert!(!format!("{c:?}").contains("s3cret"));
    assert_eq!(
        parse_credentials(&[2, 0, 0]),
        Err(WireError::AuthVersion(2))
    );
}

#[test]
fn replies_carry_the_bound_address() {
    let r = reply(code::SUCCEEDED, Some("[::1]:8080".parse().unwrap()));
    assert_eq!(
        parse_reply(&r),
        Ok(Parsed::Done((Host::Ip("::1".parse().unwrap()), 8080), 22))
    );
    let r = reply(code::NOT_ALLOWED, None);
    assert_eq!(parse_reply(&r), Err(WireError::Refused(code::NOT_ALLOWED)));
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| Host::Ip(std::net::Ipv4Addr::from(a).into())),
        any::<[u8; 16]>().prop_map(|a| Host::Ip(std::net::Ipv6Addr::from(a).into())),
        "[a-z0-9.-]{1,255}".prop_map(Host::Name),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip_and_every_prefix_is_incomplete(
        cmd in 1u8..=3, h in host(), port: u16, extra in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut bytes = encode_request(cmd, &h, port).unwrap();
        let len = bytes.len();
        for cut in 0..len {
            prop_assert_eq!(parse_request(&bytes[..cut]), Ok(Parsed::Incomplete));
        }
        // Bytes after the request (a pipelining client's payload) are left alone.
        bytes.extend_from_slice(&extra);
        let want = Request { command: Command::from(cmd), host: h, port };
        prop_assert_eq!(parse_request(&bytes), Ok(Parsed::Done(want, len)));
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_overrun(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Parsed::Done(_, n)) = parse_greeting(&bytes) { prop_assert!(n <= bytes.len()); }
        if let Ok(Parsed::Done(_, n)) = parse_credentials(&bytes) { prop_assert!(n <= bytes.len()); }
        if let Ok(Parsed::Done(_, n)) = parse_request(&bytes) { prop_assert!(n <= bytes.len()); }
        if let Ok(Parsed::Done(_, n)) = parse_reply(&bytes) { prop_assert!(n <= bytes.len()); }
    }

    #[test]
    fn udp_headers_round_trip(h in host(), port: u16, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut d = encode_udp_header(&h, port);
        let len = d.len();
        d.extend_from_slice(&payload);
        prop_assert_eq!(parse_udp_header(&d), Ok(Some((h, port, len))));
        for cut in 0..len {
            prop_assert_eq!(parse_udp_header(&d[..cut]), Ok(None));
        }
        d[2] = 1; // a fragment
        prop_assert_eq!(parse_udp_header(&d), Ok(None));
    }

    #[test]
    fn credentials_round_trip(user in proptest::collection::vec(any::<u8>(), 0..256),
                              password in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = encode_credentials(&user, &password).unwrap();
        let c = Credentials { user, password };
        prop_assert_eq!(parse_credentials(&b), Ok(Parsed::Done(c, b.len())));
    }
}
