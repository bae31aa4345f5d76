//! The bytes the load generator sends and the answers it expects back.
//!
//! Payloads are lowercase letters (and, over UDP, a hex sequence number first): no whitespace,
//! so servers that strip or upper-case text, like the seeds', echo them sanely, and a rotating
//! start letter per request makes a reordered or shifted answer fail verification.

/// Length of the hex sequence number that starts each UDP payload.
pub const SEQ_LEN: usize = 16;

/// The message and answer patterns for one message size.
#[derive(Debug, Clone)]
pub struct Pattern {
    size: usize,
    sent: Vec<u8>,
    expected: Vec<u8>,
}

impl Pattern {
    /// Patterns for `size`-byte messages; answers are expected upper-cased when `upper`.
    pub fn new(size: usize, upper: bool) -> Self {
        let sent: Vec<u8> = (0..size + 26).map(|i| b'a' + (i % 26) as u8).collect();
        let expected = if upper {
            sent.to_ascii_uppercase()
        } else {
            sent.clone()
        };
        Pattern {
            size,
            sent,
            expected,
        }
    }

    /// Message size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The stream message for request `seq`.
    pub fn message(&self, seq: u64) -> &[u8] {
        let off = (seq % 26) as usize;
        &self.sent[off..off + self.size]
    }

    /// The answer expected for stream request `seq`.
    pub fn answer(&self, seq: u64) -> &[u8] {
        let off = (seq % 26) as usize;
        &self.expected[off..off + self.size]
    }

    /// Writes the datagram for request `seq` (hex sequence number, then letters) into `out`.
    pub fn datagram(&self, seq: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(format!("{seq:016x}").as_bytes());
        out.extend_from_slice(&self.message(seq)[SEQ_LEN..]);
    }

    /// Checks a datagram answer: returns its sequence number if it is exactly the expected
    /// answer to that request.
    pub fn check_datagram(&self, answer: &[u8], upper: bool) -> Option<u64> {
        if answer.len() != self.size {
            return None;
        }
        let seq = u64::from_str_radix(std::str::from_utf8(&answer[..SEQ_LEN]).ok()?, 16).ok()?;
        let mut hex = format!("{seq:016x}").into_bytes();
        if upper {
            hex.make_ascii_uppercase();
        }
        let ok = answer[..SEQ_LEN] == hex[..] && answer[SEQ_LEN..] == self.answer(seq)[SEQ_LEN..];
        ok.then_some(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_answers_match_upper_cased_messages() {
        let p = Pattern::new(64, true);
        for seq in [0, 1, 25, 26, 1000] {
            assert_eq!(p.message(seq).to_ascii_uppercase(), p.answer(seq));
            assert_ne!(p.message(seq), p.message(seq + 1));
        }
    }

    #[test]
    fn datagrams_round_trip_and_reject_changes() {
        for upper in [false, true] {
            let p = Pattern::new(40, upper);
            let mut d = Vec::new();
            p.datagram(12345, &mut d);
            let mut answer = if upper {
                d.to_ascii_uppercase()
            } else {
                d.clone()
            };
            assert_eq!(p.check_datagram(&answer, upper), Some(12345));
            answer[30] ^= 1;
            assert_eq!(p.check_datagram(&answer, upper), None);
            assert_eq!(p.check_datagram(&answer[..39], upper), None);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_answer_checks_without_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let p = Pattern::new(40, false);
            if let Some(seq) = p.check_datagram(&data, false) {
                let mut d = Vec::new();
                p.datagram(seq, &mut d);
                proptest::prop_assert_eq!(d, data);
            }
        }
    }
}
