//! The server side: a PEM certificate chain and key from files (as ncat's `--ssl-cert` and
//! `--ssl-key`), or a certificate made at start for this run, whose key pin the listener
//! prints so that a client can `--pin` it.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_cert::der::Decode;

use super::pin::{Pin, fingerprint};

/// Where a TLS server's certificate comes from, as plain values.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// The PEM certificate chain, the server's own first.
    pub cert: Option<PathBuf>,
    /// The PEM private key of the first certificate.
    pub key: Option<PathBuf>,
    /// Make a certificate for this run instead (for `localhost`, the loopback addresses and
    /// `names`).
    pub self_signed: bool,
    /// ALPN protocols the server accepts, in its order of preference.
    pub alpn: Vec<String>,
}

impl ServerOptions {
    /// Whether any TLS is asked for.
    pub fn any(&self) -> bool {
        self.cert.is_some() || self.key.is_some() || self.self_signed
    }
}

/// A ready server configuration, and what a made certificate is known by.
#[derive(Clone)]
pub struct ServerTls {
    /// The configuration to accept with.
    pub config: Arc<rustls::ServerConfig>,
    /// The key pin of the certificate (for `--pin`).
    pub pin: Pin,
    /// The certificate's SHA-256 fingerprint.
    pub fingerprint: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("pin", &self.pin).finish()
    }
}

impl ServerTls {
    /// Accepts a TLS client over `stream`; an error says why in one line.
    pub async fn accept<S>(&self, stream: S) -> Result<tokio_rustls::server::TlsStream<S>, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
            .accept(stream)
            .await
            .map_err(|e| super::explain::io(&e))
    }
}

/// The configuration `opts` asks for; `names` are the host names a made certificate also
/// carries (the listen address's host, say). A certificate past its end is an error.
pub fn server_config(opts: &ServerOptions, names: &[String]) -> Result<ServerTls> {
    let (chain, key) = match (&opts.cert, &opts.key, opts.self_signed) {
        (Some(_), _, true) | (_, Some(_), true) => {
            bail!("give --tls-cert and --tls-key, or --tls-self-signed, not both")
        }
        (Some(cert), Some(key), false) => (load_chain(cert)?, load_key(key)?),
        (Some(_), None, _) => bail!("--tls-cert needs --tls-key FILE (its private key)"),
        (None, Some(_), _) => bail!("--tls-key needs --tls-cert FILE (its certificate chain)"),
        (None, None, true) => make(names)?,
        (None, None, false) => {
            bail!("no TLS certificate: give --tls-cert and --tls-key, or --tls-self-signed")
        }
    };
    let own = chain[0].clone();
    check_dates(&own, opts.cert.as_ref())?;
    let mut config = rustls::ServerConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS key does not fit the certificate")?;
    config.alpn_protocols = opts.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(ServerTls {
        config: Arc::new(config),
        pin: Pin::of_cert(&own).context("the TLS certificate does not parse")?,
        fingerprint: fingerprint(&own),
    })
}

fn load_chain(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("--tls-cert {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--tls-cert {}: not PEM certificates", path.display()))?;
    if chain.is_empty() {
        bail!("--tls-cert {}: no certificate in it", path.display());
    }
    Ok(chain)
}

fn load_key(path: &PathBuf) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("--tls-key {}: no PEM private key in it", path.display()))
}

/// A certificate and key for this run: for `localhost`, 127.0.0.1, ::1 and `names`.
fn make(names: &[String]) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let mut all: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for n in names {
        if !n.is_empty() && !all.contains(n) && n != "0.0.0.0" && n != "::" {
            all.push(n.clone());
        }
    }
    let made = rcgen::generate_simple_self_signed(all).context("cannot make a certificate")?;
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("cannot make a certificate: {e}"))?;
    Ok((vec![made.cert.der().clone()], key))
}

/// Refuses a certificate past its end (clients would refuse it anyway, each with a less
/// helpful message), and one not yet valid.
fn check_dates(cert: &[u8], path: Option<&PathBuf>) -> Result<()> {
    let Ok(parsed) = x509_cert::Certificate::from_der(cert) else {
        return Ok(()); // rustls says what is wrong with it when it is used
    };
    let validity = parsed.tbs_certificate.validity;
    let now = super::now_unix();
    let what = path.map_or("the certificate".to_string(), |p| {
        format!("--tls-cert {}", p.display())
    });
    let end = validity.not_after.to_unix_duration();
    if end < now {
        bail!("{what} expired on {}", super::human_time(end));
    }
    let start = validity.not_before.to_unix_duration();
    if start > now {
        bail!("{what} is not valid until {}", super::human_time(start));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_certificate_serves() {
        let opts = ServerOptions {
            self_signed: true,
            ..Default::default()
        };
        let tls = server_config(&opts, &["example.test".into()]).unwrap();
        assert!(tls.pin.to_string().starts_with("sha256:"));
    }

    #[test]
    fn half_given_files_are_refused_with_the_missing_flag() {
        let opts = ServerOptions {
            cert: Some("/nonexistent".into()),
            ..Default::default()
        };
        let err = server_config(&opts, &[]).unwrap_err().to_string();
        assert!(err.contains("--tls-key"), "{err}");
    }
}
