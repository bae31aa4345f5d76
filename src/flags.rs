//! Value parsers for flags and configuration keys (a key of `serve --config` goes through the
//! flag's parser), shared by every command. Numbers are checked when they are parsed, with the
//! allowed range in the message, so no later conversion (`Duration::from_secs_f64`, a cast)
//! meets NaN, infinity, a negative number or one too large for it.
//!
//! Ground floor: this module imports nothing from the rest of the crate.

/// The longest number of seconds any flag takes: about 31 years, far beyond any timeout a
/// person means, and far inside what a `Duration` holds.
pub const MAX_SECS: f64 = 1e9;

/// The highest rate (events a second) any flag takes.
pub const MAX_RATE: f64 = 1e9;

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A number of seconds from 0 to [`MAX_SECS`] (0 often means "never"; the flag says).
pub fn secs(s: &str) -> Result<f64, String> {
    match number(s) {
        Some(v) if (0.0..=MAX_SECS).contains(&v) => Ok(v),
        _ => Err("expected seconds from 0 to 1000000000 (about 31 years)".into()),
    }
}

/// A number of seconds above 0, at most [`MAX_SECS`].
pub fn positive_secs(s: &str) -> Result<f64, String> {
    match number(s) {
        Some(v) if v > 0.0 && v <= MAX_SECS => Ok(v),
        _ => Err("expected seconds above 0, at most 1000000000 (about 31 years)".into()),
    }
}

/// A rate (events a second) from 0 to [`MAX_RATE`] (0 often means "no limit"; the flag says).
pub fn rate(s: &str) -> Result<f64, String> {
    match number(s) {
        Some(v) if (0.0..=MAX_RATE).contains(&v) => Ok(v),
        _ => Err("expected a rate from 0 to 1000000000 a second".into()),
    }
}

const SIZE: &str = "expected a size in bytes such as 4096, 512K, 100M or 2G (at most 2^62)";

/// A size in bytes: a whole number, optionally with a binary suffix `K`, `M`, `G` or `T`
/// (KiB, MiB, GiB, TiB; `KiB`, `MB`… are read the same), at most 2^62.
pub fn bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(SIZE.into()),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .filter(|&n| n <= 1 << 62)
        .ok_or_else(|| SIZE.into())
}

/// For `#[command(mut_args(in_place(ID, F)))]` on a command that flattens a shared group of
/// flags: changes the flag `id` with `f` (its help text, its default) where it stands.
/// (`Command::mut_arg` would move the flag to the end of the command's list, and with it its
/// place in completion scripts.)
pub fn in_place(
    id: &'static str,
    f: impl Fn(clap::Arg) -> clap::Arg,
) -> impl FnMut(clap::Arg) -> clap::Arg {
    move |arg| match arg.get_id() == id {
        true => f(arg),
        false => arg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_outside_the_range_are_refused_with_it() {
        for bad in ["1e20", "inf", "-inf", "nan", "NaN", "-1", "x", "", "1e9.5"] {
            let e = secs(bad).unwrap_err();
            assert!(e.contains("from 0 to 1000000000"), "{bad}: {e}");
            assert!(positive_secs(bad).is_err(), "{bad}");
            assert!(rate(bad).is_err(), "{bad}");
        }
        assert_eq!(secs("0"), Ok(0.0));
        assert_eq!(secs("1e9"), Ok(1e9));
        assert_eq!(secs(" 2.5"), Ok(2.5));
        assert!(positive_secs("0").is_err());
        assert_eq!(positive_secs("0.001"), Ok(0.001));
        assert_eq!(rate("0"), Ok(0.0));
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(bytes("0"), Ok(0));
        assert_eq!(bytes("512K"), Ok(512 << 10));
        assert_eq!(bytes("100M"), Ok(100 << 20));
        assert_eq!(bytes("2gib"), Ok(2 << 30));
        assert_eq!(bytes("1 G"), Ok(1 << 30));
        for bad in [
            "",
            "1.5M",
            "-1",
            "1P",
            "99999999999999999999",
            "5000000T",
            "M",
        ] {
            assert!(bytes(bad).is_err(), "{bad}");
        }
    }
}
