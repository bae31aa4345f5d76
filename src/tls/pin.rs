//! Key pins: `sha256:BASE64`, the SHA-256 of a certificate's SubjectPublicKeyInfo (the form
//! curl's `--pinnedpubkey sha256//BASE64` and HPKP use), so a pin survives a certificate
//! renewed with the same key. Also the certificate's own SHA-256 fingerprint as OpenSSL
//! prints it, for people comparing by eye.
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

/// A pinned key: the SHA-256 of a SubjectPublicKeyInfo.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The pin of the key in `cert` (DER), or `None` if the certificate does not parse.
    pub fn of_cert(cert: &[u8]) -> Option<Pin> {
        let cert = x509_cert::Certificate::from_der(cert).ok()?;
        let spki = cert.tbs_certificate.subject_public_key_info.to_der().ok()?;
        Some(Pin(Sha256::digest(&spki).into()))
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Pin {
    type Err = String;

    /// `sha256:BASE64` (padded or not; curl's `sha256//` prefix too).
    fn from_str(s: &str) -> Result<Pin, String> {
        let b64 = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("sha256//"))
            .ok_or_else(|| format!("{s:?}: a pin is sha256:BASE64 (the key's SHA-256)"))?;
        let bytes = STANDARD
            .decode(b64)
            .or_else(|_| STANDARD_NO_PAD.decode(b64))
            .map_err(|_| format!("{s:?}: not base64 after sha256:"))?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{s:?}: a SHA-256 is 32 bytes (44 base64 characters)"))?;
        Ok(Pin(hash))
    }
}

/// The certificate's SHA-256 fingerprint, `AB:CD:...` as `openssl x509 -fingerprint` prints.
pub fn fingerprint(cert: &[u8]) -> String {
    let hash = Sha256::digest(cert);
    let hex: Vec<String> = hash.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// A key that matched no pin (the client's verifier says so; [`mod@super::explain`] words it).
#[derive(Debug, thiserror::Error)]
#[error("the certificate's key is {0}, not the one pinned")]
pub struct PinMismatch(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_read_back_as_written() {
        let pin = Pin([7; 32]);
        let text = pin.to_string();
        assert_eq!(text.parse::<Pin>().unwrap(), pin);
        let curl = text.replace("sha256:", "sha256//");
        assert_eq!(curl.parse::<Pin>().unwrap(), pin);
        let unpadded = text.trim_end_matches('=');
        assert_eq!(unpadded.parse::<Pin>().unwrap(), pin);
    }

    #[test]
    fn bad_pins_say_why() {
        assert!("md5:abc".parse::<Pin>().unwrap_err().contains("sha256:"));
        assert!("sha256:!!".parse::<Pin>().unwrap_err().contains("base64"));
        assert!(
            "sha256:AAAA"
                .parse::<Pin>()
                .unwrap_err()
                .contains("32 bytes")
        );
    }

    #[test]
    fn a_made_certificate_has_a_pin_and_a_fingerprint() {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let der = made.cert.der();
        assert!(Pin::of_cert(der).is_some());
        assert_eq!(fingerprint(der).len(), 32 * 3 - 1);
        assert!(Pin::of_cert(b"not a certificate").is_none());
    }
}
