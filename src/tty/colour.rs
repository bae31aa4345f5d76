//! A stable colour per name on a terminal (the seeds' QQ server kept a name → colour table;
//! here the colour comes from a hash of the name, so every name has one without a table).

/// ANSI foreground colours that read on both dark and light backgrounds.
const PALETTE: [u8; 12] = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/// The ANSI colour code of `name`: always the same for the same name.
pub fn of(name: &str) -> u8 {
    // FNV-1a: tiny, and stable across runs and builds (unlike std's RandomState).
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    PALETTE[h as usize % PALETTE.len()]
}

/// Colours the name in a broker or hub line: `<name> text`, `* name action`, `name: text`;
/// `*** notices` are dimmed, and so is the time in front of a line of history (`[14:03] `).
/// Other lines come back unchanged.
pub fn paint(line: &str) -> String {
    let paint_name = |pre: &str, name: &str, post: &str, rest: &str| {
        format!("{pre}\x1b[{}m{name}\x1b[0m{post}{rest}", of(name))
    };
    if let Some(rest) = line.strip_prefix('[')
        && let Some((time, said)) = rest.split_once("] ")
        && !time.is_empty()
        && time.len() <= 20
        && time
            .bytes()
            .all(|b| b.is_ascii_digit() || b" :-TZ".contains(&b))
    {
        return format!("\x1b[2m[{time}]\x1b[0m {}", paint(said));
    }
    if line.starts_with("***") {
        return format!("\x1b[2m{line}\x1b[0m");
    }
    if let Some(rest) = line.strip_prefix('<')
        && let Some((name, text)) = rest.split_once("> ")
    {
        return paint_name("<", name, "> ", text);
    }
    if let Some(rest) = line.strip_prefix("* ")
        && let Some((name, text)) = rest.split_once(' ')
    {
        return paint_name("* ", name, " ", text);
    }
    if let Some((name, text)) = line.split_once(": ")
        && !name.is_empty()
        && !name.contains(' ')
    {
        return paint_name("", name, ": ", text);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_colour_and_names_painted() {
        assert_eq!(of("alice"), of("alice"));
        let c = of("bob");
        assert_eq!(paint("<bob> hi"), format!("<\x1b[{c}mbob\x1b[0m> hi"));
        assert_eq!(paint("bob: hi"), format!("\x1b[{c}mbob\x1b[0m: hi"));
        assert!(paint("*** x").starts_with("\x1b[2m"));
        assert_eq!(
            paint("[14:03] <bob> hi"),
            format!("\x1b[2m[14:03]\x1b[0m <\x1b[{c}mbob\x1b[0m> hi")
        );
        assert_eq!(paint("plain"), "plain");
    }
}
