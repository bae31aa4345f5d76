//! The client side: a configuration that verifies by default, and the handshake.
//!
//! Trust, in order: `--insecure` trusts any certificate (and says so on stderr); `--pin`
//! trusts a certificate whose key has one of the pinned hashes, whoever issued it and
//! whatever name it carries (the pin names the server, as a known_hosts entry does);
//! otherwise the chain must lead to a system root or a `--cacert` certificate, be within its
//! validity period and carry the host name (or `--sni`). In every case the server must prove
//! it holds the certificate's key (the handshake's signature is checked).
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

use super::pin::Pin;

/// What a TLS client trusts and offers, as plain values.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// More trusted roots (PEM), beside the system's.
    pub cacert: Option<PathBuf>,
    /// Trust a certificate whose key has one of these pins, instead of the roots and name.
    pub pins: Vec<Pin>,
    /// Trust any certificate (warned about).
    pub insecure: bool,
    /// The name to ask for and check, instead of the host the address names.
    pub sni: Option<String>,
    /// ALPN protocols to offer, in order of preference.
    pub alpn: Vec<String>,
}

/// A ready TLS client configuration.
#[derive(Clone)]
pub struct Client {
    config: Arc<rustls::ClientConfig>,
    sni: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("sni", &self.sni).finish()
    }
}

impl Client {
    /// Loads `--cacert` and the system roots (unless a pin or `--insecure` makes them moot)
    /// and builds the configuration. `what` names the flags in errors (`--cacert` or
    /// `--to-cacert`).
    pub fn new(opts: &ClientOptions) -> Result<Client> {
        let provider = super::provider();
        let algorithms = provider.signature_verification_algorithms;
        let trust = if opts.insecure {
            eprintln!(
                "taojie: WARNING: --insecure: the server's certificate is NOT checked; anyone on \
                 the path can read and change this connection"
            );
            Trust::Anything
        } else if !opts.pins.is_empty() {
            Trust::Pins(opts.pins.clone())
        } else {
            let (roots, extra) = roots(opts.cacert.as_ref())?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .context("TLS set-up")?;
            Trust::Roots { webpki, extra }
        };
        let verifier = Verifier { trust, algorithms };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS set-up")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = opts.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Ok(Client {
            config: Arc::new(config),
            sni: opts.sni.clone(),
        })
    }

    /// The rustls configuration itself, for a client library that runs its own handshakes
    /// (`taojie http`'s reqwest).
    pub fn rustls_config(&self) -> rustls::ClientConfig {
        (*self.config).clone()
    }

    /// The name the handshake asks for and checks: `--sni`, else `host`.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>> {
        let name = self.sni.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_string())
            .map_err(|_| anyhow::anyhow!("{name:?} is not a host name or address TLS can check"))
    }

    /// Runs the handshake over `stream` with the server at `host` (the address's host part).
    /// An error says why in one line ([`mod@super::explain`]).
    pub async fn connect<S>(&self, stream: S, host: &str) -> Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = self.server_name(host)?;
        let shown = name.to_str().into_owned();
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, stream)
            .await
            .map_err(|e| anyhow::anyhow!("TLS with {shown}: {}", super::explain::io(&e)))
    }
}

/// The system's roots and those in `cacert`; the latter are also returned on their own.
fn roots(
    cacert: Option<&PathBuf>,
) -> Result<(rustls::RootCertStore, Vec<CertificateDer<'static>>)> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A malformed certificate in the system bundle must not stop the others.
        let _ = roots.add(cert);
    }
    let mut extra = Vec::new();
    if let Some(path) = cacert {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("{}", path.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}: not PEM certificates", path.display()))?;
        if certs.is_empty() {
            bail!("{}: no certificate in it", path.display());
        }
        for cert in certs {
            roots
                .add(cert.clone())
                .with_context(|| format!("{}", path.display()))?;
            extra.push(cert);
        }
    }
    if roots.is_empty() {
        bail!("no trusted root certificates: give --cacert FILE, or --pin the server's key");
    }
    Ok((roots, extra))
}

#[derive(Debug)]
enum Trust {
    Anything,
    Pins(Vec<Pin>),
    Roots {
        webpki: Arc<WebPkiServerVerifier>,
        /// `--cacert`'s own certificates: one of them presented as the server's own is
        /// trusted as it stands (see [`Verifier::verify_server_cert`]).
        extra: Vec<CertificateDer<'static>>,
    },
}

#[derive(Debug)]
struct Verifier {
    trust: Trust,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Anything => Ok(ServerCertVerified::assertion()),
            Trust::Pins(pins) => match Pin::of_cert(end_entity) {
                Some(pin) if pins.contains(&pin) => Ok(ServerCertVerified::assertion()),
                Some(pin) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(super::pin::PinMismatch(pin.to_string()))),
                ))),
                None => Err(rustls::Error::InvalidCertificate(
                    CertificateError::BadEncoding,
                )),
            },
            // A self-signed certificate made the common way (`openssl req -x509`) says
            // CA:TRUE, which webpki refuses as a server's own (an `Other` error), where
            // OpenSSL and curl accept it when it is given as the CA file. So one of
            // --cacert's own certificates, byte for byte, is trusted as it stands; its
            // validity period was checked before that objection, and its name still is.
            Trust::Roots { webpki, extra } => {
                match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                    Err(rustls::Error::InvalidCertificate(CertificateError::Other(_)))
                        if extra.iter().any(|c| c.as_ref() == end_entity.as_ref()) =>
                    {
                        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
                        rustls::client::verify_server_name(&cert, server_name)?;
                        Ok(ServerCertVerified::assertion())
                    }
                    verdict => verdict,
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
