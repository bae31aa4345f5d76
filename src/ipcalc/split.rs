//! `--split NEWPREFIX`: the subnets of a network, listed lazily (ipnet's iterator) and capped,
//! so `0.0.0.0/0 --split 32` is refused rather than printing four billion lines.
use std::fmt;

use ipnet::{IpNet, IpSubnets};

/// How many subnets `--split` lists unless `--limit` says otherwise.
pub const DEFAULT_LIMIT: u64 = 65_536;

/// A checked split: the network (host bits dropped) and the longer prefix to cut it into.
/// Only [`Split::new`] makes one, so the prefixes always fit.
#[derive(Debug, Clone)]
pub struct Split {
    net: IpNet,
    new_prefix: u8,
}

/// 2^exponent, exact however large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u8);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match 1u128.checked_shl(u32::from(self.0)) {
            Some(n) if self.0 < 64 => write!(f, "{n}"),
            _ => write!(f, "2^{}", self.0),
        }
    }
}

/// Why a split was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// The new prefix is shorter than the network's.
    #[error("cannot split {net} into /{new}: a split needs a prefix at least as long as /{}", net.prefix_len())]
    Shorter {
        /// The network.
        net: IpNet,
        /// The prefix asked for.
        new: u8,
    },
    /// The new prefix is past the family's width.
    #[error("cannot split {net} into /{new}: the longest prefix is /{}", net.max_prefix_len())]
    TooLong {
        /// The network.
        net: IpNet,
        /// The prefix asked for.
        new: u8,
    },
    /// More subnets than the limit.
    #[error(
        "{net} has {count} subnets of /{new}, more than --limit {limit}; \
         choose a shorter prefix or raise --limit"
    )]
    TooMany {
        /// The network.
        net: IpNet,
        /// The prefix asked for.
        new: u8,
        /// How many subnets that would be.
        count: Count,
        /// The limit in force.
        limit: u64,
    },
}

impl Split {
    /// Checks that `net` (host bits are dropped) splits into at most `limit` subnets of `new_prefix`.
    pub fn new(net: IpNet, new_prefix: u8, limit: u64) -> Result<Split, SplitError> {
        let net = net.trunc();
        if new_prefix > net.max_prefix_len() {
            return Err(SplitError::TooLong {
                net,
                new: new_prefix,
            });
        }
        if new_prefix < net.prefix_len() {
            return Err(SplitError::Shorter {
                net,
                new: new_prefix,
            });
        }
        let count = Count(new_prefix - net.prefix_len());
        if count.0 >= 64 || 1u64 << count.0 > limit {
            return Err(SplitError::TooMany {
                net,
                new: new_prefix,
                count,
                limit,
            });
        }
        Ok(Split { net, new_prefix })
    }

    /// The network being split.
    pub fn net(&self) -> IpNet {
        self.net
    }

    /// The prefix length of every subnet.
    pub fn new_prefix(&self) -> u8 {
        self.new_prefix
    }

    /// How many subnets.
    pub fn count(&self) -> Count {
        Count(self.new_prefix - self.net.prefix_len())
    }

    /// The subnets in order.
    pub fn subnets(&self) -> IpSubnets {
        self.net
            .subnets(self.new_prefix)
            .expect("checked in Split::new: new_prefix is within the network and the family")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(net: &str, new: u8, limit: u64) -> Result<Vec<String>, SplitError> {
        Split::new(net.parse().unwrap(), new, limit)
            .map(|s| s.subnets().map(|n| n.to_string()).collect())
    }

    #[test]
    fn splits_and_the_limit() {
        assert_eq!(
            split("10.1.2.3/8", 10, 4).unwrap(),
            [
                "10.0.0.0/10",
                "10.64.0.0/10",
                "10.128.0.0/10",
                "10.192.0.0/10"
            ]
        );
        assert_eq!(
            split("255.255.255.254/31", 32, 4).unwrap(),
            ["255.255.255.254/32", "255.255.255.255/32"]
        );
        assert_eq!(split("::/0", 0, 1).unwrap(), ["::/0"]);
        assert_eq!(
            split("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", 128, 2)
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            split("10.0.0.0/8", 11, 4),
            Err(SplitError::TooMany {
                count: Count(3),
                ..
            })
        ));
        assert!(matches!(
            split("10.0.0.0/8", 4, 4),
            Err(SplitError::Shorter { .. })
        ));
        assert!(matches!(
            split("10.0.0.0/8", 33, 4),
            Err(SplitError::TooLong { .. })
        ));
    }

    #[test]
    fn counts_past_u64_print_as_powers() {
        let err = split("::/0", 128, u64::MAX).unwrap_err();
        assert_eq!(
            err.to_string(),
            "::/0 has 2^128 subnets of /128, more than --limit 18446744073709551615; \
             choose a shorter prefix or raise --limit"
        );
        assert_eq!(Count(32).to_string(), "4294967296");
    }
}
