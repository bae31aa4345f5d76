//! Why a request failed, in one line for a person: where it went and the cause that matters
//! (a refused connection, a server that does not speak TLS, a certificate not trusted), not
//! the client library's whole chain of wrappers.
use std::error::Error;

use reqwest::Url;

/// One clear line for a failed request, without the URL's credentials (they were taken out
/// before the request was made).
pub fn describe(e: reqwest::Error) -> anyhow::Error {
    let at = e.url().map(origin).unwrap_or_default();
    let tls = find::<rustls::Error>(&e);
    let io = find::<std::io::Error>(&e);
    let cause = innermost(&e);
    let line = if e.is_timeout() {
        format!("{at}: timed out")
    } else if let Some(rustls::Error::InvalidCertificate(why)) = tls {
        match why {
            rustls::CertificateError::UnknownIssuer => format!(
                "{at}: the server's certificate is not trusted (a private CA or self-signed: \
                 give it with --cacert FILE): {cause}"
            ),
            _ => format!("{at}: the server's certificate is refused: {cause}"),
        }
    } else if let Some(
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. },
    ) = tls
    {
        let plain = e.url().map(|u| {
            let mut u = u.clone();
            let _ = u.set_scheme("http");
            format!(" (a plain port? try {u})")
        });
        format!(
            "{at}: the server did not answer with TLS{}",
            plain.unwrap_or_default()
        )
    } else if e.is_connect() {
        match io.map(std::io::Error::kind) {
            Some(std::io::ErrorKind::ConnectionRefused) => {
                format!("cannot connect to {at}: connection refused (nothing listens there)")
            }
            _ => format!("cannot connect to {at}: {cause}"),
        }
    } else if e.is_redirect() {
        format!("redirect refused: {cause}")
    } else if e.is_body() || e.is_decode() {
        format!("{at}: the body broke off: {cause}")
    } else {
        format!("{at}: request failed: {cause}")
    };
    anyhow::anyhow!(line)
}

/// `scheme://host:port` of `url`, the port always shown.
fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// The first error of type `T` in `e`'s chain, looking inside the I/O errors that carry
/// another (as TLS errors come, wrapped in an `io::Error` or two).
fn find<'a, T: Error + 'static>(e: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        next = below(err);
    }
    None
}

/// The error under `e`: an `io::Error`'s wrapped one (its `source` skips it), else the source.
fn below<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        Some(inner) => Some(inner),
        None => e.source(),
    }
}

/// The last cause in `e`'s chain: what actually went wrong.
fn innermost(e: &(dyn Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = below(last) {
        last = next;
    }
    last.to_string()
}
