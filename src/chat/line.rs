//! What a chat line and a chat name may be: the default longest line, and names (valid,
//! and unique by their look-alike keys). Lines are split by [`crate::framing::lines`] and
//! shown through [`crate::tty::sanitize()`].

/// Default longest line a client may send, in bytes (the newline not counted).
pub const DEFAULT_MAX_LINE: usize = 1024;

/// Longest nickname or room name, in characters.
pub const MAX_NAME: usize = 32;

/// The keys a name is unique by: its confusable skeleton (Unicode TS #39) with case folded,
/// folding first and skeleton first (a capital `I` looks like `l`, its lower case does not),
/// so `аlice` with a Cyrillic `а`, `ALICE` and `aIice` all collide with `alice`, while names
/// in any script stay welcome. Two names clash when any of their keys are equal.
pub fn name_keys(name: &str) -> Vec<String> {
    use unicode_security::confusable_detection::skeleton;
    // `İ` folds to `i` and a combining dot, which looks like `i` alone.
    let undot = |s: String| s.replace("i\u{307}", "i").replace("j\u{307}", "j");
    let folded_first: String = undot(skeleton(&undot(name.to_lowercase())).collect());
    let skeleton_first = undot(skeleton(name).collect::<String>().to_lowercase());
    let skeleton_first: String = undot(skeleton(&skeleton_first).collect());
    if folded_first == skeleton_first {
        vec![folded_first]
    } else {
        vec![folded_first, skeleton_first]
    }
}

/// Checks a nickname or room name: 1 to [`MAX_NAME`] letters, digits or `_-.`, so names can
/// never pose as another line's `<name>` or `***` notice. Letters and digits must be ones
/// Unicode recommends for identifiers (UTS #39's General Security Profile): no invisible
/// ones (U+3164 HANGUL FILLER), none that are another letter with a mark (`ŀ`, `l·` in
/// disguise), no small capitals (`ʟ`), no historic or technical ones.
pub fn valid_name(name: &str) -> Result<(), String> {
    use unicode_security::GeneralSecurityProfile;
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(format!("names are 1 to {MAX_NAME} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !("_-.".contains(c) || (c.is_alphanumeric() && c.identifier_allowed())))
    {
        let shown = if c.is_ascii_graphic() {
            format!("{c:?}")
        } else {
            format!("U+{:04X}", u32::from(c))
        };
        return Err(format!(
            "{shown} is not allowed in names (letters and digits fit for names, _ - .)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_alike_share_a_key() {
        let clash = |a: &str, b: &str| name_keys(a).iter().any(|k| name_keys(b).contains(k));
        assert!(clash("alice", "\u{430}lice"));
        assert!(clash("alice", "ALICE"));
        assert!(clash("alice", "aIice"));
        assert!(clash("paypal", "paypa1"));
        assert!(!clash("alice", "bob"));
        assert!(!clash("小明", "小红"));
    }

    #[test]
    fn names() {
        assert!(valid_name("alice_2").is_ok());
        assert!(valid_name("小红").is_ok());
        assert!(valid_name("").is_err());
        assert!(valid_name("<bob>").is_err());
        assert!(valid_name(&"x".repeat(33)).is_err());
        for ok in [
            "金老板",
            "аlice",
            "José",
            "Ærø",
            "ŁódźBob",
            "İstanbul",
            "Σωκράτης",
            "علي",
        ] {
            assert!(valid_name(ok).is_ok(), "{ok}");
        }
        // Invisible letters, small capitals, an l with a middle dot.
        for bad in [
            "\u{3164}",
            "a\u{3164}",
            "\u{115f}bob",
            "\u{ffa0}",
            "aʟice",
            "aŀice",
        ] {
            let e = valid_name(bad).unwrap_err();
            assert!(e.contains("U+"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_dotted_capital_i_looks_like_an_i() {
        let clash = |a: &str, b: &str| name_keys(a).iter().any(|k| name_keys(b).contains(k));
        assert!(clash("alice", "alİce"));
        assert!(clash("ALICE", "alİce"));
        assert!(!clash("alice", "alce"));
    }
}
