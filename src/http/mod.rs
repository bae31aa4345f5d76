//! `taojie http`: an HTTP/1.1 and HTTPS client on reqwest (hyper and rustls underneath), and,
//! with `--raw`, seed 000's own way: a request written by hand on a plain socket and the reply
//! shown exactly as it came.
//!
//! Trust comes from the shared [`crate::tls::Client`] (system roots and `--cacert`), [`body`] decodes a compressed body, [`save`] puts a body
//! on stdout or into a file that appears only when complete, [`failure`] says in one line why
//! a request failed, [`raw`] is the seed's socket.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Url, redirect};

pub use failure::describe;

pub mod body;
pub mod failure;
pub mod raw;
pub mod save;

/// What `http::run` fetches, and where the body goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// http:// or https:// URL; `user:password@` in it is sent as basic auth (never shown).
    pub url: String,
    /// Write the body to FILE: complete and checked against Content-Length, or not at all;
    /// a directory takes it under the URL's name ([`save::target`]).
    pub output: Option<PathBuf>,
    /// Replace FILE when it exists (without this an existing FILE is an error).
    pub overwrite: bool,
    /// Print the status line and the headers before the body.
    pub include: bool,
    /// HEAD: the status line and the headers only.
    pub head: bool,
    /// Trust the PEM certificates in FILE as well as the system's.
    pub cacert: Option<PathBuf>,
    /// Redirects followed at most (0: none); https to http is always refused.
    pub max_redirs: usize,
    /// Largest body written, after decoding; a larger one is an error and leaves no file
    /// (default: no limit for a body sent as it is, 100 MiB for a compressed one).
    pub max_filesize: Option<u64>,
    /// Seconds to wait for a connection, and for each read, before giving up.
    pub timeout: f64,
    /// The seed's way: send `GET PATH HTTP/1.1`, Host and `Connection: close` on a plain
    /// socket; the request goes to stderr as sent, the reply to stdout as it came.
    pub raw: bool,
    /// The proxy for every URL (`socks5://`, `socks5h://`, `http://`), instead of the ones
    /// `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` name (which apply without it).
    pub proxy: Option<String>,
}

/// The TLS configuration: the platform's roots and `cacert`'s certificates (one of which,
/// presented as the server's own, is trusted as it stands, as curl does), offering HTTP/1.1.
fn trust(cacert: Option<PathBuf>) -> Result<rustls::ClientConfig> {
    let given = cacert.is_some();
    let opts = crate::tls::ClientOptions {
        cacert,
        alpn: vec!["http/1.1".into()],
        ..Default::default()
    };
    let client = crate::tls::Client::new(&opts);
    let client = if given {
        client.context("--cacert")?
    } else {
        client?
    };
    Ok(client.rustls_config())
}

/// Runs `taojie http`.
pub async fn run(args: Options) -> Result<ExitCode> {
    let (url, auth) = parse_url(&args.url)?;
    let timeout = Duration::from_secs_f64(args.timeout.clamp(0.001, 86_400.0));
    if args.raw {
        return raw::run(&url, auth.as_ref(), timeout).await;
    }
    let mut client = reqwest::Client::builder();
    if let Some(p) = &args.proxy {
        // Checked as a ProxyUrl already; reqwest's message would not name the password either.
        client = client.proxy(reqwest::Proxy::all(p).context("--proxy")?);
    }
    let client = client
        .tls_backend_preconfigured(trust(args.cacert.clone())?)
        .redirect(policy(args.max_redirs))
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .user_agent(concat!("taojie/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("HTTP client set-up")?;
    // Where the body goes, checked before anything is asked: a directory to save into, a
    // file not to replace.
    let output = match (&args.output, args.head) {
        (Some(path), false) => Some(save::target(path, &url, args.overwrite)?),
        _ => None,
    };
    let mut request = if args.head {
        client.head(url.clone())
    } else {
        client.get(url.clone())
    };
    request = request.header(reqwest::header::ACCEPT_ENCODING, body::ACCEPT_ENCODING);
    if let Some((user, password)) = &auth {
        request = request.basic_auth(user, password.as_ref());
    }
    let response = request.send().await.map_err(describe)?;
    refuse_unfollowed_redirect(&response)?;
    if args.include || args.head {
        print_head(&response);
    }
    let status = response.status();
    if status.as_u16() >= 400 {
        bail!(
            "HTTP {} {} from {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            response.url()
        );
    }
    if args.head {
        return Ok(ExitCode::SUCCESS);
    }
    // A compressed (gzip, br) body's Content-Length counts the compressed bytes, not the ones
    // written.
    let encoded = response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    let expected = if encoded {
        None
    } else {
        response.content_length()
    };
    let cap = save::Cap::new(args.max_filesize, encoded);
    if let (Some(len), Some(cap)) = (expected, &cap) {
        cap.check(len)?;
    }
    match &output {
        Some(path) => {
            save::to_file(response, path, expected, args.overwrite, cap).await?;
        }
        None => {
            save::to_stdout(response, cap).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The user's credentials as (user, password), taken out of the URL so it can be shown.
pub type Credentials = (String, Option<String>);

/// Parses the URL and takes `user:password@` out of it.
pub fn parse_url(text: &str) -> Result<(Url, Option<Credentials>)> {
    let hint = if text.contains("://") {
        ""
    } else {
        " (give the scheme, e.g. http://host/path)"
    };
    let mut url = Url::parse(text).map_err(|e| anyhow::anyhow!("bad URL: {e}{hint}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        // `localhost:8080/x` parses with "localhost" as its scheme: say what was missing.
        bail!(
            "unsupported scheme {:?}: http and https only{hint}",
            url.scheme()
        );
    }
    if url.host().is_none() {
        bail!("the URL names no host");
    }
    let auth = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let decode = |s: &str| {
            percent_decode(s).with_context(|| "the URL's user or password is not valid UTF-8")
        };
        let auth = (
            decode(url.username())?,
            url.password().map(decode).transpose()?,
        );
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(auth)
    };
    Ok((url, auth))
}

/// Undoes `%XX` escapes.
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Ok(String::from_utf8(out)?)
}

/// Follows at most `max` redirects, never from https to http, and stops at a loop.
fn policy(max: usize) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        let next = attempt.url().clone();
        let previous = attempt.previous();
        if previous.len() > max {
            return attempt.error(format!("stopped after {max} redirects (--max-redirs)"));
        }
        if previous.contains(&next) {
            return attempt.error(format!("redirect loop: {next} again"));
        }
        if previous.last().is_some_and(|p| p.scheme() == "https") && next.scheme() == "http" {
            return attempt.error(format!("refused a redirect from https to http ({next})"));
        }
        attempt.follow()
    })
}

/// A redirect that came back as the final answer was not followed: its Location is not an
/// http or https URL (`file:`, `data:`) or not a URL at all. Refused, rather than taking the
/// redirect's own (usually empty) body for the document.
fn refuse_unfollowed_redirect(response: &reqwest::Response) -> Result<()> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(());
    }
    let Some(location) = response.headers().get(reqwest::header::LOCATION) else {
        return Ok(());
    };
    let target = std::str::from_utf8(location.as_bytes())
        .ok()
        .and_then(|l| response.url().join(l).ok());
    match target {
        // Only the scheme is shown: the rest is the server's to choose, escapes and all.
        Some(url) => bail!(
            "refused a redirect to a {}: URL (http and https only)",
            url.scheme()
        ),
        None => bail!("refused a redirect to a Location that is not a URL"),
    }
}

/// The status line and headers, as the server sent them (less what decoding removed).
fn print_head(response: &reqwest::Response) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let status = response.status();
    let _ = writeln!(
        out,
        "{:?} {} {}",
        response.version(),
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in response.headers() {
        let _ = writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    let _ = writeln!(out);
    let _ = out.flush();
}
