//! The transport ciphers a finished Noise handshake leaves: one AES-256-GCM key per direction,
//! used as Noise's CipherState uses it (the record counter as the nonce: four zero bytes, then
//! the counter as 8 big-endian bytes; no associated data), so the records on the wire are
//! exactly Noise transport messages.
//!
//! snow's `TransportState` seals and opens only from one buffer into another, so every record
//! costs a copy, and its destination has to be initialised memory (a zeroing per record for a
//! reader's fresh buffer). Taking the two keys after the handshake and sealing and opening in
//! place with ring (the cipher snow itself uses here) saves both.
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// The authentication tag of every record.
pub const TAG: usize = 16;
/// Largest Noise message, tag included: the largest record.
pub const MAX_RECORD: usize = 65_535;
/// Largest plaintext in one record.
pub const MAX_PLAIN: usize = MAX_RECORD - TAG;

/// Why a record could not be sealed or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    /// The record failed authentication.
    #[error("a record failed authentication (changed, dropped, replayed or reordered on the way)")]
    Forged,
    /// The record is shorter than its tag.
    #[error("a record shorter than its tag")]
    Short,
    /// 2^64 - 1 records went one way (Noise reserves the last nonce).
    #[error("the connection's record counter is used up")]
    Exhausted,
}

/// One direction's key and record counter.
struct Direction {
    key: LessSafeKey,
    next: u64,
}

impl Direction {
    fn new(raw: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, raw).expect("a 32-byte AES-256 key");
        Direction {
            key: LessSafeKey::new(key),
            next: 0,
        }
    }

    /// The nonce for the next record, counted.
    fn nonce(&mut self) -> Result<Nonce, CipherError> {
        if self.next == u64::MAX {
            return Err(CipherError::Exhausted);
        }
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&self.next.to_be_bytes());
        self.next += 1;
        Ok(Nonce::assume_unique_for_key(bytes))
    }
}

/// Seals the records one side sends.
pub struct Sealer(Direction);

impl Sealer {
    /// Seals `record` in place: its first `len - TAG` bytes are the plaintext, the last
    /// [`TAG`] bytes receive the tag.
    pub fn seal(&mut self, record: &mut [u8]) -> Result<(), CipherError> {
        let plain_len = record.len().checked_sub(TAG).ok_or(CipherError::Short)?;
        let nonce = self.0.nonce()?;
        let (plain, tag) = record.split_at_mut(plain_len);
        let sealed = self
            .0
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), plain)
            .map_err(|_| CipherError::Exhausted)?;
        tag.copy_from_slice(sealed.as_ref());
        Ok(())
    }
}

/// Opens the records one side receives.
pub struct Opener(Direction);

impl Opener {
    /// Opens `record` (ciphertext and tag) in place and returns the plaintext's length; on
    /// an error what is in `record` must not be used.
    pub fn open(&mut self, record: &mut [u8]) -> Result<usize, CipherError> {
        self.open_within(record, 0)
    }

    /// Opens the record at `area[from..]` (ciphertext and tag) and writes its plaintext to
    /// the front of `area` (the cipher moves it as it decrypts: no separate copy); returns the
    /// plaintext's length. On an error nothing in `area` may be used.
    pub fn open_within(&mut self, area: &mut [u8], from: usize) -> Result<usize, CipherError> {
        if area.len() < from + TAG {
            return Err(CipherError::Short);
        }
        let nonce = self.0.nonce()?;
        self.0
            .key
            .open_within(nonce, Aad::empty(), area, from..)
            .map(|plain| plain.len())
            .map_err(|_| CipherError::Forged)
    }
}

/// The two ciphers of a finished handshake, ours to send with and the peer's to open.
pub fn split(hs: &mut snow::HandshakeState) -> (Sealer, Opener) {
    let (to_responder, to_initiator) = hs.dangerously_get_raw_split();
    let (send, recv) = if hs.is_initiator() {
        (to_responder, to_initiator)
    } else {
        (to_initiator, to_responder)
    };
    (Sealer(Direction::new(&send)), Opener(Direction::new(&recv)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Both sides of a finished NN-with-PSK handshake (the shared-key pattern), before split.
    pub(crate) fn handshake_pair() -> (snow::HandshakeState, snow::HandshakeState) {
        let psk = [9u8; 32];
        let p: snow::params::NoiseParams = crate::secure::PATTERN_PSK.parse().unwrap();
        let build = snow::Builder::new(p.clone()).psk(0, &psk).unwrap();
        let mut i = build.build_initiator().unwrap();
        let mut r = snow::Builder::new(p)
            .psk(0, &psk)
            .unwrap()
            .build_responder()
            .unwrap();
        let (mut m, mut o) = ([0u8; 256], [0u8; 256]);
        let n = i.write_message(&[], &mut m).unwrap();
        r.read_message(&m[..n], &mut o).unwrap();
        let n = r.write_message(&[], &mut m).unwrap();
        i.read_message(&m[..n], &mut o).unwrap();
        (i, r)
    }

    /// Sealer and opener of each side: (initiator's, responder's).
    pub(crate) fn cipher_pair() -> ((Sealer, Opener), (Sealer, Opener)) {
        let (mut i, mut r) = handshake_pair();
        (split(&mut i), split(&mut r))
    }

    fn sealed(sealer: &mut Sealer, plain: &[u8]) -> Vec<u8> {
        let mut record = [plain, &[0u8; TAG]].concat();
        sealer.seal(&mut record).unwrap();
        record
    }

    #[test]
    fn records_are_noise_transport_messages_both_ways() {
        // snow's own transport state on one side, ours on the other: the same bytes.
        let (mut i, r) = handshake_pair();
        let (mut our_send, mut our_recv) = split(&mut i);
        let mut theirs = r.into_transport_mode().unwrap();
        let mut out = [0u8; 64];
        for msg in [&b"first"[..], b"", b"third record"] {
            let record = sealed(&mut our_send, msg);
            let n = theirs.read_message(&record, &mut out).unwrap();
            assert_eq!(&out[..n], msg);
            let mut back = vec![0u8; msg.len() + TAG];
            theirs.write_message(msg, &mut back).unwrap();
            let n = our_recv.open(&mut back).unwrap();
            assert_eq!(&back[..n], msg);
        }
    }

    #[test]
    fn a_changed_replayed_or_short_record_is_refused() {
        let ((mut send, _), (_, mut recv)) = cipher_pair();
        let first = sealed(&mut send, b"one");
        let mut flipped = sealed(&mut send, b"two");
        flipped[1] ^= 1;
        assert_eq!(recv.open(&mut first.clone()), Ok(3));
        assert_eq!(recv.open(&mut flipped), Err(CipherError::Forged));
        // The first again, where the third is due.
        let ((mut send, _), (_, mut recv)) = cipher_pair();
        let first = sealed(&mut send, b"one");
        assert_eq!(recv.open(&mut first.clone()), Ok(3));
        assert_eq!(recv.open(&mut first.clone()), Err(CipherError::Forged));
        assert_eq!(recv.open(&mut [0u8; 5]), Err(CipherError::Short));
    }

    #[test]
    fn a_record_opens_to_the_front_of_its_area() {
        let ((mut send, _), (_, mut recv)) = cipher_pair();
        let record = sealed(&mut send, b"moved left");
        let mut area = [b"xyz".as_slice(), &record].concat();
        assert_eq!(recv.open_within(&mut area, 3), Ok(10));
        assert_eq!(&area[..10], b"moved left");
        let mut flipped = [b"xyz".as_slice(), &sealed(&mut send, b"two")].concat();
        flipped[4] ^= 1;
        assert_eq!(recv.open_within(&mut flipped, 3), Err(CipherError::Forged));
    }
}
