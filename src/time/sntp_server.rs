//! The SNTP server (RFC 4330 §6, unicast): answers client requests from the local clock.
//!
//! Only mode-3 requests of version 1–4 get a reply, and the reply is never larger than the
//! request, so the service cannot be used to reflect or amplify traffic; anything else
//! (control and private modes included) is dropped without a word.
use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::SystemTime;

use super::sntp::{HEADER_LEN, Packet, Timestamp, mode};
use crate::server::DatagramService;

/// Default stratum. This server reads a clock it cannot vouch for, the situation ntpd's local
/// clock driver and chrony's `local` directive describe with stratum 10 by convention: clients
/// accept the answers, and any really synchronized server they know outranks us.
pub const DEFAULT_STRATUM: u8 = 10;

/// Reference id of an undisciplined local clock.
const REF_ID: [u8; 4] = *b"LOCL";

/// 2^-20 s ≈ 1 µs: what a system clock read through `SystemTime` resolves.
const PRECISION: i8 = -20;

/// Root dispersion claimed, 16.16 seconds: 0x0000_0042 ≈ 1 ms, a small honest error bound
/// for a clock that answers from itself.
const ROOT_DISPERSION: u32 = 0x0000_0042;

/// The SNTP service and its settings.
pub struct SntpService {
    /// Stratum put in every reply (1–15).
    pub stratum: u8,
}

impl SntpService {
    /// The reply to `request` received at `received`, stamped as sent at `now()` — or `None`
    /// when `request` is not an SNTP client request.
    pub fn reply(
        &self,
        request: &[u8],
        received: SystemTime,
        now: impl FnOnce() -> SystemTime,
    ) -> Option<[u8; HEADER_LEN]> {
        let req = Packet::decode(request).ok()?;
        if req.mode != mode::CLIENT || !(1..=4).contains(&req.version) {
            return None;
        }
        let receive = Timestamp::from_system(received);
        let mut reply = Packet {
            leap: 0,
            version: req.version,
            mode: mode::SERVER,
            stratum: self.stratum,
            poll: req.poll,
            precision: PRECISION,
            root_delay: 0,
            root_dispersion: ROOT_DISPERSION,
            ref_id: REF_ID,
            // The clock is its own reference: call it last set at the whole second before the
            // request came, which keeps reference ≤ receive ≤ transmit as clients expect.
            reference: Timestamp(receive.0 & !0xFFFF_FFFF),
            originate: req.transmit,
            receive,
            transmit: Timestamp::default(),
        };
        reply.transmit = Timestamp::from_system(now());
        Some(reply.encode())
    }
}

impl DatagramService for SntpService {
    fn respond<'a>(&mut self, request: &'a mut [u8], peer: SocketAddr) -> Option<Cow<'a, [u8]>> {
        // The framework calls this as soon as recv_from returns: the nearest we get to the
        // arrival time without kernel timestamps.
        let received = SystemTime::now();
        let reply = self.reply(request, received, SystemTime::now);
        if reply.is_none() {
            tracing::debug!(%peer, len = request.len(), "not an SNTP client request; ignored");
        }
        reply.map(|r| Cow::Owned(r.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn request(version: u8, mode: u8) -> [u8; HEADER_LEN] {
        Packet {
            version,
            mode,
            poll: 6,
            transmit: Timestamp(0xE000_0000_1234_5678),
            ..Default::default()
        }
        .encode()
    }

    #[test]
    fn a_client_request_gets_a_server_reply() {
        let svc = SntpService {
            stratum: DEFAULT_STRATUM,
        };
        let t2 = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_micros(250);
        let t3 = t2 + Duration::from_micros(3);
        let reply = svc.reply(&request(3, 3), t2, || t3).unwrap();
        let p = Packet::decode(&reply).unwrap();
        assert_eq!(
            (p.leap, p.version, p.mode, p.stratum, p.poll),
            (0, 3, 4, 10, 6)
        );
        assert_eq!(p.originate, Timestamp(0xE000_0000_1234_5678));
        assert_eq!(p.receive.to_system(), t2);
        assert_eq!(p.transmit.to_system(), t3);
        assert!(p.reference.0 <= p.receive.0);
        assert_eq!(p.ref_id_text(), "LOCL");
    }

    #[test]
    fn everything_but_a_client_request_is_ignored() {
        let svc = SntpService {
            stratum: DEFAULT_STRATUM,
        };
        let now = SystemTime::now();
        for m in [0, 1, 2, 4, 5, 6, 7] {
            assert!(
                svc.reply(&request(4, m), now, SystemTime::now).is_none(),
                "mode {m}"
            );
        }
        for v in [0, 5, 7] {
            assert!(
                svc.reply(&request(v, 3), now, SystemTime::now).is_none(),
                "version {v}"
            );
        }
        assert!(
            svc.reply(&request(4, 3)[..47], now, SystemTime::now)
                .is_none()
        );
    }
}
