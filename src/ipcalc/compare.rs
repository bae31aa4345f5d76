//! "Are these two hosts in one subnet?", answered as seed 002 answers it: AND each address with
//! the netmask; the two are in one subnet when the results (their networks) are equal.
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::calc::Summary;
use super::parse::family;

/// Two addresses of one family and the one prefix length they are compared under; only
/// [`Comparison::new`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    a: IpNet,
    b: IpNet,
}

/// Why two addresses cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    /// One IPv4, one IPv6.
    #[error("{a} is {} but {b} is {}; compare addresses of one family", family(*a), family(*b))]
    Families {
        /// The first address.
        a: IpAddr,
        /// The second address.
        b: IpAddr,
    },
    /// A prefix past the family's width.
    #[error("prefix /{0} is out of range for the addresses")]
    Prefix(u8),
}

impl Comparison {
    /// Compares `a` and `b` under `prefix`.
    pub fn new(a: IpAddr, b: IpAddr, prefix: u8) -> Result<Comparison, CompareError> {
        if a.is_ipv4() != b.is_ipv4() {
            return Err(CompareError::Families { a, b });
        }
        let net = |addr| IpNet::new(addr, prefix).map_err(|_| CompareError::Prefix(prefix));
        Ok(Comparison {
            a: net(a)?,
            b: net(b)?,
        })
    }

    /// The first address with the shared prefix.
    pub fn a(&self) -> IpNet {
        self.a
    }

    /// The second address with the shared prefix.
    pub fn b(&self) -> IpNet {
        self.b
    }

    /// The netmask both addresses are ANDed with.
    pub fn netmask(&self) -> IpAddr {
        self.a.netmask()
    }

    /// Whether `a AND mask == b AND mask`.
    pub fn same_subnet(&self) -> bool {
        self.a.network() == self.b.network()
    }

    /// The `--json` object: the first address's summary, then `same_subnet` and the second
    /// address with its network.
    pub fn json(&self) -> ComparisonJson {
        ComparisonJson {
            summary: Summary::of(self.a),
            same_subnet: self.same_subnet(),
            other: self.b.addr(),
            other_network: self.b.network(),
        }
    }
}

/// `taojie ipcalc A B --json`.
#[derive(Debug, Serialize)]
pub struct ComparisonJson {
    /// The first address worked out.
    #[serde(flatten)]
    pub summary: Summary,
    /// Whether the two ANDs are equal.
    pub same_subnet: bool,
    /// The second address.
    pub other: IpAddr,
    /// The second address AND the netmask.
    pub other_network: IpAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compare(a: &str, b: &str, prefix: u8) -> Result<Comparison, CompareError> {
        Comparison::new(a.parse().unwrap(), b.parse().unwrap(), prefix)
    }

    #[test]
    fn the_seeds_example() {
        let c = compare("172.16.10.1", "172.16.10.2", 24).unwrap();
        assert!(c.same_subnet());
        assert_eq!(c.netmask(), "255.255.255.0".parse::<IpAddr>().unwrap());
        assert!(
            !compare("172.16.10.1", "172.16.11.2", 24)
                .unwrap()
                .same_subnet()
        );
        assert!(
            compare("172.16.10.1", "172.16.11.2", 16)
                .unwrap()
                .same_subnet()
        );
        assert!(compare("1.2.3.4", "200.2.3.4", 0).unwrap().same_subnet());
        assert!(!compare("10.0.0.0", "10.0.0.1", 32).unwrap().same_subnet());
        assert!(
            compare("2001:db8::1", "2001:db8::ffff", 64)
                .unwrap()
                .same_subnet()
        );
    }

    #[test]
    fn families_and_prefixes_must_fit() {
        let err = compare("1.2.3.4", "::1", 24).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1.2.3.4 is IPv4 but ::1 is IPv6; compare addresses of one family"
        );
        assert_eq!(
            compare("1.2.3.4", "1.2.3.5", 33),
            Err(CompareError::Prefix(33))
        );
    }

    #[test]
    fn json_keys_follow_the_summary() {
        let json =
            serde_json::to_string(&compare("10.0.0.1", "10.0.1.1", 24).unwrap().json()).unwrap();
        assert!(
            json.starts_with(r#"{"address":"10.0.0.1","prefix":24,"#),
            "{json}"
        );
        assert!(
            json.ends_with(r#""same_subnet":false,"other":"10.0.1.1","other_network":"10.0.1.0"}"#),
            "{json}"
        );
    }
}
