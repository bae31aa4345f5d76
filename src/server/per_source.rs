//! A rate limit per source address, for UDP services that answer what arrives: a forged
//! source address turns every answer into a packet sent to a victim, so no address gets more
//! than a few answers a second. Addresses count as their IPv4 address or IPv6 /64.
//!
//! The table is bounded: when it is full of addresses seen within the last moments (a flood
//! from many forged sources), newcomers share one extra bucket, so the flood gets its rate
//! once between them, not once each, and the addresses already known keep theirs.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Addresses tracked at most.
const MAX_SOURCES: usize = 4096;

/// The address a per-address limit counts under: IPv4 (or IPv4-mapped IPv6) as is, IPv6 by
/// its /64, what one host or one LAN usually has.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// Token buckets, one per source address.
#[derive(Debug)]
pub struct PerSource {
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
    overflow: (f64, Instant),
}

impl PerSource {
    /// `rate` answers a second per address, `burst` at once.
    pub fn new(rate: f64, burst: f64) -> PerSource {
        PerSource {
            rate,
            burst,
            buckets: HashMap::new(),
            overflow: (burst, Instant::now()),
        }
    }

    /// Whether `ip` may have one more answer now (and takes it from its bucket).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = source_key(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_SOURCES {
            // A bucket that has filled up again tells nothing its owner needs: forget it.
            let full_after = Duration::from_secs_f64(self.burst / self.rate);
            self.buckets
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < full_after);
        }
        let (rate, burst) = (self.rate, self.burst);
        let bucket = if self.buckets.len() < MAX_SOURCES || self.buckets.contains_key(&key) {
            self.buckets.entry(key).or_insert((burst, now))
        } else {
            &mut self.overflow
        };
        let secs = now.saturating_duration_since(bucket.1).as_secs_f64();
        bucket.0 = (bucket.0 + secs * rate).min(burst);
        bucket.1 = now;
        if bucket.0 < 1.0 {
            return false;
        }
        bucket.0 -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_burst_then_its_rate() {
        let mut limit = PerSource::new(10.0, 5.0);
        let t = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!((0..20).filter(|_| limit.allow(a, t)).count(), 5);
        assert!(limit.allow(b, t));
        // Same /64.
        assert_eq!(
            (0..20)
                .filter(|_| limit.allow("2001:db8::2".parse().unwrap(), t))
                .count(),
            4
        );
        assert_eq!(
            (0..20)
                .filter(|_| limit.allow(a, t + Duration::from_millis(500)))
                .count(),
            5
        );
    }

    #[test]
    fn a_flood_of_sources_shares_one_bucket_once_the_table_is_full() {
        let mut limit = PerSource::new(1.0, 2.0);
        let t = Instant::now();
        let mut allowed = 0;
        for i in 0..(MAX_SOURCES as u32 + 1000) {
            allowed += usize::from(limit.allow(IpAddr::from(i.to_be_bytes()), t));
        }
        assert_eq!(allowed, MAX_SOURCES + 2);
        assert!(limit.buckets.len() <= MAX_SOURCES);
    }
}
