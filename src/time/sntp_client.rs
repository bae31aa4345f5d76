//! `taojie time --sntp`: one SNTP exchange (RFC 4330 §5), the reply checked as §5 asks, and
//! the clock offset and round-trip delay worked out from the four timestamps.
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Result, bail};
use chrono::{DateTime, Local};

use super::client::{Exchange, Patience, ask_udp};
use super::sntp::{LI_UNSYNCHRONIZED, Packet, Timestamp, mode};

/// What one good reply tells.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The reply header.
    pub reply: Packet,
    /// Server clock minus ours, nanoseconds: ((T2 − T1) + (T3 − T4)) / 2.
    pub offset_ns: i128,
    /// Round trip less the server's time: (T4 − T1) − (T3 − T2), nanoseconds.
    pub delay_ns: i128,
}

/// Works out offset and delay from T1 (request sent), T2 (request received), T3 (reply sent)
/// and T4 (reply received), all nanoseconds since the Unix epoch.
pub fn offset_delay(t1: i128, t2: i128, t3: i128, t4: i128) -> (i128, i128) {
    (((t2 - t1) + (t3 - t4)) / 2, (t4 - t1) - (t3 - t2))
}

fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// One SNTP client exchange: the transmit timestamp sent last, and when.
struct Sntp {
    sent: Option<(Timestamp, SystemTime)>,
    random: RandomState,
}

impl Sntp {
    /// Random bits for the low end of the transmit timestamp (RandomState is seeded from the
    /// OS), so a blind off-path forger cannot predict the originate value we will check.
    fn noise(&self) -> u64 {
        let mut h = self.random.build_hasher();
        h.write_u128(unix_nanos(SystemTime::now()) as u128);
        h.finish() & 0xFFFF
    }
}

impl Exchange for Sntp {
    type Out = Measurement;

    fn request(&mut self) -> Vec<u8> {
        let noise = self.noise();
        let t1 = SystemTime::now();
        // The low 16 bits of the fraction are below 16 µs; the real T1 is kept apart.
        let transmit = Timestamp(Timestamp::from_system(t1).0 & !0xFFFF | noise);
        self.sent = Some((transmit, t1));
        Packet {
            version: 4,
            mode: mode::CLIENT,
            transmit,
            ..Default::default()
        }
        .encode()
        .to_vec()
    }

    fn answer(&mut self, bytes: &[u8], received: SystemTime) -> Result<Option<Measurement>> {
        let Some((transmit, t1)) = self.sent else {
            return Ok(None);
        };
        let Ok(reply) = Packet::decode(bytes) else {
            return Ok(None);
        };
        // Not an answer to this try (a late one to an earlier try, or a forgery): keep waiting.
        if reply.mode != mode::SERVER || reply.originate != transmit {
            return Ok(None);
        }
        if reply.stratum == 0 {
            bail!(
                "the server sent a kiss-o'-death ({}): it refuses to serve us now",
                reply.ref_id_text()
            );
        }
        if reply.leap == LI_UNSYNCHRONIZED {
            bail!("the server says its clock is not synchronized (leap indicator 3)");
        }
        if reply.transmit.is_zero() {
            bail!("the server's reply has no transmit timestamp");
        }
        let (offset_ns, delay_ns) = offset_delay(
            unix_nanos(t1),
            reply.receive.unix_nanos(),
            reply.transmit.unix_nanos(),
            unix_nanos(received),
        );
        Ok(Some(Measurement {
            reply,
            offset_ns,
            delay_ns,
        }))
    }
}

/// Asks `addr` once (with retries) and measures the clock offset and delay.
pub async fn measure(addr: SocketAddr, patience: Patience) -> Result<Measurement> {
    let mut ex = Sntp {
        sent: None,
        random: RandomState::new(),
    };
    ask_udp(addr, patience, &mut ex).await
}

/// `taojie time --sntp`: prints the server's time, the offset and the delay.
pub async fn run(addr: SocketAddr, patience: Patience, json: bool) -> Result<ExitCode> {
    let m = measure(addr, patience).await?;
    let server_time: DateTime<Local> = m.reply.transmit.to_system().into();
    let ms = |ns: i128| ns as f64 / 1e6;
    if json {
        let v = serde_json::json!({
            "server": addr.to_string(),
            "server_time": server_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
            "offset_ms": ms(m.offset_ns),
            "delay_ms": ms(m.delay_ns),
            "stratum": m.reply.stratum,
            "ref_id": m.reply.ref_id_text(),
            "version": m.reply.version,
            "leap": m.reply.leap,
        });
        println!("{v}");
    } else {
        println!(
            "server time  {}",
            server_time.format("%Y-%m-%d %H:%M:%S%.6f %:z")
        );
        println!("offset       {:+.3} ms", ms(m.offset_ns));
        println!("delay        {:.3} ms", ms(m.delay_ns));
        println!(
            "stratum      {} (reference {}, version {})",
            m.reply.stratum,
            m.reply.ref_id_text(),
            m.reply.version
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_delay_follow_rfc_4330() {
        // Server 100 ms ahead, 10 ms each way, 1 ms inside the server.
        let (o, d) = offset_delay(0, 110, 111, 21);
        assert_eq!((o, d), (100, 20));
    }

    #[test]
    fn replies_are_checked_before_they_count() {
        let mut ex = Sntp {
            sent: None,
            random: RandomState::new(),
        };
        let req = Packet::decode(&ex.request()).unwrap();
        assert_eq!((req.version, req.mode), (4, 3));
        let good = Packet {
            version: 4,
            mode: mode::SERVER,
            stratum: 10,
            originate: req.transmit,
            receive: req.transmit,
            transmit: req.transmit,
            ..Default::default()
        };
        let now = SystemTime::now();
        let judge = |ex: &mut Sntp, p: Packet| ex.answer(&p.encode(), now);
        assert!(judge(&mut ex, good).unwrap().is_some());
        let stale = Packet {
            originate: Timestamp(req.transmit.0 ^ 1),
            ..good
        };
        assert!(judge(&mut ex, stale).unwrap().is_none());
        assert!(
            judge(&mut ex, Packet { mode: 5, ..good })
                .unwrap()
                .is_none()
        );
        let kod = Packet {
            stratum: 0,
            ref_id: *b"RATE",
            ..good
        };
        assert!(
            judge(&mut ex, kod)
                .unwrap_err()
                .to_string()
                .contains("RATE")
        );
        assert!(judge(&mut ex, Packet { leap: 3, ..good }).is_err());
        assert!(
            judge(
                &mut ex,
                Packet {
                    transmit: Timestamp(0),
                    ..good
                }
            )
            .is_err()
        );
    }
}
