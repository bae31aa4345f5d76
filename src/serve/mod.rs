//! `taojie serve`: which services run and how. With no SERVICE, [`all`] of them on
//! 127.0.0.1; with one, that one ([`Service`]); with `--config FILE`, those the file names
//! ([`config`], which also reloads it on SIGHUP); and beside them, with `--metrics`, the
//! Prometheus endpoint ([`metrics`]).
//!
//! This floor sits between the command line and the services: it takes the clap definitions
//! of `taojie serve` (the config file is checked with the same ones) and hands each service
//! its plain options.
use std::future::Future;
use std::pin::Pin;

use anyhow::Result;
use clap::{ArgMatches, Args, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::server::{Caps, LimitArgs, Limits, LiveCaps, LiveLimits, shutdown};
use crate::wormhole::relay;
use crate::{chat, echo, exec, files, forward, proxy, time};

pub mod all;
pub mod args;
pub mod config;
pub mod metrics;

use args::{ChatArgs, EchoArgs, ExecArgs, FilesArgs, ForwardArgs, ProxyArgs, RelayArgs, TimeArgs};

/// `taojie serve [SERVICE]`.
#[derive(Args, Debug)]
#[command(
    after_help = "With no SERVICE, serves every service on 127.0.0.1 and prints one \
`SERVICE PROTO ADDRESS` line per socket: echo 9007 (tcp, udp), time 9013 (udp) and daytime 9013 \
(tcp), sntp 9123 (udp), chat 9006 (tcp, udp; no key) with its page on chat-web 9080 (tcp; \
http://127.0.0.1:9080/), exec 9512 and files 9021 (tcp). exec and \
files use a key created on first start in $XDG_DATA_HOME/taojie/key (else \
~/.local/share/taojie/key); files live beside it in taojie/files. \
With --metrics PORT (before or after SERVICE), also `metrics tcp 127.0.0.1:PORT`: Prometheus \
metrics at http://127.0.0.1:PORT/metrics, labelled by service.

With --config FILE, the services FILE has a section for (see config/taojie.toml: every key \
is a flag of `taojie serve SERVICE`, kebab-case):
  taojie serve --check-config /etc/taojie/taojie.toml     check it; binds nothing
  taojie serve --config /etc/taojie/taojie.toml           run it; SIGHUP re-reads it
  taojie serve --config taojie.toml exec --max-procs 4    exec alone, the flag over the file"
)]
pub struct ServeArgs {
    /// The one service to run (default: all of them on 127.0.0.1)
    #[command(subcommand)]
    pub service: Option<Service>,
    /// Connection limits for echo and daytime when started with no SERVICE (exec, files and
    /// chat keep their own defaults); with --config, for every section that takes them
    #[command(flatten)]
    pub limits: LimitArgs,
    /// With no SERVICE: every socket on 127.0.0.1 port 0, so the kernel picks free ports (the
    /// printed lines say which); for tests and runs beside another taojie
    #[arg(long, conflicts_with = "config")]
    pub any_port: bool,
    /// The metrics endpoint
    #[command(flatten)]
    pub metrics: metrics::MetricsArgs,
    /// Threads that run the services (before or after SERVICE): 1 runs everything on one
    /// thread, which spends the least CPU per request (no hand-off between threads; one
    /// core's worth of traffic); N gives N worker threads (with --per-core, N threads of
    /// one runtime each). Default: one per CPU
    #[arg(long, value_name = "N", global = true,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Thread-per-core (before or after SERVICE): one single-threaded runtime per CPU (or per
    /// --threads N), each accepting on its own SO_REUSEPORT copy of every TCP listener, so a
    /// connection lives on the one thread that accepted it (no work stealing, no wake-up of
    /// another thread per request). The connection caps, limits, reloads and metrics stay
    /// process-wide; UDP and Unix sockets and shared brokers run on the first thread
    #[arg(long, global = true)]
    pub per_core: bool,
    /// Run the services FILE (TOML) has a `[SERVICE]` section for, each with the section's keys
    /// as its flags (same names: max-conns = 50); flags given here override the file, and with
    /// a SERVICE only that one runs. SIGHUP re-reads FILE: connection and handshake limits and
    /// log-level apply to new connections, the rest is reported as needing a restart
    #[arg(long, value_name = "FILE", conflicts_with = "check_config")]
    pub config: Option<std::path::PathBuf>,
    /// Check FILE as --config would read it (keys, values, key files) and exit, binding
    /// nothing: `FILE: ok (SERVICES)` and status 0, or the error naming the line
    #[arg(long, value_name = "FILE")]
    pub check_config: Option<std::path::PathBuf>,
}

impl ServeArgs {
    /// Threads (one runtime each) in thread-per-core mode: --threads N, else one per CPU.
    pub fn cores(&self) -> usize {
        match self.threads {
            Some(n) => n.into(),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The services `taojie serve` can run one at a time.
#[derive(Subcommand, Debug)]
pub enum Service {
    /// Echo (RFC 862) over TCP, UDP and Unix sockets, plain or --upper
    #[command(
        after_help = "Example: taojie serve echo --listen 127.0.0.1:0 --udp 127.0.0.1:0 --upper"
    )]
    Echo(EchoArgs),
    /// Time: the seed's UDP strftime service, daytime over TCP (RFC 867), SNTP (RFC 4330)
    #[command(
        after_help = "Example: taojie serve time --listen 127.0.0.1:0 --tcp 127.0.0.1:0 --sntp 127.0.0.1:0"
    )]
    Time(TimeArgs),
    /// Remote command execution, authenticated, output streamed; --classic for the seed's protocol
    #[command(after_help = "Examples:
  taojie keygen exec.key
  taojie serve exec --listen 127.0.0.1:9512 --key exec.key --allow uname --allow ls
  taojie serve exec --listen 127.0.0.1:0 --key exec.key --shell --timeout 60
  taojie serve exec --classic 127.0.0.1:8080 --key exec.key     the seed's client works

A command runs in a process group of its own; the whole group is killed when its client
disconnects, at --timeout, and 5 s after SIGINT/SIGTERM stops the server. What it started that
left the group (setsid -f, a double fork) is killed too: the server is its subreaper. Its stdout is a Unix
socket (as under sshd: it buffers more than a pipe), its stdin and stderr are pipes.")]
    Exec(ExecArgs),
    /// Files: uploads, downloads and listings under --root, verified and resumable
    #[command(
        after_help = "Example: taojie serve files --listen 127.0.0.1:0 --root /srv/files --key key --classic 127.0.0.1:0"
    )]
    Files(FilesArgs),
    /// Chat: a TCP line broker (nc works as a client) with names and rooms, a UDP hub, and
    /// a page for browsers
    #[command(after_help = "\
Examples:
  taojie serve chat --listen 127.0.0.1:0 --udp 127.0.0.1:0
  nc 127.0.0.1 9006                      any line client joins; lines arrive as `<name> text`
  taojie serve chat --listen 0.0.0.0:9006 --key chat.key   taojie clients with the key only
  taojie serve chat --listen 127.0.0.1:9006 --web 127.0.0.1:9080
      then open http://127.0.0.1:9080/?name=ann&room=dev   (an invitation link: joins #dev)
      with --key, the page needs the token in the `chat-web login URL` printed at start
  nats-server -js -a 127.0.0.1 -p 4222 -sd /var/lib/nats &
  taojie serve chat --listen 127.0.0.1:9006 --nats nats://127.0.0.1:4222
  taojie serve chat --listen 127.0.0.1:9106 --nats nats://127.0.0.1:4222
      two brokers, one chat: rooms, unique names, /who and the last 20 lines span both")]
    Chat(ChatArgs),
    /// A Magic Wormhole mailbox server and transit relay, for `taojie send` and any wormhole
    /// client
    Relay(RelayArgs),
    /// A SOCKS5 and HTTP (CONNECT and plain http://) proxy on one port, with destination rules
    /// and users
    Proxy(ProxyArgs),
}

/// A service running until its shutdown token is cancelled.
pub type Running = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// Limits a running service follows instead of its flags' (`serve --config` changes them on
/// SIGHUP).
#[derive(Debug, Default)]
pub struct Live {
    /// Connection limits.
    pub limits: Option<LiveLimits>,
    /// Handshake caps.
    pub caps: Option<LiveCaps>,
}

impl Service {
    /// The connection limits its flags ask for; exec has none to change.
    pub fn limits(&self) -> Option<Limits> {
        match self {
            Service::Echo(a) => Some(a.limits.to_limits()),
            Service::Time(a) => Some(a.limits.to_limits()),
            Service::Files(a) => Some(a.limits.to_limits()),
            Service::Chat(a) => Some(a.limits.to_limits()),
            Service::Proxy(a) => Some(a.limits.to_limits()),
            Service::Exec(_) | Service::Relay(_) => None,
        }
    }

    /// The handshake caps its flags ask for; echo and time have no handshake.
    pub fn caps(&self) -> Option<Caps> {
        match self {
            Service::Exec(a) => Some(a.preauth.caps()),
            Service::Files(a) => Some(a.preauth.caps()),
            Service::Chat(a) => Some(a.preauth.caps()),
            Service::Proxy(a) => Some(a.preauth.caps()),
            Service::Echo(_) | Service::Time(_) | Service::Relay(_) => None,
        }
    }

    /// Runs the service with the options its flags make, following `live` where it says,
    /// until `shutdown` is cancelled.
    pub fn serve(self, live: Live, shutdown: CancellationToken) -> Running {
        let Live { limits, caps } = live;
        match self {
            Service::Echo(a) => {
                let mut o = echo::Options::from(a);
                o.limits = limits.unwrap_or(o.limits);
                Box::pin(echo::serve(o, shutdown))
            }
            Service::Time(a) => {
                let mut o = time::ServeOptions::from(a);
                o.limits = limits.unwrap_or(o.limits);
                Box::pin(time::serve(o, shutdown))
            }
            Service::Exec(a) => {
                let mut o = exec::ServeOptions::from(a);
                o.preauth = caps.unwrap_or(o.preauth);
                Box::pin(exec::serve(o, shutdown))
            }
            Service::Files(a) => {
                let mut o = files::ServeOptions::from(a);
                o.limits = limits.unwrap_or(o.limits);
                o.preauth = caps.unwrap_or(o.preauth);
                Box::pin(files::serve(o, shutdown))
            }
            Service::Chat(a) => {
                let mut o = chat::ServeOptions::from(a);
                o.limits = limits.unwrap_or(o.limits);
                o.preauth = caps.unwrap_or(o.preauth);
                Box::pin(chat::serve(o, shutdown))
            }
            Service::Relay(a) => Box::pin(relay::serve(a.into(), shutdown)),
            Service::Proxy(a) => {
                let mut o = proxy::ServeOptions::from(a);
                o.limits = limits.unwrap_or(o.limits);
                o.preauth = caps.unwrap_or(o.preauth);
                Box::pin(proxy::serve(o, shutdown))
            }
        }
    }
}

/// Runs `taojie serve` until SIGINT or SIGTERM; `matches` are clap's for `serve` (which flags
/// were given rather than defaulted: with `--config` they override the file's keys).
pub async fn run(mut args: ServeArgs, matches: Option<&ArgMatches>) -> Result<()> {
    // The proxy's --allow and --deny are one list, in the order given.
    if let (Some(Service::Proxy(a)), Some(m)) = (
        &mut args.service,
        matches.and_then(|m| m.subcommand_matches("proxy")),
    ) {
        a.order(m);
    }
    let overrides = || {
        matches
            .map(config::Overrides::from_matches)
            .unwrap_or_default()
    };
    if let Some(path) = &args.check_config {
        return config::check(path, &overrides()).await;
    }
    if args.per_core {
        // Before anything binds: only then are TCP listeners bound to be spread.
        crate::server::per_core::set_cores(args.cores());
    }
    if let Some(path) = &args.config {
        // Read before anything binds: a bad file is one line and exit status 1.
        let config = config::Config::load(path, &overrides())?;
        config.resolve_addresses().await?;
        let token = shutdown::on_signal()?;
        // `--metrics` on the command line wins over the file's `metrics`.
        let metrics = metrics::MetricsArgs {
            metrics: args.metrics.metrics.or_else(|| config.metrics.clone()),
        };
        let metrics = start_metrics(&metrics, &token).await?;
        config::serve(config, token).await?;
        if let Some(m) = metrics {
            let _ = m.await;
        }
        return Ok(());
    }
    let token = shutdown::on_signal()?;
    let metrics = start_metrics(&args.metrics, &token).await?;
    match args.service {
        None => all::serve(args.limits.to_limits(), args.any_port, token).await?,
        Some(service) => service.serve(Live::default(), token).await?,
    }
    if let Some(m) = metrics {
        // The services are done; the endpoint stopped with them (same token).
        let _ = m.await;
    }
    Ok(())
}

/// Runs `taojie forward` until SIGINT or SIGTERM (then stops gracefully), with its metrics
/// endpoint if `--metrics` asks for one.
pub async fn forward(args: ForwardArgs) -> Result<()> {
    let token = shutdown::on_signal()?;
    let metrics = metrics::MetricsArgs {
        metrics: args.metrics.clone(),
    };
    let metrics = start_metrics(&metrics, &token).await?;
    forward::run(args.into(), token.cancelled_owned()).await?;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    Ok(())
}

/// Binds the metrics endpoint `--metrics` asks for, if any (before the services, so a bad
/// address is an error before anything serves), and runs it until `token` is cancelled.
async fn start_metrics(
    args: &metrics::MetricsArgs,
    token: &CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    Ok(match &args.metrics {
        Some(spec) => Some(tokio::spawn(
            metrics::serve(spec, token.clone().cancelled_owned()).await?,
        )),
        None => None,
    })
}
