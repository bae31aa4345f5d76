//! The TLS configuration of `taojie http`: rustls with the platform's root certificates (as
//! the system's certificate bundle lists them) and, with `--cacert FILE`, the PEM
//! certificates of that file as well.
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A client configuration trusting the platform's roots and those in `cacert`.
pub fn client_config(cacert: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A malformed certificate in the system bundle must not stop the others.
        let _ = roots.add(cert);
    }
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
                .add(cert)
                .with_context(|| format!("--cacert {}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
