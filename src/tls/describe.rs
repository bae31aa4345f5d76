//! What `-v` says about a TLS session: the protocol version, cipher suite and ALPN, and the
//! peer certificate's subject, issuer, end of validity and SHA-256 fingerprint.
use rustls::CommonState;
use x509_cert::der::Decode;

use super::pin::{Pin, fingerprint};

/// Lines describing the session (two or three), for stderr.
pub fn describe(state: &CommonState) -> Vec<String> {
    let version = match state.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "TLS (version unknown)",
    };
    let suite = state
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .unwrap_or("unknown cipher suite");
    let alpn = match state.alpn_protocol() {
        Some(p) => String::from_utf8_lossy(p).into_owned(),
        None => "none".to_string(),
    };
    let mut lines = vec![format!("{version}, {suite}, ALPN {alpn}")];
    if let Some(cert) = state.peer_certificates().and_then(|c| c.first()) {
        lines.extend(certificate(cert));
    }
    lines
}

/// Subject, issuer, expiry, fingerprint and key pin of a certificate.
pub fn certificate(der: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(cert) = x509_cert::Certificate::from_der(der) {
        let tbs = &cert.tbs_certificate;
        lines.push(format!("certificate subject: {}", tbs.subject));
        lines.push(format!("certificate issuer: {}", tbs.issuer));
        lines.push(format!(
            "certificate valid until: {}",
            super::human_time(tbs.validity.not_after.to_unix_duration())
        ));
    }
    lines.push(format!("certificate SHA-256: {}", fingerprint(der)));
    if let Some(pin) = Pin::of_cert(der) {
        lines.push(format!("certificate key pin: {pin}"));
    }
    lines
}
