//! Remote command execution: `taojie serve exec` and `taojie exec`.
//!
//! [`protocol`] holds the control messages both sides share, [`server`] the native server
//! (authenticated, output streamed as it comes, stdin forwarded, exit status returned),
//! [`classic`] the seed's protocol for `--classic`, [`process`] spawning commands in process
//! groups that die with their connection, and [`client`](mod@client) the `taojie exec` client.
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::secure::flags::{ClientKeys, ServerKeys};
use crate::server::{DEFAULT_MAX_CONNS, Limits, Listener, LiveCaps, PreAuth};

pub mod classic;
pub mod client;
pub mod process;
pub mod protocol;
pub mod server;

/// Default port of the native exec service on `taojie serve`.
pub const DEFAULT_PORT: u16 = 9512;
/// Default cap on commands running at once.
pub const DEFAULT_MAX_PROCS: usize = 16;

/// What `exec::serve` runs. With neither address, the native service on 127.0.0.1:9512.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// TCP address of the native exec service.
    pub listen: Option<String>,
    /// TCP address of the seed's protocol, if it is served too.
    pub classic: Option<String>,
    /// The keys clients must prove (or none, on loopback only).
    pub keys: ServerKeys,
    /// Let clients ask for a shell command line, run as `sh -c`.
    pub shell: bool,
    /// Only these programs may run (empty: any), whatever their arguments.
    pub allow: Vec<String>,
    /// Only these exact command lines may run, each split as a shell would (with `allow`, a
    /// request runs if either allows it).
    pub allow_exact: Vec<String>,
    /// Kill a command's process group after this long; the client gets status 124.
    pub timeout: Option<Duration>,
    /// Commands running at once; one more is refused.
    pub max_procs: usize,
    /// Caps on connections still in their handshake.
    pub preauth: LiveCaps,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: None,
            classic: None,
            keys: ServerKeys::default(),
            shell: false,
            allow: Vec::new(),
            allow_exact: Vec::new(),
            timeout: None,
            max_procs: DEFAULT_MAX_PROCS,
            preauth: LiveCaps::default(),
        }
    }
}

/// What `exec::run` runs, where, and how.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Server address, HOST:PORT.
    pub addr: String,
    /// The key proven to the server (default: the key `taojie serve` created, if any).
    pub keys: ClientKeys,
    /// Run the words as one command line through the server's shell (`sh -c`).
    pub shell: bool,
    /// Do not forward stdin; the command reads end-of-file at once.
    pub no_stdin: bool,
    /// Talk to a server started with `--insecure-no-auth`.
    pub insecure_no_auth: bool,
    /// Seconds to wait for the connection.
    pub connect_timeout: f64,
    /// Connect through this proxy.
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// `taojie exec`: runs the command on the server; the exit code is the command's (see
/// [`client::FAILURE_STATUS`] for taojie's own failures).
pub async fn run(args: ClientOptions) -> Result<ExitCode> {
    Ok(client::run(args).await)
}

/// Runs the exec service (native, and classic with `--classic`) until `shutdown` is
/// cancelled.
pub async fn serve(args: ServeOptions, shutdown: CancellationToken) -> Result<()> {
    let native = match (&args.listen, &args.classic) {
        (None, None) => Some(format!("127.0.0.1:{DEFAULT_PORT}")),
        (l, _) => l.clone(),
    };
    let native = match native {
        Some(a) => Some(crate::addr::resolve_one(&a).await?),
        None => None,
    };
    let classic = match &args.classic {
        Some(a) => Some(crate::addr::resolve_one(a).await?),
        None => None,
    };
    let addrs: Vec<SocketAddr> = native.iter().chain(classic.iter()).copied().collect();
    let auth = args.keys.auth("exec", &addrs)?;
    if let Some(addr) = classic {
        crate::secure::flags::check_classic("exec", &auth, addr)?;
    }
    // What a command leaves running outside its process group comes back to us, to be killed.
    process::adopt_orphans();
    let allow_exact = args
        .allow_exact
        .iter()
        .map(|line| {
            shlex::split(line)
                .filter(|words| !words.is_empty())
                .with_context(|| {
                    format!(
                        "--allow-exact {line:?}: not a command line (empty, or a quote left open)"
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let cfg = Arc::new(server::Config {
        auth,
        shell: args.shell,
        allow: args.allow.clone(),
        allow_exact,
        timeout: args.timeout,
        procs: process::ProcLimit::new(args.max_procs),
        preauth: PreAuth::live(args.preauth).for_service("exec"),
    });
    // A command may run quietly for long; auth, hello and requests have timeouts of their own.
    let limits = Limits {
        max_conns: DEFAULT_MAX_CONNS,
        idle_timeout: None,
        grace: Duration::from_secs(5),
    };

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(addr) = native {
        let listener = Listener::Tcp(crate::server::bind_tcp(addr)?);
        crate::server::announce("exec", "tcp", &listener.local_display());
        let cfg = cfg.clone();
        tasks.spawn(crate::server::serve_stream(
            "exec",
            listener,
            limits.clone(),
            move |conn| server::handle(conn, cfg.clone()),
            shutdown.clone().cancelled_owned(),
        ));
    }
    if let Some(addr) = classic {
        let listener = Listener::Tcp(crate::server::bind_tcp(addr)?);
        crate::server::announce("exec-classic", "tcp", &listener.local_display());
        tasks.spawn(crate::server::serve_stream(
            "exec-classic",
            listener,
            limits,
            move |conn| classic::handle(conn, cfg.clone()),
            shutdown.clone().cancelled_owned(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}
