//! `taojie ipcalc`: addresses, masks and subnets, as seeds 002 and 004 explain them — an IP
//! address AND its subnet mask is the network; two hosts share a subnet when their ANDs are equal.
//!
//! The data flows text → [`parse`] → [`request`] → [`calc`] / [`compare`] / [`split`] → [`human`]
//! or [`json`]. Answers agree with Python's `ipaddress` (tests/ipcalc.rs runs it as the oracle);
//! [`calc`] says how usable hosts are counted.
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser};

pub mod bits;
pub mod calc;
pub mod compare;
pub mod human;
pub mod json;
pub mod kind;
pub mod parse;
pub mod request;
pub mod split;

use request::Request;

const AFTER_HELP: &str = "\
Examples:
  taojie ipcalc 192.168.1.77/24                 network, broadcast, hosts, class, kind
  taojie ipcalc 192.168.1.77 --mask 255.255.255.0
  taojie ipcalc 2001:db8::1/64 --json
  taojie ipcalc 172.16.10.1 172.16.10.2 --mask 255.255.255.0    same subnet? the AND, bit by bit
  taojie ipcalc 10.0.0.0/8 --split 12           the /12 subnets (also: --split 10.0.0.0/8 12)
  printf '10.0.0.1/8\\n::1/64\\n' | taojie ipcalc - --json      one case per line

Hosts count as Python's ipaddress counts them: IPv4 excludes the network and broadcast except
/31 (RFC 3021, two hosts) and /32; IPv6 excludes the first address (Subnet-Router anycast)
except /127 (two hosts) and /128. Two addresses in one subnet exit 0 as well as two that are not;
--json says which.";

/// Flags of `taojie ipcalc`.
#[derive(Args, Debug, Clone)]
#[command(after_help = AFTER_HELP)]
pub struct IpcalcArgs {
    /// ADDR[/PREFIX] or ADDR/NETMASK, then optionally a second address to compare with it;
    /// `-` reads one case (these arguments) per line from standard input
    #[arg(value_name = "ADDR", num_args = 0..=2)]
    pub addrs: Vec<String>,
    /// The netmask: dotted (255.255.255.0), IPv6 (ffff:ffff::) or a prefix length (24, /24)
    #[arg(long, short, value_name = "MASK")]
    pub mask: Option<String>,
    /// List the subnets of this longer prefix length
    #[arg(long, value_name = "NEWPREFIX")]
    pub split: Option<String>,
    /// Refuse a split into more subnets than this [default: 65536]
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// One JSON object per result, one per line
    #[arg(long)]
    pub json: bool,
}

/// One line of `taojie ipcalc -`, read with the command line's own rules.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct LineArgs {
    #[command(flatten)]
    args: IpcalcArgs,
}

/// The longest line `taojie ipcalc -` reads; a longer one is an error for that line.
const MAX_LINE: usize = 4096;

/// Runs `taojie ipcalc`.
pub fn run(args: IpcalcArgs) -> Result<ExitCode> {
    let mut out = BufWriter::new(io::stdout().lock());
    let result = if args.addrs.iter().any(|a| a == "-") {
        if args.addrs.len() > 1 || args.split.is_some() || args.mask.is_some() {
            anyhow::bail!("`-` reads every case from standard input; give the cases there");
        }
        batch(&args, io::stdin().lock(), &mut out)
    } else {
        let request = request::request(&args)?;
        answer(&request, args.json, &mut out)
            .map(|()| true)
            .map_err(Into::into)
    };
    match result.and_then(|ok| Ok(out.flush().map(|()| ok)?)) {
        Ok(true) => Ok(ExitCode::SUCCESS),
        Ok(false) => Ok(ExitCode::FAILURE),
        // `taojie ipcalc ... | head` is not an error.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Writes the answer to one request.
pub fn answer(request: &Request, json: bool, out: &mut impl Write) -> io::Result<()> {
    match (request, json) {
        (Request::Describe { net, zone }, false) => {
            human::describe(out, &calc::Summary::of(*net), zone.as_deref())
        }
        (Request::Describe { net, .. }, true) => json::describe(out, &calc::Summary::of(*net)),
        (Request::Compare(c), false) => human::compare(out, c),
        (Request::Compare(c), true) => json::compare(out, c),
        (Request::Split { input, split }, false) => human::split(out, *input, split),
        (Request::Split { split, .. }, true) => json::split(out, split),
    }
}

/// `taojie ipcalc -`: each non-blank line not starting with `#` is a case, answered in turn. A
/// bad case is reported (a `{"input","error"}` object with `--json`, else a line on standard
/// error) and the rest still run; the exit status says whether every case was answered.
pub fn batch(args: &IpcalcArgs, mut input: impl BufRead, out: &mut impl Write) -> Result<bool> {
    let mut all_ok = true;
    let mut answered = 0usize;
    let mut number = 0usize;
    while let Some(line) = next_line(&mut input)? {
        number += 1;
        let text = match &line {
            Ok(text) => text.trim(),
            Err(_) => "",
        };
        if line.is_ok() && (text.is_empty() || text.starts_with('#')) {
            continue;
        }
        let request = line.clone().map_err(anyhow::Error::msg).and_then(|_| {
            let mut case = line_args(text)?;
            case.limit = case.limit.or(args.limit);
            request::request(&case)
        });
        match request {
            Ok(request) => {
                if !args.json && answered > 0 {
                    writeln!(out)?;
                }
                answer(&request, args.json, out)?;
                answered += 1;
            }
            Err(e) if args.json => {
                all_ok = false;
                json::line(
                    out,
                    &json::Failure {
                        input: text,
                        error: format!("{e:#}"),
                    },
                )?;
            }
            Err(e) => {
                all_ok = false;
                out.flush()?;
                eprintln!("taojie: error: line {number}: {e:#}");
            }
        }
    }
    Ok(all_ok)
}

/// Reads one line of at most [`MAX_LINE`] bytes; `Ok(Err(why))` for a line too long or not
/// UTF-8 (the rest of it is skipped), `Ok(None)` at the end.
fn next_line(input: &mut impl BufRead) -> io::Result<Option<Result<String, String>>> {
    let mut buf = Vec::new();
    let n = Read::take(&mut *input, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
        // Skip to the end of the over-long line.
        while !buf.ends_with(b"\n") {
            buf.clear();
            if Read::take(&mut *input, MAX_LINE as u64).read_until(b'\n', &mut buf)? == 0 {
                break;
            }
        }
        return Ok(Some(Err(format!("a line longer than {MAX_LINE} bytes"))));
    }
    Ok(Some(
        String::from_utf8(buf).map_err(|_| "a line that is not UTF-8".to_string()),
    ))
}

/// One case's words read as `taojie ipcalc` arguments; clap's error cut to its first line.
fn line_args(text: &str) -> Result<IpcalcArgs> {
    let case = LineArgs::try_parse_from(text.split_whitespace()).map_err(|e| {
        let message = e.to_string();
        let first = message.lines().next().unwrap_or_default();
        anyhow::anyhow!("{}", first.trim_start_matches("error: "))
    })?;
    if case.args.addrs.iter().any(|a| a == "-") {
        anyhow::bail!("`-` cannot be a case of its own");
    }
    Ok(case.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_batch(input: &str, json: bool) -> (bool, String) {
        let args = IpcalcArgs {
            addrs: vec!["-".into()],
            mask: None,
            split: None,
            limit: None,
            json,
        };
        let mut out = Vec::new();
        let ok = batch(&args, input.as_bytes(), &mut out).unwrap();
        (ok, String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_batch_answers_every_line_and_reports_bad_ones() {
        let (ok, out) = run_batch(
            "10.0.0.1/8\n\n# comment\n300.1.1.1\n::1/127 --json\n--bogus\n",
            true,
        );
        assert!(!ok);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with(r#"{"address":"10.0.0.1","prefix":8,"#));
        assert_eq!(
            lines[1],
            r#"{"input":"300.1.1.1","error":"300.1.1.1 is not an IPv4 address: 300 is out of range (0-255)"}"#
        );
        assert!(lines[2].starts_with(r#"{"address":"::1","prefix":127,"#));
        assert!(
            lines[3].starts_with(r#"{"input":"--bogus","error":"unexpected argument '--bogus'"#),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn over_long_and_binary_lines_are_errors_of_their_own() {
        let long = "1".repeat(MAX_LINE * 3);
        let (ok, out) = run_batch(&format!("{long}\n10.0.0.1\n"), true);
        assert!(!ok);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].contains("longer than 4096 bytes"));
        assert!(lines[1].starts_with(r#"{"address":"10.0.0.1""#));
        let args = IpcalcArgs {
            addrs: vec!["-".into()],
            mask: None,
            split: None,
            limit: None,
            json: true,
        };
        let mut out = Vec::new();
        assert!(!batch(&args, &b"\xff\xfe\n"[..], &mut out).unwrap());
        assert!(String::from_utf8(out).unwrap().contains("not UTF-8"));
    }

    #[test]
    fn a_batch_limit_applies_to_every_line() {
        let args = IpcalcArgs {
            addrs: vec!["-".into()],
            mask: None,
            split: None,
            limit: Some(2),
            json: true,
        };
        let mut out = Vec::new();
        assert!(!batch(&args, &b"10.0.0.0/8 --split 10\n"[..], &mut out).unwrap());
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("more than --limit 2")
        );
    }
}
