//! Remote command execution: `taojie serve exec` and `taojie exec`.
//!
//! [`protocol`] holds the control messages both sides share, [`server`] the native server
//! (authenticated, output streamed as it comes, stdin forwarded, exit status returned),
//! [`classic`] the seed's protocol for `--classic`, [`process`] spawning commands in process
//! groups that die with their connection, and [`client`](mod@client) the `taojie exec` client.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::server::{DEFAULT_MAX_CONNS, Limits, Listener, PreAuthArgs};

pub mod classic;
pub mod client;
pub mod process;
pub mod protocol;
pub mod server;

/// Default port of the native exec service on `taojie serve`.
pub const DEFAULT_PORT: u16 = 9512;
/// Default cap on commands running at once.
pub const DEFAULT_MAX_PROCS: usize = 16;

/// Flags of `taojie serve exec`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// TCP address of the native exec service, e.g. 127.0.0.1:9512 [default: 127.0.0.1:9512
    /// unless only --classic is given]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Key file shared with the clients (make one with `taojie keygen FILE`)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The server's identity key pair (`taojie keygen --identity FILE`), for clients that
    /// come with identity keys; needs --authorized
    #[arg(long, value_name = "FILE", requires = "authorized")]
    pub identity: Option<PathBuf>,
    /// The client public keys let in (`taojie-x25519 BASE64 COMMENT` lines; re-read on SIGHUP)
    #[arg(long, value_name = "FILE", requires = "identity")]
    pub authorized: Option<PathBuf>,
    /// Let clients ask for a shell command line (`taojie exec --shell`), run as `sh -c`;
    /// without it only a program and its arguments run, no shell
    #[arg(long, conflicts_with = "allow")]
    pub shell: bool,
    /// Only this program may run (repeatable). Matched exactly against the program name the
    /// client sends: `--allow ls` allows `ls` (found on the server's PATH), not `/bin/ls`.
    /// Its arguments are not restricted: `--allow find` also allows `find / -exec sh -c ...`;
    /// for fixed command lines use --allow-exact
    #[arg(long, value_name = "PROGRAM")]
    pub allow: Vec<String>,
    /// Only this exact command line may run (repeatable): the program and every argument,
    /// split as a shell would (`--allow-exact 'df -h /srv'`); the same program with other
    /// arguments is refused. With --allow, a request runs if either allows it
    #[arg(long, value_name = "CMD ARGS", conflicts_with_all = ["shell", "classic"])]
    pub allow_exact: Vec<String>,
    /// Kill a command (its whole process group) after this many seconds; the client gets
    /// exit status 124, as from timeout(1)
    #[arg(long, value_name = "SECS", value_parser = crate::flags::positive_secs)]
    pub timeout: Option<f64>,
    /// Commands running at once; one more is refused with an error
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PROCS)]
    pub max_procs: usize,
    /// Also serve the seed's protocol on this TCP address: a raw command in, run by `sh -c`;
    /// `struct.pack('i', n)` and the output (stderr if any, else stdout) back. With --key the
    /// seed's HMAC challenge (SHA-256) comes first
    #[arg(long, value_name = "ADDR", conflicts_with = "allow")]
    pub classic: Option<String>,
    /// Run without a key. Only on loopback addresses, and anyone who can connect may run
    /// commands as you
    #[arg(long, conflicts_with_all = ["key", "identity"])]
    pub insecure_no_auth: bool,
    /// Limits on connections that have not proven their key yet
    #[command(flatten)]
    pub preauth: PreAuthArgs,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            listen: None,
            key: None,
            identity: None,
            authorized: None,
            shell: false,
            allow: Vec::new(),
            allow_exact: Vec::new(),
            timeout: None,
            max_procs: DEFAULT_MAX_PROCS,
            classic: None,
            insecure_no_auth: false,
            preauth: PreAuthArgs::default(),
        }
    }
}

/// Flags of `taojie exec`.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Exit status: the remote command's (128+N if signal N ended it, 124 if \
the server's --timeout did); 126/127 if it could not start; 255 if taojie could not connect, \
authenticate or was refused.

Examples:
  taojie exec 127.0.0.1:9512 --key exec.key -- uname -a
  tar cf - src | taojie exec 127.0.0.1:9512 --key exec.key -- tar xf - -C /tmp/copy
  taojie exec 127.0.0.1:9512 --key exec.key --shell -- 'ls | wc -l'"
)]
pub struct ClientArgs {
    /// Server address, HOST:PORT
    pub addr: String,
    /// Key file shared with the server [default: the key `taojie serve` created, if any]
    #[arg(long, value_name = "FILE", conflicts_with = "identity")]
    pub key: Option<PathBuf>,
    /// Your identity key (`taojie keygen --identity FILE`); the server must list FILE.pub.
    /// The server's own key is pinned in $XDG_CONFIG_HOME/taojie/known_hosts on first use
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Run the words as one command line through the server's shell (`sh -c`); the server
    /// must have been started with --shell
    #[arg(long)]
    pub shell: bool,
    /// Do not forward stdin; the command reads end-of-file at once
    #[arg(long, short = 'n')]
    pub no_stdin: bool,
    /// Talk to a server started with --insecure-no-auth
    #[arg(long, conflicts_with_all = ["key", "identity"])]
    pub insecure_no_auth: bool,
    /// Seconds to wait for the connection
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = crate::flags::positive_secs)]
    pub connect_timeout: f64,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `taojie exec`.
pub async fn client(args: ClientArgs) -> Result<ExitCode> {
    Ok(client::run(args).await)
}

/// Runs the exec service (native, and classic with `--classic`) until `shutdown` is
/// cancelled.
pub async fn serve(args: ServeArgs, shutdown: CancellationToken) -> Result<()> {
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
    let auth = crate::secure::flags::server_auth(
        "exec",
        args.key.as_deref(),
        args.identity.as_deref(),
        args.authorized.as_deref(),
        args.insecure_no_auth,
        &addrs,
    )?;
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
        timeout: args.timeout.map(|s| Duration::from_secs_f64(s.max(0.0))),
        procs: process::ProcLimit::new(args.max_procs),
        preauth: args.preauth.to_guard().for_service("exec"),
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
