//! Time services and their client: the seed's UDP strftime server, daytime over TCP (RFC 867)
//! and SNTP (RFC 4330).
//!
//! `strftime` and `daytime` are the two services' answers, `sntp` the packet both SNTP sides
//! share, `sntp_server` and `sntp_client` the two sides, `client` the UDP retry loop and the
//! strftime and daytime clients.
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio_util::sync::CancellationToken;

use crate::server::{self, DatagramService, LiveLimits};

pub mod client;
pub mod daytime;
pub mod sntp;
pub mod sntp_client;
pub mod sntp_server;
pub mod strftime;

/// Default port of the strftime service (UDP) and of daytime (TCP) on `taojie serve`.
pub const DEFAULT_PORT: u16 = 9013;
/// Default SNTP port on `taojie serve` (NTP's 123, moved above 1024).
pub const DEFAULT_SNTP_PORT: u16 = 9123;

/// What `time::serve` runs. With no address at all, the three services on 127.0.0.1 at
/// their default ports.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// UDP address of the strftime service.
    pub listen: Option<String>,
    /// TCP address of the daytime service (RFC 867).
    pub tcp: Option<String>,
    /// UDP address of the SNTP service (RFC 4330).
    pub sntp: Option<String>,
    /// Stratum the SNTP service claims (default [`sntp_server::DEFAULT_STRATUM`]).
    pub stratum: Option<u8>,
    /// Connection limits (daytime).
    pub limits: LiveLimits,
}

/// What `time::run` asks, and how patiently.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Server address, HOST:PORT.
    pub addr: String,
    /// The strftime format to ask for (default: the server's, `%Y-%m-%d %X`).
    pub format: Option<String>,
    /// Ask a daytime server over TCP (RFC 867).
    pub tcp: bool,
    /// Ask an SNTP/NTP server: the time, the clock offset and the round-trip delay.
    pub sntp: bool,
    /// With `sntp`: print one JSON object instead of text.
    pub json: bool,
    /// Seconds to wait for an answer (per try; over TCP, for the connect and for the line).
    pub timeout: f64,
    /// Requests to send again after a timeout (UDP).
    pub retries: u32,
}

/// Runs the time services `args` names until `shutdown` is cancelled.
pub async fn serve(args: ServeOptions, shutdown: CancellationToken) -> Result<()> {
    let (udp, tcp, sntp) = match (&args.listen, &args.tcp, &args.sntp) {
        (None, None, None) => (
            Some(format!("127.0.0.1:{DEFAULT_PORT}")),
            Some(format!("127.0.0.1:{DEFAULT_PORT}")),
            Some(format!("127.0.0.1:{DEFAULT_SNTP_PORT}")),
        ),
        (u, t, s) => (u.clone(), t.clone(), s.clone()),
    };
    // Bind everything before announcing anything, so a taken port fails the whole start.
    let udp = match udp {
        Some(a) => Some(server::listen_udp(&a).await?),
        None => None,
    };
    let tcp = match tcp {
        Some(a) => Some(server::listen_tcp(&a).await?),
        None => None,
    };
    let sntp = match sntp {
        Some(a) => Some(server::listen_udp(&a).await?),
        None => None,
    };

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(socket) = udp {
        server::announce("time", "udp", &socket.local_addr()?);
        spawn_datagram(
            &mut tasks,
            "time",
            socket,
            strftime::StrftimeService::default(),
            &shutdown,
        );
    }
    if let Some(listener) = tcp {
        server::announce("daytime", listener.proto(), &listener.local_display());
        tasks.spawn(server::serve_stream(
            "daytime",
            listener,
            args.limits.clone(),
            daytime::handle,
            shutdown.clone().cancelled_owned(),
        ));
    }
    if let Some(socket) = sntp {
        server::announce("sntp", "udp", &socket.local_addr()?);
        let stratum = args.stratum.unwrap_or(sntp_server::DEFAULT_STRATUM);
        spawn_datagram(
            &mut tasks,
            "sntp",
            socket,
            sntp_server::SntpService { stratum },
            &shutdown,
        );
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

fn spawn_datagram(
    tasks: &mut tokio::task::JoinSet<()>,
    name: &'static str,
    socket: tokio::net::UdpSocket,
    service: impl DatagramService,
    shutdown: &CancellationToken,
) {
    tasks.spawn(server::serve_datagram(
        name,
        socket,
        service,
        shutdown.clone().cancelled_owned(),
    ));
}

/// `taojie time`: asks a server and prints the answer.
pub async fn run(args: ClientOptions) -> Result<ExitCode> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let patience = client::Patience {
        timeout: Duration::from_secs_f64(args.timeout.min(3600.0)),
        tries: args.retries.saturating_add(1).min(100),
    };
    let addrs = crate::addr::resolve(&args.addr).await?;
    if args.tcp {
        client::daytime(&addrs, patience).await
    } else if args.sntp {
        sntp_client::run(addrs[0], patience, args.json).await
    } else {
        client::strftime(addrs[0], args.format.as_deref(), patience).await
    }
}
