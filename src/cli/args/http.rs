//! The flags of `taojie http`, and the options they make.
use std::path::PathBuf;

use clap::Args;

use crate::http::Options;

/// Flags of `taojie http`.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  taojie http http://127.0.0.1:8080/                 the body to standard output
  taojie http -i http://127.0.0.1:8080/api           the status line and headers first
  taojie http -I http://127.0.0.1:8080/big.iso       HEAD: status line and headers only
  taojie http https://127.0.0.1:8443/big.iso -o big.iso --cacert ca.pem
                                                     saved only once whole; a self-signed server
  taojie http http://ann:secret@127.0.0.1:8080/      basic auth from the URL (never shown)
  taojie http http://127.0.0.1:8080/ --raw           the seed's way: request on stderr, reply as
                                                     it came")]
pub struct HttpArgs {
    /// http:// or https:// URL; `user:password@` in it is sent as basic auth (never shown)
    pub url: String,
    /// Write the body to FILE: complete and checked against Content-Length, or not at all.
    /// A directory (an existing one, or any PATH ending in /) takes the file under the URL's
    /// last path segment, as curl's --output-dir with -O
    #[arg(short = 'o', long = "output", value_name = "FILE|DIR")]
    pub output: Option<PathBuf>,
    /// Replace FILE when it exists (without this an existing FILE is an error, found before
    /// anything is downloaded); a directory is never replaced
    #[arg(long)]
    pub overwrite: bool,
    /// Print the status line and the headers before the body
    #[arg(short = 'i', long = "include")]
    pub include: bool,
    /// HEAD: the status line and the headers only
    #[arg(short = 'I', long = "head")]
    pub head: bool,
    /// Trust the PEM certificates in FILE as well as the system's
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Redirects followed at most (0: none); https to http is always refused
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirs: usize,
    /// Largest body written, after decoding (K, M, G suffixes); a larger one is an error and
    /// leaves no -o file. Default: no limit for a body sent as it is, 100M for a compressed
    /// (gzip, br) one, which a server can make inflate a thousandfold
    #[arg(long, value_name = "BYTES", value_parser = crate::flags::bytes)]
    pub max_filesize: Option<u64>,
    /// Seconds to wait for a connection, and for each read, before giving up
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = crate::flags::positive_secs)]
    pub timeout: f64,
    /// The seed's way: send `GET PATH HTTP/1.1`, Host and `Connection: close` on a plain
    /// socket; the request goes to stderr as sent, the reply to stdout as it came
    #[arg(long, conflicts_with_all = ["output", "head", "include", "cacert", "proxy"])]
    pub raw: bool,
    /// Go through this proxy: socks5://HOST:PORT, socks5h:// (names resolved by the proxy)
    /// or http:// (CONNECT for https://; http:// URLs are asked of it in full, as curl
    /// does), with USER:PASSWORD@ if it asks. Without it, ALL_PROXY, HTTPS_PROXY,
    /// HTTP_PROXY and NO_PROXY apply as in curl
    #[arg(long, value_name = "URL", value_parser = proxy_url)]
    pub proxy: Option<String>,
}

/// A `--proxy` URL, checked (its text goes to the HTTP client as it is).
fn proxy_url(s: &str) -> Result<String, String> {
    crate::proxy_wire::ProxyUrl::parse(s).map(|_| s.to_string())
}

impl From<HttpArgs> for Options {
    fn from(a: HttpArgs) -> Self {
        Options {
            url: a.url,
            output: a.output,
            overwrite: a.overwrite,
            include: a.include,
            head: a.head,
            cacert: a.cacert,
            max_redirs: a.max_redirs,
            max_filesize: a.max_filesize,
            timeout: a.timeout,
            raw: a.raw,
            proxy: a.proxy,
        }
    }
}
