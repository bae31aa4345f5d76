//! `--json`: one object per result, one per line (each subnet of a split is a result).
use std::io::{self, Write};

use serde::Serialize;

use super::calc::Summary;
use super::compare::Comparison;
use super::split::Split;

/// One address or network.
pub fn describe(out: &mut impl Write, summary: &Summary) -> io::Result<()> {
    line(out, summary)
}

/// Two addresses: the first one's summary with `same_subnet`, `other`, `other_network`.
pub fn compare(out: &mut impl Write, comparison: &Comparison) -> io::Result<()> {
    line(out, &comparison.json())
}

/// Every subnet of a split, each summarised as a network of its own.
pub fn split(out: &mut impl Write, split: &Split) -> io::Result<()> {
    split
        .subnets()
        .try_for_each(|net| line(out, &Summary::of(net)))
}

/// A case of `taojie ipcalc -` that could not be answered.
#[derive(Serialize)]
pub struct Failure<'a> {
    /// The line as read.
    pub input: &'a str,
    /// Why it failed.
    pub error: String,
}

/// Writes `value` as JSON and a newline.
pub fn line(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}
