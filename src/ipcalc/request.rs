//! The command line (or one line of `taojie ipcalc -`) turned into one checked request:
//! describe a network, compare two addresses, or split a network. Every disagreement among the
//! ways a mask can be given is an error, never a silent choice.
use anyhow::{Result, bail};
use ipnet::IpNet;

use super::IpcalcArgs;
use super::compare::Comparison;
use super::parse::{self, Input, max_prefix};
use super::split::{DEFAULT_LIMIT, Split};

/// What to work out.
#[derive(Debug, Clone)]
pub enum Request {
    /// One address with its prefix (the address keeps its host bits).
    Describe {
        /// The address and prefix.
        net: IpNet,
        /// The IPv6 zone it came with, to show.
        zone: Option<String>,
    },
    /// Are two addresses in one subnet?
    Compare(Comparison),
    /// List the subnets of a network.
    Split {
        /// The network as given (host bits kept, to say so).
        input: IpNet,
        /// The checked split.
        split: Split,
    },
}

/// Checks the arguments and says what they ask for.
pub fn request(args: &IpcalcArgs) -> Result<Request> {
    let mask = args.mask.as_deref();
    if let Some(split_text) = args.split.as_deref() {
        let (net_text, new_text) = match args.addrs.as_slice() {
            // `--split NET/P NEWPREFIX` as well as the contract's `NET/P --split NEWPREFIX`.
            [one] if is_prefix(one) && !is_prefix(split_text) => (split_text, one.as_str()),
            [one] => (one.as_str(), split_text),
            [] => bail!("--split needs a network: taojie ipcalc NET/PREFIX --split NEWPREFIX"),
            _ => bail!("--split takes one network, not two addresses"),
        };
        let (input, _) = network(net_text, mask)?;
        let new_prefix = parse::prefix_for(new_text, input.addr())?;
        let split = Split::new(input, new_prefix, args.limit.unwrap_or(DEFAULT_LIMIT))?;
        return Ok(Request::Split { input, split });
    }
    match args.addrs.as_slice() {
        [] => bail!("no address given: taojie ipcalc ADDR[/PREFIX] [ADDR2] [--mask MASK]"),
        [one] => {
            let (net, zone) = network(one, mask)?;
            Ok(Request::Describe { net, zone })
        }
        [a, b] => compare(a, b, mask).map(Request::Compare),
        _ => bail!("at most two addresses"),
    }
}

/// `24` or `/24`: a bare prefix length rather than an address.
fn is_prefix(text: &str) -> bool {
    let digits = text.strip_prefix('/').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `ADDR[/PREFIX]` with `--mask`: the two must agree when both are given; with neither, the
/// address stands alone (/32 or /128), as Python's `ip_network` reads it.
fn network(text: &str, mask: Option<&str>) -> Result<(IpNet, Option<String>)> {
    let input = parse::input(text)?;
    let prefix = agreed(std::slice::from_ref(&input), mask)?.unwrap_or(max_prefix(input.addr));
    Ok((IpNet::new(input.addr, prefix)?, input.zone))
}

fn compare(a: &str, b: &str, mask: Option<&str>) -> Result<Comparison> {
    let (a, b) = (parse::input(a)?, parse::input(b)?);
    if a.addr.is_ipv4() != b.addr.is_ipv4() {
        // The family error says more than a prefix disagreement would.
        return Ok(Comparison::new(a.addr, b.addr, 0)?);
    }
    let Some(prefix) = agreed(&[a.clone(), b.clone()], mask)? else {
        bail!(
            "two addresses are compared under one netmask: taojie ipcalc {}/PREFIX {} \
             or taojie ipcalc {} {} --mask MASK",
            a.addr,
            b.addr,
            a.addr,
            b.addr
        );
    };
    Ok(Comparison::new(a.addr, b.addr, prefix)?)
}

/// The one prefix length given by the inputs' `/P` and `--mask`, if any was given.
fn agreed(inputs: &[Input], mask: Option<&str>) -> Result<Option<u8>> {
    let mask_prefix = match mask {
        Some(m) => Some(parse::prefix_for(m, inputs[0].addr)?),
        None => None,
    };
    let given: Vec<u8> = inputs
        .iter()
        .filter_map(|i| i.prefix)
        .chain(mask_prefix)
        .collect();
    match given.as_slice() {
        [first, rest @ ..] if rest.iter().any(|p| p != first) => {
            let list: Vec<String> = given.iter().map(|p| format!("/{p}")).collect();
            bail!("the masks given disagree ({}); give one", list.join(", "))
        }
        _ => Ok(given.first().copied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> IpcalcArgs {
        use clap::Parser;
        super::super::LineArgs::try_parse_from(line.split_whitespace())
            .unwrap()
            .args
    }

    fn describe(line: &str) -> String {
        match request(&args(line)).unwrap() {
            Request::Describe { net, .. } => net.to_string(),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn masks_from_any_side() {
        assert_eq!(describe("10.1.2.3"), "10.1.2.3/32");
        assert_eq!(describe("2001:db8::1"), "2001:db8::1/128");
        assert_eq!(describe("10.1.2.3/8"), "10.1.2.3/8");
        assert_eq!(describe("10.1.2.3 --mask 255.0.0.0"), "10.1.2.3/8");
        assert_eq!(describe("10.1.2.3 -m /8"), "10.1.2.3/8");
        assert_eq!(describe("10.1.2.3/8 --mask 8"), "10.1.2.3/8");
    }

    #[test]
    fn both_split_orders() {
        for line in [
            "10.0.0.0/8 --split 10",
            "--split 10.0.0.0/8 10",
            "--split /10 10.0.0.0/8",
        ] {
            let Request::Split { split, .. } = request(&args(line)).unwrap() else {
                panic!("{line}")
            };
            assert_eq!(
                (split.net().to_string(), split.new_prefix()),
                ("10.0.0.0/8".into(), 10),
                "{line}"
            );
        }
        // A netmask as the new prefix, in the contract's order.
        let Request::Split { split, .. } =
            request(&args("10.0.0.0/8 --split 255.192.0.0")).unwrap()
        else {
            panic!()
        };
        assert_eq!(split.new_prefix(), 10);
    }

    #[test]
    fn disagreements_are_errors() {
        let cases = [
            (
                "10.1.2.3/8 --mask 255.255.0.0",
                "the masks given disagree (/8, /16)",
            ),
            (
                "10.0.0.1/24 10.0.0.2/16",
                "the masks given disagree (/24, /16)",
            ),
            ("10.0.0.1 10.0.0.2", "compared under one netmask"),
            ("10.0.0.1/24 ::1", "10.0.0.1 is IPv4 but ::1 is IPv6"),
            ("10.0.0.1 10.0.0.2 --split 24", "--split takes one network"),
            ("--split 24", "--split needs a network"),
            ("10.0.0.0/8 --split 4", "cannot split 10.0.0.0/8 into /4"),
            (
                "0.0.0.0/0 --split 32",
                "0.0.0.0/0 has 4294967296 subnets of /32, more than --limit 65536",
            ),
            ("", "no address given"),
        ];
        for (line, want) in cases {
            let err = format!("{:#}", request(&args(line)).unwrap_err());
            assert!(err.contains(want), "{line}: {err}");
        }
        assert!(request(&args("0.0.0.0/0 --split 32 --limit 4294967296")).is_ok());
    }

    #[test]
    fn the_second_address_may_carry_the_mask() {
        let Request::Compare(c) = request(&args("10.0.0.1 10.0.0.2/24")).unwrap() else {
            panic!()
        };
        assert_eq!(c.a().prefix_len(), 24);
        assert!(c.same_subnet());
    }
}
