//! Wormhole codes, `7-crossover-clockwork`: a nameplate (the number the mailbox server knows)
//! and words from the PGP word list, odd and even alternately. The whole code is the SPAKE2
//! password; only the nameplate is ever told to the server.
use super::words::{EVEN, ODD};

/// The most words a code may have (the Python client has no limit; 16 words is ~128 bits).
pub const MAX_WORDS: usize = 16;

/// A code as typed or generated: the nameplate and the rest.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    nameplate: String,
    whole: String,
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Code({}-MASKED)", self.nameplate)
    }
}

/// Why a typed code is not a code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    /// No digits before the first dash.
    #[error("a wormhole code starts with a number and a dash, like 7-crossover-clockwork")]
    NoNameplate,
    /// Nothing after the nameplate.
    #[error("the code has no words after its number")]
    NoWords,
    /// Too long, or characters no client would send.
    #[error("the code is too long or has characters other than letters, digits and dashes")]
    Malformed,
}

impl Code {
    /// Parses what a user typed: surrounding space trimmed, inner spaces read as dashes.
    pub fn parse(typed: &str) -> Result<Code, CodeError> {
        let whole = typed.split_whitespace().collect::<Vec<_>>().join("-");
        if whole.len() > 300
            || !whole
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(CodeError::Malformed);
        }
        let (nameplate, rest) = whole.split_once('-').ok_or(CodeError::NoNameplate)?;
        if nameplate.is_empty()
            || nameplate.len() > 9
            || !nameplate.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(CodeError::NoNameplate);
        }
        if rest.is_empty() || rest.split('-').any(str::is_empty) {
            return Err(CodeError::NoWords);
        }
        if rest.split('-').count() > MAX_WORDS {
            return Err(CodeError::Malformed);
        }
        Ok(Code {
            nameplate: nameplate.to_string(),
            whole,
        })
    }

    /// A new code on `nameplate` with `words` random words (odd list first).
    pub fn generate(nameplate: &str, words: usize) -> Code {
        let mut bytes = vec![0u8; words];
        getrandom::fill(&mut bytes).expect("the system's random source");
        let mut whole = nameplate.to_string();
        for (i, b) in bytes.iter().enumerate() {
            whole.push('-');
            whole.push_str(if i % 2 == 0 { ODD } else { EVEN }[*b as usize]);
        }
        Code {
            nameplate: nameplate.to_string(),
            whole,
        }
    }

    /// The nameplate: the part the mailbox server sees.
    pub fn nameplate(&self) -> &str {
        &self.nameplate
    }

    /// The whole code, the SPAKE2 password.
    pub fn as_str(&self) -> &str {
        &self.whole
    }
}

/// Completions of a partly typed code's last word, for a code of `words` words after the
/// nameplate: whole candidates, each ending in a dash when more words follow.
pub fn complete(prefix: &str, words: usize) -> Vec<String> {
    let Some((head, last)) = prefix.rsplit_once('-') else {
        return Vec::new();
    };
    // The word's place: 0 is the first word after the nameplate.
    let place = prefix.matches('-').count() - 1;
    if place >= words {
        return Vec::new();
    }
    let list = if place.is_multiple_of(2) { &ODD } else { &EVEN };
    let last = last.to_lowercase();
    let mut out: Vec<String> = list
        .iter()
        .filter(|w| w.starts_with(&last))
        .map(|w| {
            let dash = if place + 1 < words { "-" } else { "" };
            format!("{head}-{w}{dash}")
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typed_codes() {
        let c = Code::parse("  7-crossover-clockwork\n").unwrap();
        assert_eq!((c.nameplate(), c.as_str()), ("7", "7-crossover-clockwork"));
        assert_eq!(
            Code::parse("7 crossover clockwork").unwrap().as_str(),
            "7-crossover-clockwork"
        );
    }

    #[test]
    fn refuses_what_is_not_a_code() {
        for (typed, err) in [
            ("crossover-clockwork", CodeError::NoNameplate),
            ("-a-b", CodeError::NoNameplate),
            ("x7-a", CodeError::NoNameplate),
            ("7", CodeError::NoNameplate),
            ("7-", CodeError::NoWords),
            ("7--a", CodeError::NoWords),
            ("7-a/b", CodeError::Malformed),
            ("7-a;rm", CodeError::Malformed),
        ] {
            assert_eq!(Code::parse(typed), Err(err), "{typed}");
        }
    }

    #[test]
    fn generated_codes_alternate_odd_and_even_words() {
        let c = Code::generate("42", 4);
        let words: Vec<&str> = c.as_str().split('-').collect();
        assert_eq!(words[0], "42");
        assert_eq!(words.len(), 5);
        for (i, w) in words[1..].iter().enumerate() {
            let list = if i % 2 == 0 { &ODD } else { &EVEN };
            assert!(list.contains(w), "{w} at {i}");
        }
        assert_eq!(Code::parse(c.as_str()).unwrap(), c);
    }

    #[test]
    fn completes_from_the_right_list() {
        // "crossover" is three syllables (odd list), "clockwork" two (even).
        assert_eq!(complete("7-crosso", 2), vec!["7-crossover-"]);
        assert_eq!(
            complete("7-crossover-clockw", 2),
            vec!["7-crossover-clockwork"]
        );
        assert!(complete("7-crossover-clockwork-x", 2).is_empty());
        assert_eq!(complete("7-", 2).len(), 256);
        assert!(complete("7", 2).is_empty());
    }

    #[test]
    fn the_lists_are_the_pgp_words() {
        assert_eq!((EVEN[0], ODD[0]), ("aardvark", "adroitness"));
        assert_eq!((EVEN[255], ODD[255]), ("zulu", "yucatan"));
    }
}
