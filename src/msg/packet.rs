//! IP Messenger packets: `Ver:PacketNo:User:Host:Command:Extra`, parsed without copying and
//! built for sending.
//!
//! The rules real peers follow (IP Messenger, Feiq, iptux): only the first five `:` split the
//! header, so the extra part may hold `:`; any version whose number part is `1` is valid
//! (`1`, `1_lbt4_10#…`, `1_iptux 0.8.3`); the command's low byte is the command and the high
//! bits are options; the message text runs to the first NUL, and what follows it is
//! NUL-separated (an entry's group and encoding, a message's attachment list).
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::atomic::{AtomicU64, Ordering};

/// The UDP (and, for attachments, TCP) port every IP Messenger peer listens on.
pub const PORT: u16 = 2425;
/// Largest packet accepted or sent; longer ones are dropped unread.
pub const MAX_PACKET: usize = 8192;
/// The version this client announces (the `1` is what peers check).
pub const VERSION: &str = concat!("1_taojie_", env!("CARGO_PKG_VERSION"));

/// Commands: the low byte of the command field.
pub mod cmd {
    /// Nothing; peers send it to keep NAT mappings alive.
    pub const NOOPERATION: u32 = 0x00;
    /// "I am here" to everyone (start-up, or asking who is there).
    pub const BR_ENTRY: u32 = 0x01;
    /// "I am leaving".
    pub const BR_EXIT: u32 = 0x02;
    /// The answer to an entry: "I am here too".
    pub const ANSENTRY: u32 = 0x03;
    /// A change of absence state (and nickname).
    pub const BR_ABSENCE: u32 = 0x04;
    /// A message.
    pub const SENDMSG: u32 = 0x20;
    /// The acknowledgement of a message; the extra part is its packet number.
    pub const RECVMSG: u32 = 0x21;
    /// "Your sealed message was opened".
    pub const READMSG: u32 = 0x30;
    /// "Which client are you?"
    pub const GETINFO: u32 = 0x40;
    /// The answer to GETINFO: the client's version text.
    pub const SENDINFO: u32 = 0x41;
    /// "What is your absence message?"
    pub const GETABSENCEINFO: u32 = 0x50;
    /// The answer to GETABSENCEINFO.
    pub const SENDABSENCEINFO: u32 = 0x51;
    /// Over TCP: send me this attached file from this offset.
    pub const GETFILEDATA: u32 = 0x60;
    /// "I will not fetch the attachments of this message".
    pub const RELEASEFILES: u32 = 0x61;
    /// Over TCP: send me this attached directory.
    pub const GETDIRFILES: u32 = 0x62;
}

/// Option bits: the high bits of the command field.
pub mod opt {
    /// On entries: the sender is away.
    pub const ABSENCE: u32 = 0x100;
    /// On messages: acknowledge with RECVMSG.
    pub const SENDCHECK: u32 = 0x100;
    /// On messages: sent to everyone (no acknowledgement expected).
    pub const BROADCAST: u32 = 0x400;
    /// From a member passing through, not joining (IP Messenger's NOADDLISTOPT, which its
    /// own command-line sender puts on messages): on our entries, answers and exits it says
    /// "answer me, but do not list me", so a `msg send` or `msg who` is not announced to
    /// every listener as arriving and leaving.
    pub const NOADDLIST: u32 = 0x8_0000;
    /// On messages: an attachment list follows the text.
    pub const FILEATTACH: u32 = 0x20_0000;
    /// The text of this packet is UTF-8.
    pub const UTF8: u32 = 0x80_0000;
    /// On entries: the sender understands UTF-8 packets.
    pub const CAPUTF8: u32 = 0x100_0000;
}

/// Why a datagram is not an IP Messenger packet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    /// Longer than [`MAX_PACKET`].
    #[error("packet longer than {MAX_PACKET} bytes")]
    TooLong,
    /// Fewer than five `:`.
    #[error("fewer than six fields")]
    Truncated,
    /// The version's number part is not 1.
    #[error("not protocol version 1")]
    Version,
    /// The packet number is not a decimal number.
    #[error("bad packet number")]
    Number,
    /// The command is not a number.
    #[error("bad command")]
    Command,
}

/// One packet, borrowing the datagram it came in. Names and text are still bytes in the
/// sender's encoding; [`super::text`] decodes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The version field, whole (`1_lbt4_10#…` says a Feiq peer).
    pub version: &'a [u8],
    /// The sender's packet number.
    pub number: u64,
    /// The sender's log-in name.
    pub user: &'a [u8],
    /// The sender's host name.
    pub host: &'a [u8],
    /// Command and options together.
    pub command: u32,
    /// Everything after the fifth `:`.
    pub extra: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parses a datagram.
    pub fn parse(data: &'a [u8]) -> Result<Self, PacketError> {
        if data.len() > MAX_PACKET {
            return Err(PacketError::TooLong);
        }
        let mut fields = data.splitn(6, |&b| b == b':');
        let mut next = || fields.next().ok_or(PacketError::Truncated);
        let (version, number, user, host, command) = (next()?, next()?, next()?, next()?, next()?);
        let extra = next()?;
        let digits = version.iter().take_while(|b| b.is_ascii_digit()).count();
        if &version[..digits] != b"1" {
            return Err(PacketError::Version);
        }
        let number = decimal(number).ok_or(PacketError::Number)?;
        let command = number_field(command).ok_or(PacketError::Command)?;
        Ok(Packet {
            version,
            number,
            user,
            host,
            command,
            extra,
        })
    }

    /// The command without its options.
    pub fn kind(&self) -> u32 {
        self.command & 0xff
    }

    /// Whether option `bit` is set.
    pub fn has(&self, bit: u32) -> bool {
        self.command & bit != 0
    }

    /// The message text (or an entry's nickname): the extra part up to its first NUL.
    pub fn text(&self) -> &'a [u8] {
        self.extra.split(|&b| b == 0).next().unwrap_or_default()
    }

    /// The NUL-separated fields after the text (an entry's group, icon and encoding; a
    /// message's attachment list). A trailing NUL ends the list without adding an empty field.
    pub fn fields(&self) -> Vec<&'a [u8]> {
        let mut parts: Vec<&[u8]> = self.extra.split(|&b| b == 0).skip(1).collect();
        if parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        parts
    }
}

/// A decimal number of at most 20 digits (what `u64` holds).
fn decimal(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 20 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// A command field: decimal as the protocol says, or `0x…` hex as some clients write it.
fn number_field(field: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(field).ok()?.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Builds one packet: the header fields, then `extra` as given (already encoded).
pub fn build(number: u64, user: &[u8], host: &[u8], command: u32, extra: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + user.len() + host.len() + extra.len());
    out.extend_from_slice(VERSION.as_bytes());
    out.extend_from_slice(format!(":{number}:").as_bytes());
    out.extend_from_slice(user);
    out.push(b':');
    out.extend_from_slice(host);
    out.extend_from_slice(format!(":{command}:").as_bytes());
    out.extend_from_slice(extra);
    out
}

/// Fresh, increasing packet numbers, seeded from the clock as real clients do, so a restart
/// does not reuse the numbers a peer has seen.
#[derive(Debug)]
pub struct Numbers(AtomicU64);

impl Numbers {
    /// Numbers starting at the current Unix time in seconds.
    pub fn from_clock() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_secs());
        Numbers(AtomicU64::new(now))
    }

    /// The next number.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The datagram seed 000 sends (its text is GBK on the wire; here the ASCII frame only).
    const SEED: &[u8] = b"1_lbt4_10#32499#002481627512#0#0#0:1289671407:user:host:288:text";

    #[test]
    fn parses_the_seed_datagram() {
        let p = Packet::parse(SEED).unwrap();
        assert_eq!(p.version, b"1_lbt4_10#32499#002481627512#0#0#0");
        assert_eq!(p.number, 1_289_671_407);
        assert_eq!((p.user, p.host), (&b"user"[..], &b"host"[..]));
        assert_eq!(p.kind(), cmd::SENDMSG);
        assert!(p.has(opt::SENDCHECK));
        assert_eq!(p.text(), b"text");
    }

    #[test]
    fn extra_keeps_colons_and_splits_at_nul() {
        let p = Packet::parse(b"1_iptux 0.8.3:5:u:h:1:nick:x\0group\0\0utf-8\0").unwrap();
        assert_eq!(p.text(), b"nick:x");
        assert_eq!(p.fields(), vec![&b"group"[..], b"", b"utf-8"]);
        assert_eq!(
            Packet::parse(b"1:1:u:h:0x20:").unwrap().kind(),
            cmd::SENDMSG
        );
    }

    #[test]
    fn refuses_what_is_not_a_packet() {
        assert_eq!(Packet::parse(b"1:2:u:h:32"), Err(PacketError::Truncated));
        assert_eq!(Packet::parse(b"2:2:u:h:32:"), Err(PacketError::Version));
        assert_eq!(Packet::parse(b"11_x:2:u:h:32:"), Err(PacketError::Version));
        assert_eq!(Packet::parse(b"1:-2:u:h:32:"), Err(PacketError::Number));
        assert_eq!(Packet::parse(b"1:2:u:h:send:"), Err(PacketError::Command));
        let big = [b"1:2:u:h:32:".as_slice(), &[b'x'; MAX_PACKET]].concat();
        assert_eq!(Packet::parse(&big), Err(PacketError::TooLong));
    }

    #[test]
    fn numbers_increase() {
        let n = Numbers::from_clock();
        let (a, b) = (n.next(), n.next());
        assert!(b > a && a > 1_600_000_000);
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Packet::parse(&data);
        }

        #[test]
        fn built_packets_parse_back(
            number in any::<u64>(),
            user in "[^:\0]{0,20}",
            host in "[^:\0]{0,20}",
            command in any::<u32>(),
            extra in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let wire = build(number, user.as_bytes(), host.as_bytes(), command, &extra);
            let p = Packet::parse(&wire).unwrap();
            prop_assert_eq!(p.number, number);
            prop_assert_eq!(p.user, user.as_bytes());
            prop_assert_eq!(p.host, host.as_bytes());
            prop_assert_eq!(p.command, command);
            prop_assert_eq!(p.extra, &extra[..]);
        }
    }
}
