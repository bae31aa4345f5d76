//! The NTP/SNTP packet (RFC 4330 §4): the 48-byte header both sides share, and NTP timestamps
//! (seconds since 1900 in 32.32 fixed point) with the era rule of §3 for the 2036 rollover.
//!
//! Decoding reads the fixed header and ignores anything after it (extension fields, a key id
//! and digest); it never fails on content, only on length, so any 48 bytes decode.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of the NTP header without extension fields or authenticator.
pub const HEADER_LEN: usize = 48;

/// Seconds from 1900-01-01 (the NTP epoch) to 1970-01-01 (the Unix epoch).
const NTP_TO_UNIX: i64 = 2_208_988_800;

/// The association modes of RFC 4330 §4 this crate acts on.
pub mod mode {
    /// A client request.
    pub const CLIENT: u8 = 3;
    /// A server reply.
    pub const SERVER: u8 = 4;
}

/// Leap indicator 3: the sender's clock is not synchronized.
pub const LI_UNSYNCHRONIZED: u8 = 3;

/// An NTP timestamp: seconds in the high 32 bits, fraction of a second in the low 32. Zero
/// means "unknown" on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp for `time`, truncated to the 2^-32 s resolution of the wire.
    ///
    /// The seconds field wraps modulo 2^32: 2036-02-07T06:28:16Z encodes as 0 and §3's era
    /// rule maps it back when decoding. Times before 1968 are not representable that way
    /// and come out in the 2036–2104 era, which no clock of ours will show.
    pub fn from_system(time: SystemTime) -> Timestamp {
        let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                // Before 1970: borrow a second so the fraction stays positive.
                let d = e.duration();
                match d.subsec_nanos() {
                    0 => (-(d.as_secs() as i64), 0),
                    n => (-(d.as_secs() as i64) - 1, 1_000_000_000 - n),
                }
            }
        };
        let ntp_secs = (secs + NTP_TO_UNIX) as u64 & 0xFFFF_FFFF;
        let frac = (u64::from(nanos) << 32) / 1_000_000_000;
        Timestamp(ntp_secs << 32 | frac)
    }

    /// Nanoseconds since the Unix epoch, signed, with RFC 4330 §3's eras: a set top bit of the
    /// seconds means 1968–2036 counted from 1900, a clear one 2036–2104 counted from
    /// 2036-02-07T06:28:16Z (1900 + 2^32 s).
    pub fn unix_nanos(self) -> i128 {
        let secs = self.0 >> 32;
        let frac = self.0 & 0xFFFF_FFFF;
        let era_secs = if secs & 0x8000_0000 != 0 {
            secs as i64
        } else {
            secs as i64 + (1i64 << 32)
        };
        let unix_secs = era_secs - NTP_TO_UNIX;
        // Rounded to the nearest nanosecond so that encode→decode gives back what it got.
        let nanos = ((frac as u128 * 1_000_000_000 + (1u128 << 31)) >> 32) as i128;
        i128::from(unix_secs) * 1_000_000_000 + nanos
    }

    /// The wall-clock time this timestamp names.
    pub fn to_system(self) -> SystemTime {
        let n = self.unix_nanos();
        let d = Duration::new(
            (n.unsigned_abs() / 1_000_000_000) as u64,
            (n.unsigned_abs() % 1_000_000_000) as u32,
        );
        if n >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }

    /// True for the all-zero "unknown" value.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// The NTP header (RFC 4330 §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// Leap indicator, 2 bits (3: unsynchronized).
    pub leap: u8,
    /// Version number, 3 bits.
    pub version: u8,
    /// Association mode, 3 bits (3 client, 4 server).
    pub mode: u8,
    /// Stratum (0: kiss-o'-death, 1: primary, 2–15: secondary).
    pub stratum: u8,
    /// Poll interval, log2 seconds.
    pub poll: i8,
    /// Clock precision, log2 seconds.
    pub precision: i8,
    /// Round-trip delay to the primary source, signed 16.16 seconds.
    pub root_delay: u32,
    /// Dispersion relative to the primary source, unsigned 16.16 seconds.
    pub root_dispersion: u32,
    /// Reference identifier: ASCII for stratum 0–1 (a kiss code or a source name).
    pub ref_id: [u8; 4],
    /// When the clock was last set or corrected.
    pub reference: Timestamp,
    /// Client's transmit time, echoed by the server.
    pub originate: Timestamp,
    /// When the request reached the server.
    pub receive: Timestamp,
    /// When the packet left its sender.
    pub transmit: Timestamp,
}

/// Why bytes are not an NTP packet.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the fixed header.
    #[error("{0} bytes is shorter than the {HEADER_LEN}-byte NTP header")]
    TooShort(usize),
}

impl Packet {
    /// Reads the header from the start of `bytes`; anything after it is ignored.
    pub fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
        let Some(b) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::TooShort(bytes.len()));
        };
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let ts_at = |i: usize| Timestamp(u64::from(u32_at(i)) << 32 | u64::from(u32_at(i + 4)));
        Ok(Packet {
            leap: b[0] >> 6,
            version: (b[0] >> 3) & 0b111,
            mode: b[0] & 0b111,
            stratum: b[1],
            poll: b[2] as i8,
            precision: b[3] as i8,
            root_delay: u32_at(4),
            root_dispersion: u32_at(8),
            ref_id: [b[12], b[13], b[14], b[15]],
            reference: ts_at(16),
            originate: ts_at(24),
            receive: ts_at(32),
            transmit: ts_at(40),
        })
    }

    /// The 48 header bytes; the bit fields are masked to their widths.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = (self.leap & 0b11) << 6 | (self.version & 0b111) << 3 | (self.mode & 0b111);
        b[1] = self.stratum;
        b[2] = self.poll as u8;
        b[3] = self.precision as u8;
        b[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        b[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        b[12..16].copy_from_slice(&self.ref_id);
        for (i, ts) in [self.reference, self.originate, self.receive, self.transmit]
            .into_iter()
            .enumerate()
        {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&ts.0.to_be_bytes());
        }
        b
    }

    /// The reference id as text when it is printable ASCII (a kiss code, "LOCL", "GPS"),
    /// else as a dotted quad (a stratum ≥ 2 server's upstream IPv4 address).
    pub fn ref_id_text(&self) -> String {
        let trimmed: Vec<u8> = self
            .ref_id
            .iter()
            .copied()
            .take_while(|&c| c != 0)
            .collect();
        if !trimmed.is_empty() && trimmed.iter().all(|c| c.is_ascii_graphic()) {
            String::from_utf8_lossy(&trimmed).into_owned()
        } else {
            let [a, b, c, d] = self.ref_id;
            format!("{a}.{b}.{c}.{d}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unix_epoch_is_the_known_ntp_second() {
        let ts = Timestamp::from_system(UNIX_EPOCH);
        assert_eq!(ts.0 >> 32, 2_208_988_800);
        assert_eq!(ts.0 & 0xFFFF_FFFF, 0);
        assert_eq!(ts.to_system(), UNIX_EPOCH);
    }

    #[test]
    fn half_a_second_is_the_top_fraction_bit() {
        let ts = Timestamp::from_system(UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(ts.0 & 0xFFFF_FFFF, 0x8000_0000);
    }

    #[test]
    fn the_2036_rollover_decodes_into_the_next_era() {
        // 2036-02-07T06:28:16Z is NTP second 2^32: it wraps to 0, and §3 maps it back.
        let rollover = UNIX_EPOCH + Duration::from_secs((1u64 << 32) - NTP_TO_UNIX as u64);
        let ts = Timestamp::from_system(rollover);
        assert_eq!(ts.0 >> 32, 0);
        assert_eq!(ts.to_system(), rollover);
        let later = rollover + Duration::from_secs(86_400 * 365 * 30);
        assert_eq!(Timestamp::from_system(later).to_system(), later);
        let before = rollover - Duration::from_nanos(1);
        assert_eq!(Timestamp::from_system(before).0 >> 32, 0xFFFF_FFFF);
    }

    #[test]
    fn decode_reads_the_fields_where_rfc_4330_puts_them() {
        let mut b = [0u8; 48];
        b[0] = 0b11_100_011; // LI 3, VN 4, mode 3
        b[1] = 2;
        b[2] = 6;
        b[3] = 0xEC; // -20
        b[12..16].copy_from_slice(b"LOCL");
        b[40..48].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        let p = Packet::decode(&b).unwrap();
        assert_eq!((p.leap, p.version, p.mode), (3, 4, 3));
        assert_eq!((p.stratum, p.poll, p.precision), (2, 6, -20));
        assert_eq!(p.ref_id_text(), "LOCL");
        assert_eq!(p.transmit, Timestamp(0x0102_0304_0506_0708));
        assert_eq!(p.encode(), b);
    }

    #[test]
    fn short_input_is_an_error_and_trailing_bytes_are_ignored() {
        assert_eq!(Packet::decode(&[0; 47]), Err(DecodeError::TooShort(47)));
        assert!(Packet::decode(&[0; 68]).is_ok());
    }

    #[test]
    fn non_ascii_ref_id_prints_as_an_address() {
        let p = Packet {
            ref_id: [192, 0, 2, 1],
            ..Default::default()
        };
        assert_eq!(p.ref_id_text(), "192.0.2.1");
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            match Packet::decode(&bytes) {
                Ok(p) => {
                    prop_assert!(bytes.len() >= HEADER_LEN);
                    prop_assert_eq!(&p.encode()[..], &bytes[..HEADER_LEN]);
                    let _ = p.ref_id_text();
                    let _ = p.transmit.to_system();
                }
                Err(DecodeError::TooShort(n)) => prop_assert!(n < HEADER_LEN),
            }
        }

        #[test]
        fn encode_then_decode_round_trips(
            leap in 0u8..4, version in 0u8..8, mode in 0u8..8, stratum: u8, poll: i8,
            precision: i8, root_delay: u32, root_dispersion: u32, ref_id: [u8; 4],
            ts: [u64; 4],
        ) {
            let p = Packet {
                leap, version, mode, stratum, poll, precision, root_delay, root_dispersion, ref_id,
                reference: Timestamp(ts[0]), originate: Timestamp(ts[1]),
                receive: Timestamp(ts[2]), transmit: Timestamp(ts[3]),
            };
            prop_assert_eq!(Packet::decode(&p.encode()), Ok(p));
        }

        #[test]
        fn timestamps_round_trip_to_the_nanosecond(secs in 0u64..4_233_462_144, nanos in 0u32..1_000_000_000) {
            // 1970 to 2104: the part of the two eras' span after the Unix epoch.
            let t = UNIX_EPOCH + Duration::new(secs, nanos);
            prop_assert_eq!(Timestamp::from_system(t).to_system(), t);
        }
    }
}
