//! Datagram decoders: SNTP packets, the seed's strftime request and IP Messenger packets with
//! their attachment lists.
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use chrono::{DateTime, Local};

use crate::msg::attach;
use crate::msg::members::Members;
use crate::msg::packet::{self, Packet};
use crate::msg::text::{self, Encoding};
use crate::time::sntp::{HEADER_LEN, Packet as Ntp};
use crate::time::sntp_server::SntpService;
use crate::time::strftime;

/// Decodes an NTP packet as the client and server do; what decodes must encode back to the
/// same 48 bytes, and the server's reply to it must itself decode.
pub fn sntp(data: &[u8]) {
    let Ok(p) = Ntp::decode(data) else {
        assert!(data.len() < HEADER_LEN);
        return;
    };
    assert_eq!(
        &p.encode()[..],
        &data[..HEADER_LEN],
        "encode(decode(bytes))"
    );
    assert_eq!(Ntp::decode(&p.encode()), Ok(p), "decode(encode(packet))");
    let _ = p.ref_id_text();
    for ts in [p.reference, p.originate, p.receive, p.transmit] {
        let _ = ts.to_system();
    }
    let received = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let service = SntpService { stratum: 1 };
    if let Some(reply) = service.reply(data, received, || received) {
        let r = Ntp::decode(&reply).expect("our reply decodes");
        assert_eq!(
            r.originate, p.transmit,
            "the reply echoes the client's transmit time"
        );
    }
}

/// Answers a strftime request at a time the first eight bytes choose; the answer stays
/// within its bound.
pub fn strftime(data: &[u8]) {
    let (secs, request) = match data.split_first_chunk::<8>() {
        Some((t, rest)) => (i64::from_le_bytes(*t), rest),
        None => (0, data),
    };
    let now: DateTime<Local> = DateTime::from_timestamp(secs % 400_000_000_000, 0)
        .unwrap_or_default()
        .into();
    if let Ok(text) = strftime::answer(request, &now) {
        assert!(text.len() <= strftime::MAX_ANSWER);
    }
    let cap = strftime::answer_cap(request.len());
    if let Ok(text) = strftime::answer_within(request, &now, cap) {
        assert!(text.len() <= cap);
    }
}

/// Parses an IP Messenger datagram and takes it in the way the messenger does: the member
/// table, the text in its guessed encoding, the attachment list and a file request. A packet
/// rebuilt from the parsed fields parses back to them.
pub fn ipmsg(data: &[u8]) {
    let Ok(p) = Packet::parse(data) else {
        return;
    };
    let again = packet::build(p.number, p.user, p.host, p.command, p.extra);
    // Names with `:` cannot travel unescaped, and our version may make a packet too long.
    if !p.user.contains(&b':') && !p.host.contains(&b':') && again.len() <= packet::MAX_PACKET {
        let q = Packet::parse(&again).expect("a rebuilt packet parses");
        assert_eq!(
            (q.number, q.user, q.host, q.command, q.extra),
            (p.number, p.user, p.host, p.command, p.extra),
            "parse(build(fields))"
        );
    }
    let from = SocketAddr::from(([192, 0, 2, 1], packet::PORT));
    let mut members = Members::new(4);
    let (m, _) = members.entry(from, &p);
    let _ = (m.name(), m.send_encoding());
    let (_, _) = members.message(from, &p);
    let enc = members.decoding(from, &p);
    let _ = text::neutralise(&enc.decode(p.text()));
    for field in p.fields() {
        let _ = Encoding::from_label(field);
    }
    for enc in [Encoding::Utf8, Encoding::Gbk] {
        let list = attach::parse_list(p.fields().first().copied().unwrap_or_default(), enc);
        assert!(list.len() <= attach::MAX_FILES);
        for a in list {
            let _ = text::neutralise_name(&a.name);
        }
    }
    let _ = attach::request_fields(p.extra);
}
