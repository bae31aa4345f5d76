//! Addresses written out digit by digit, the way seed 002 explains a netmask: IPv4 as 32 binary
//! digits in dotted octets, IPv6 as 32 hexadecimal digits in colon groups (128 binary digits do
//! not fit a line; each hex digit is four bits).
use std::net::IpAddr;

/// `172.16.10.1` → `10101100.00010000.00001010.00000001`; IPv6 → `2001:0db8:0000:…` (all digits).
pub fn digits(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a
            .octets()
            .iter()
            .map(|o| format!("{o:08b}"))
            .collect::<Vec<_>>()
            .join("."),
        IpAddr::V6(a) => a
            .segments()
            .iter()
            .map(|g| format!("{g:04x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// A line of `^` under the places where two equally long digit strings differ (trailing blanks
/// trimmed); empty when they are equal.
pub fn carets(a: &str, b: &str) -> String {
    let line: String = a
        .chars()
        .zip(b.chars())
        .map(|(x, y)| if x == y { ' ' } else { '^' })
        .collect();
    line.trim_end().to_string()
}

/// User text as it may appear in an error line: as typed when it is plain printable ASCII,
/// quoted and escaped otherwise (so a control character cannot reach the terminal).
pub fn shown(text: &str) -> String {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic()) {
        text.to_string()
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_example_in_binary() {
        let a: IpAddr = "172.16.10.1".parse().unwrap();
        assert_eq!(digits(a), "10101100.00010000.00001010.00000001");
        let m: IpAddr = "255.255.255.0".parse().unwrap();
        assert_eq!(digits(m), "11111111.11111111.11111111.00000000");
    }

    #[test]
    fn ipv6_in_full_hex_groups() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(digits(a), "2001:0db8:0000:0000:0000:0000:0000:0001");
    }

    #[test]
    fn carets_mark_differences() {
        assert_eq!(carets("1010.0000", "1010.0100"), "      ^");
        assert_eq!(carets("11", "11"), "");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown("1.2.3.4"), "1.2.3.4");
        assert_eq!(shown("1.2\x1b[31m"), "\"1.2\\u{1b}[31m\"");
        assert_eq!(shown(""), "\"\"");
    }
}
