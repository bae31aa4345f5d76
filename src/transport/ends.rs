//! The two ends of a relayed connection: how a listener's side turns an accepted socket into
//! a [`Stream`] ([`Accept`]), and how the other side opens one ([`Dial`]) — each plain, TLS
//! or Noise, chosen once at start.
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use super::{Plain, Stream, noise, plain, tls};
use crate::secure::{ClientAuth, ServerAuth};
use crate::tls::Client;
use crate::tls::server::ServerTls;

/// Where a stream connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `HOST:PORT` over TCP.
    Tcp(String),
    /// A Unix-domain stream socket.
    Unix(PathBuf),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(a) => f.write_str(a),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What the listening side does with an accepted socket before relaying it.
#[derive(Clone)]
pub enum Accept {
    /// Nothing: relay it as it is.
    Plain,
    /// A TLS handshake, as the server.
    Tls(Arc<ServerTls>),
    /// A Noise handshake, as the server: only a client with the key gets through.
    Noise(Arc<ServerAuth>),
}

impl fmt::Debug for Accept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accept::Plain => "plain",
            Accept::Tls(_) => "tls",
            Accept::Noise(_) => "noise",
        })
    }
}

impl Accept {
    /// Whether a handshake comes first (and so the pre-authentication limits apply).
    pub fn has_handshake(&self) -> bool {
        !matches!(self, Accept::Plain)
    }

    /// The accepted socket as a stream, after the handshake if there is one. The caller puts
    /// a deadline on it (the pre-authentication guard).
    pub async fn handshake(&self, plain: Plain) -> Result<Stream, String> {
        match self {
            Accept::Plain => Ok(Stream::Plain(plain)),
            Accept::Tls(t) => tls::accept(t, plain).await,
            Accept::Noise(auth) => match noise::server(plain, auth).await {
                Ok((s, _who)) => Ok(Stream::Noise(Box::new(s))),
                Err(e) => Err(format!("{e:#}")),
            },
        }
    }
}

/// The layer the connecting side puts on the socket it opens.
#[derive(Clone)]
pub enum Wrap {
    /// None.
    Plain,
    /// TLS, as the client (verified as [`Client`] was told).
    Tls(Client),
    /// Noise, as the client.
    Noise(Arc<ClientAuth>),
}

impl fmt::Debug for Wrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wrap::Plain => "plain",
            Wrap::Tls(_) => "tls",
            Wrap::Noise(_) => "noise",
        })
    }
}

/// How to open the outgoing side of a relayed connection.
#[derive(Debug, Clone)]
pub struct Dial {
    /// Where.
    pub target: Target,
    /// With what on top.
    pub wrap: Wrap,
    /// How long connecting (and a handshake) may take.
    pub wait: Duration,
    /// A proxy to reach a TCP target through.
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
}

impl Dial {
    /// Connects, and runs the handshake if there is one.
    pub async fn connect(&self) -> Result<Stream> {
        let plain = match &self.target {
            Target::Tcp(addr) => match &self.proxy {
                Some(p) => Plain::Tcp(
                    crate::proxy_wire::connect_tcp(addr, Some(p), self.wait)
                        .await?
                        .0,
                ),
                None => Plain::Tcp(plain::dial_tcp(addr, self.wait).await?.0),
            },
            Target::Unix(path) => Plain::Unix(plain::dial_unix(path, self.wait).await?),
        };
        let handshake = async {
            match &self.wrap {
                Wrap::Plain => Ok(Stream::Plain(plain)),
                Wrap::Tls(client) => {
                    let host = match &self.target {
                        Target::Tcp(addr) => crate::tls::host_of(addr).to_string(),
                        Target::Unix(_) => "localhost".to_string(),
                    };
                    tls::connect(client, plain, &host).await
                }
                Wrap::Noise(auth) => Ok(Stream::Noise(Box::new(
                    noise::client(plain, auth)
                        .await
                        .with_context(|| format!("{}", self.target))?,
                ))),
            }
        };
        tokio::time::timeout(self.wait, handshake)
            .await
            .map_err(|_| anyhow!("{}: no handshake in {:?}", self.target, self.wait))?
    }
}
