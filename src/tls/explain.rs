//! One line that says why a TLS handshake failed, in the words a user acts on: the
//! certificate expired (and when), it is for other names (and which), nobody trusted issued
//! it, its key is not the pinned one; or the peer refused us, or does not speak TLS.
use std::io;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError, Error};

use super::human_time;
use super::pin::PinMismatch;

/// Why an I/O error from a TLS stream happened, in one line.
pub fn io(err: &io::Error) -> String {
    if let Some(tls) = err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        return explain(tls);
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof => {
            "the peer closed the connection during the TLS handshake (not TLS, or it \
             refused us)"
                .to_string()
        }
        _ => err.to_string(),
    }
}

/// Why a rustls error happened, in one line.
pub fn explain(err: &Error) -> String {
    match err {
        Error::InvalidCertificate(cert) => certificate(cert),
        Error::AlertReceived(alert) => {
            format!("the peer refused the handshake: {}", alert_words(*alert))
        }
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
            "the peer does not speak TLS (its answer is not a TLS record)".to_string()
        }
        Error::NoCertificatesPresented => "the peer presented no certificate".to_string(),
        Error::PeerIncompatible(why) => format!("no TLS version or cipher in common ({why:?})"),
        other => other.to_string(),
    }
}

fn certificate(err: &CertificateError) -> String {
    match err {
        CertificateError::ExpiredContext { not_after, .. } => format!(
            "certificate expired: it was valid until {}",
            human_time(Duration::from_secs(not_after.as_secs()))
        ),
        CertificateError::Expired => "certificate expired".to_string(),
        CertificateError::NotValidYetContext { not_before, .. } => format!(
            "certificate not valid yet: it is valid from {}",
            human_time(Duration::from_secs(not_before.as_secs()))
        ),
        CertificateError::NotValidYet => "certificate not valid yet".to_string(),
        CertificateError::UnknownIssuer => {
            "certificate issued by an unknown authority (not in the system's roots or \
             --cacert; self-signed?)"
                .to_string()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names = if presented.is_empty() {
                "no name at all".to_string()
            } else {
                let plain: Vec<String> = presented.iter().map(|n| bare_name(n)).collect();
                plain.join(", ")
            };
            format!(
                "wrong host name: the certificate is for {names}, not {}",
                expected.to_str()
            )
        }
        CertificateError::NotValidForName => {
            "wrong host name: the certificate is not for this host".to_string()
        }
        CertificateError::BadSignature => "certificate has a bad signature".to_string(),
        CertificateError::Revoked => "certificate revoked".to_string(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not for a TLS server".to_string()
        }
        CertificateError::Other(other) => match other.0.downcast_ref::<PinMismatch>() {
            Some(pin) => pin.to_string(),
            // webpki's word for a self-signed certificate made the common way (CA:TRUE).
            None if other.to_string().contains("CaUsedAsEndEntity") => {
                "certificate issued by an unknown authority: it is self-signed (--cacert it, \
                 or --pin its key)"
                    .to_string()
            }
            None => format!("certificate refused: {other}"),
        },
        other => format!("certificate refused: {other:?}"),
    }
}

/// A name as rustls lists it (`DnsName("example.com")`, `IpAddress(127.0.0.1)`), bare.
fn bare_name(listed: &str) -> String {
    let inner = listed
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(listed);
    inner.trim_matches('"').to_string()
}

/// What the peer's alert means for the user: it refused our certificate, or had none to
/// give for the name we asked.
fn alert_words(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::UnknownCA => "it does not trust our certificate's issuer".to_string(),
        AlertDescription::BadCertificate => "it refused our certificate".to_string(),
        AlertDescription::CertificateExpired => "our certificate has expired".to_string(),
        AlertDescription::UnrecognisedName => "it has no certificate for that name".to_string(),
        AlertDescription::HandshakeFailure => "no parameters in common".to_string(),
        AlertDescription::NoApplicationProtocol => "no ALPN protocol in common".to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{ServerName, UnixTime};

    #[test]
    fn each_reason_is_named() {
        let expired = Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(2_000_000_000)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_000_000_000)),
        });
        assert_eq!(
            explain(&expired),
            "certificate expired: it was valid until 2001-09-09 01:46:40 UTC"
        );
        let name = Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("wrong.test").unwrap(),
            presented: vec!["DnsName(\"right.test\")".into()],
        });
        assert!(
            explain(&name).starts_with("wrong host name"),
            "{}",
            explain(&name)
        );
        let issuer = Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(explain(&issuer).contains("unknown authority"));
    }
}
