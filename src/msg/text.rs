//! Text on an IP Messenger LAN: UTF-8 or GBK, chosen per peer as real peers do, and made safe
//! to show on a terminal.
//!
//! A packet with UTF8OPT is UTF-8. Otherwise the peer's encoding is the one it declared in
//! its entry (iptux writes `utf-8` in the entry's fourth NUL field), else the one learned from
//! its first non-ASCII text (valid UTF-8 is taken as UTF-8, anything else as GBK), else GBK,
//! the encoding of Feiq and of the seed. Sending uses one encoding per peer, the same way.
use encoding_rs::{GBK, UTF_8};

/// The two encodings found on Chinese IP Messenger LANs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 (iptux, IP Messenger with UTF8OPT).
    Utf8,
    /// GBK, decoded as its superset GB 18030 (Feiq, the seed).
    Gbk,
}

impl Encoding {
    /// The encoding a peer declares by name (`utf-8`, `gbk`, `gb2312`, `gb18030`, …), if
    /// taojie knows it.
    pub fn from_label(label: &[u8]) -> Option<Encoding> {
        let enc = encoding_rs::Encoding::for_label(label.trim_ascii())?;
        if enc == UTF_8 {
            Some(Encoding::Utf8)
        } else if enc == GBK || enc == encoding_rs::GB18030 {
            Some(Encoding::Gbk)
        } else {
            None
        }
    }

    /// The encoding `bytes` appear to be in; `None` for pure ASCII, which says nothing.
    pub fn guess(bytes: &[u8]) -> Option<Encoding> {
        if bytes.is_ascii() {
            None
        } else if std::str::from_utf8(bytes).is_ok() {
            Some(Encoding::Utf8)
        } else {
            Some(Encoding::Gbk)
        }
    }

    /// Decodes `bytes`; what does not decode becomes U+FFFD.
    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Gbk => GBK.decode_without_bom_handling(bytes).0.into_owned(),
        }
    }

    /// Encodes `text`; characters GBK lacks become numeric references (`&#…;`), as
    /// encoding_rs does for every legacy encoding.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Encoding::Utf8 => text.as_bytes().to_vec(),
            Encoding::Gbk => GBK.encode(text).0.into_owned(),
        }
    }
}

/// Makes text from the network safe for a terminal: line breaks are kept (a message may have
/// several lines), every other control character and escape is shown as `^X`, so no peer can
/// move the cursor, change colours or set the window title.
pub fn neutralise(text: &str) -> String {
    text.replace("\r\n", "\n")
        .split('\n')
        .map(|line| crate::tty::sanitize(line.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A name from the network on one line: controls shown as `^X`, line breaks too.
pub fn neutralise_name(name: &str) -> String {
    crate::tty::sanitize(name.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn gbk_and_utf8_round_trip_and_guess() {
        let gbk = Encoding::Gbk.encode("名字");
        assert_eq!(gbk, [0xc3, 0xfb, 0xd7, 0xd6]);
        assert_eq!(Encoding::guess(&gbk), Some(Encoding::Gbk));
        assert_eq!(Encoding::Gbk.decode(&gbk), "名字");
        assert_eq!(Encoding::guess("你好".as_bytes()), Some(Encoding::Utf8));
        assert_eq!(Encoding::guess(b"hello"), None);
        assert_eq!(Encoding::from_label(b"utf-8"), Some(Encoding::Utf8));
        assert_eq!(Encoding::from_label(b"GB2312"), Some(Encoding::Gbk));
        assert_eq!(Encoding::from_label(b"shift_jis"), None);
    }

    #[test]
    fn escapes_never_reach_the_terminal() {
        assert_eq!(neutralise("a\x1b]0;pwned\x07\r\nb"), "a^[]0;pwned^G\nb");
        assert_eq!(neutralise_name("x\ny"), "x^Jy");
    }

    proptest! {
        #[test]
        fn decoded_and_neutralised_text_has_no_controls(
            raw in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            for enc in [Encoding::Utf8, Encoding::Gbk] {
                let shown = neutralise(&enc.decode(&raw));
                prop_assert!(!shown.chars().any(|c| c.is_control() && c != '\t' && c != '\n'));
            }
        }
    }
}
