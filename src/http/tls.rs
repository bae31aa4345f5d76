//! The TLS configuration of `taojie http`: rustls with the platform's root certificates (as
//! the system's certificate bundle lists them) and, with `--cacert FILE`, the PEM
//! certificates of that file as well; a server certificate that is one of those, byte for byte,
//! is trusted even when it says it is a CA (the verifier `Pinned` below).
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// A client configuration trusting the platform's roots and those in `cacert`.
pub fn client_config(cacert: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A malformed certificate in the system bundle must not stop the others.
        let _ = roots.add(cert);
    }
    let mut pinned = Vec::new();
    if let Some(path) = cacert {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("--cacert {}", path.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("--cacert {}: not PEM certificates", path.display()))?;
        if certs.is_empty() {
            bail!("--cacert {}: no certificate in it", path.display());
        }
        for cert in certs {
            roots
                .add(cert.clone())
                .with_context(|| format!("--cacert {}", path.display()))?;
            pinned.push(cert);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?;
    let mut config = if pinned.is_empty() {
        builder.with_root_certificates(roots)
    } else {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .context("TLS set-up")?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                webpki,
                certs: pinned,
            }))
    }
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The usual verification, and one more case. A self-signed certificate made the common way
/// (`openssl req -x509`) says CA:TRUE, and webpki refuses a CA's certificate as a server's own
/// (`CaUsedAsEndEntity`), where curl and OpenSSL accept it when it is given with --cacert.
/// So when the server presents exactly one of --cacert's certificates and webpki's objection
/// is of the unclassified kind (`Other`), the certificate is trusted as it stands, its name
/// still checked. Its validity period has been checked already: webpki checks the time before
/// the basic constraints, and an expired certificate is an error of its own kind, passed on.
#[derive(Debug)]
struct Pinned {
    webpki: Arc<WebPkiServerVerifier>,
    certs: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(_)))
                if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&cert, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
