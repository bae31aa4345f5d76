//! The wormhole's keys: SPAKE2 on the code (Ed25519 group, symmetric, the application id as
//! the identity, as the Python client has it), HKDF-SHA256 derivations of the shared key
//! (per-phase message keys, the verifier, the transit key) and NaCl secretbox messages.
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};

/// Bytes of a secretbox nonce, sent in front of every encrypted message.
pub const NONCE_LEN: usize = 24;
/// Bytes of a secretbox authentication tag.
pub const TAG_LEN: usize = 16;

/// A 32-byte key: the SPAKE2 result or anything derived from it. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(MASKED)")
    }
}

/// HKDF-SHA256 of `key` with no salt and `purpose` as the info, `N` bytes long.
pub fn hkdf<const N: usize>(key: &[u8], purpose: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    Hkdf::<Sha256>::new(None, key)
        .expand(purpose, &mut out)
        .expect("N is far below HKDF-SHA256's 8160-byte limit");
    out
}

impl Key {
    /// The key derived for `purpose` (e.g. `APPID/transit-key`).
    pub fn derive(&self, purpose: &[u8]) -> Key {
        Key(hkdf(&self.0, purpose))
    }

    /// The key of the message `side` sends in `phase`: the purpose is
    /// `wormhole:phase:` + SHA-256(side) + SHA-256(phase).
    pub fn phase_key(&self, side: &str, phase: &str) -> Key {
        let mut purpose = b"wormhole:phase:".to_vec();
        purpose.extend_from_slice(&Sha256::digest(side.as_bytes()));
        purpose.extend_from_slice(&Sha256::digest(phase.as_bytes()));
        self.derive(&purpose)
    }

    /// The verifier both sides can show their users: equal exactly when the keys are.
    pub fn verifier(&self) -> [u8; 32] {
        hkdf(&self.0, b"wormhole:verifier")
    }
}

/// One side of the SPAKE2 exchange, between sending our message and reading the peer's.
pub struct Pake(Spake2<Ed25519Group>);

impl Pake {
    /// Starts the exchange on `code` (the whole code, nameplate included) for `appid`;
    /// returns the state and the message to send in the `pake` phase.
    pub fn start(code: &str, appid: &str) -> (Pake, Vec<u8>) {
        let (state, msg) = Spake2::<Ed25519Group>::start_symmetric(
            &Password::new(code.as_bytes()),
            &Identity::new(appid.as_bytes()),
        );
        (Pake(state), msg)
    }

    /// The shared key from the peer's message; `None` if it is malformed. (A peer that typed
    /// another code gives a key that merely differs: the first message it encrypts fails.)
    pub fn finish(self, peer_msg: &[u8]) -> Option<Key> {
        let key = self.0.finish(peer_msg).ok()?;
        Some(Key(key.try_into().ok()?))
    }
}

/// Encrypts `plaintext` with a random nonce: nonce, then tag and ciphertext.
pub fn seal(key: &Key, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).expect("the system's random source");
    let boxed = XSalsa20Poly1305::new(&key.0.into())
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .expect("secretbox takes any length that fits in memory");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&boxed);
    out
}

/// Opens what [`seal`] made; `None` if it was not sealed with `key` or was altered.
pub fn open(key: &Key, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, boxed) = sealed.split_at(NONCE_LEN);
    XSalsa20Poly1305::new(&key.0.into())
        .decrypt(Nonce::from_slice(nonce), boxed)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // Vectors computed with the Python client's own functions (wormhole._key.derive_key,
    // derive_phase_key, wormhole.transit.build_sender_handshake) on the key 32 x 0x01.
    const K: Key = Key([1u8; 32]);

    #[test]
    fn phase_key_matches_the_python_client() {
        assert_eq!(
            hex(&K.phase_key("side1", "version").0),
            "69b843a990c4a85ad137edc3c15c15db133b84357f9b22bdef729d14c33fb542"
        );
    }

    #[test]
    fn derive_and_verifier_match_the_python_client() {
        assert_eq!(
            hex(&K
                .derive(b"lothar.com/wormhole/text-or-file-xfer/transit-key")
                .0),
            "a835ff7729f08ab89155ee897cf39aa0fa31f8b748cb84120dc22465ccaac501"
        );
        assert_eq!(
            hex(&K.verifier()),
            "4239cea76faed46dcf932584ec7eb554eb6b140e5ae30bdd8cbc48ebb3656b84"
        );
    }

    #[test]
    fn two_sides_with_one_code_agree_and_seal_opens() {
        let (a, ma) = Pake::start("4-purple-sausages", "appid");
        let (b, mb) = Pake::start("4-purple-sausages", "appid");
        let (ka, kb) = (a.finish(&mb).unwrap(), b.finish(&ma).unwrap());
        assert_eq!(ka, kb);
        let sealed = seal(&ka, b"hello");
        assert_eq!(open(&kb, &sealed).unwrap(), b"hello");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(open(&kb, &bad).is_none());
        assert!(open(&kb, &sealed[..10]).is_none());
    }

    #[test]
    fn different_codes_give_different_keys() {
        let (a, ma) = Pake::start("4-purple-sausages", "appid");
        let (b, mb) = Pake::start("4-purple-sausagez", "appid");
        assert_ne!(a.finish(&mb).unwrap(), b.finish(&ma).unwrap());
    }

    #[test]
    fn malformed_peer_message_is_refused() {
        let (a, _) = Pake::start("1-a-b", "appid");
        assert!(a.finish(b"short").is_none());
    }
}
