//! The limits every stream listener enforces, the flags that set them ([`LimitArgs`], which
//! a service's flags flatten, with defaults of its own where it needs them), and
//! [`LiveLimits`], limits a listener reads afresh for each new connection so that a reload
//! can change them.
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;

/// Default cap on concurrent connections per listener.
pub const DEFAULT_MAX_CONNS: usize = 10_000;

/// Limits a stream listener enforces on its connections.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once; further ones are accepted and closed at once.
    pub max_conns: usize,
    /// A connection with no bytes read or written for this long is closed.
    pub idle_timeout: Option<Duration>,
    /// How long open connections may go on after shutdown starts before they are cut.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: DEFAULT_MAX_CONNS,
            idle_timeout: Some(Duration::from_secs(300)),
            grace: Duration::from_secs(5),
        }
    }
}

/// Limits a listener reads afresh for each new connection: a change (SIGHUP with
/// `taojie serve --config`) applies to connections accepted after it, while open ones keep
/// the limits they started with. A plain [`Limits`] converts into limits that never change.
#[derive(Clone, Debug)]
pub struct LiveLimits(watch::Receiver<Limits>);

impl LiveLimits {
    /// Limits starting at `limits` that change whenever the returned sender sends.
    pub fn channel(limits: Limits) -> (watch::Sender<Limits>, LiveLimits) {
        let (tx, rx) = watch::channel(limits);
        (tx, LiveLimits(rx))
    }

    /// The limits in force now.
    pub fn now(&self) -> Limits {
        self.0.borrow().clone()
    }
}

impl Default for LiveLimits {
    fn default() -> Self {
        Limits::default().into()
    }
}

impl From<Limits> for LiveLimits {
    fn from(limits: Limits) -> Self {
        // With the sender gone the receiver keeps the last value for good.
        LiveLimits::channel(limits).1
    }
}

/// Limits every stream server takes.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Connections served at once; more are closed as soon as they are accepted
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNS)]
    pub max_conns: usize,
    /// Close a connection that moves no byte for this many seconds (0: never)
    #[arg(long, value_name = "SECS", default_value_t = 300.0, value_parser = crate::flags::secs)]
    pub idle_timeout: f64,
    /// On SIGINT/SIGTERM, let open connections finish for this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = crate::flags::secs)]
    pub grace: f64,
}

impl Default for LimitArgs {
    fn default() -> Self {
        LimitArgs {
            max_conns: DEFAULT_MAX_CONNS,
            idle_timeout: 300.0,
            grace: 5.0,
        }
    }
}

impl LimitArgs {
    /// The framework's limits these flags ask for.
    pub fn to_limits(&self) -> Limits {
        let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
        Limits {
            max_conns: self.max_conns.max(1),
            idle_timeout: (self.idle_timeout > 0.0).then(|| secs(self.idle_timeout)),
            grace: secs(self.grace),
        }
    }
}
