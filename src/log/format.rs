//! How log lines look ([`LogFormat`]) and installing the global subscriber that writes them:
//! `info` and up unless `RUST_LOG` says otherwise, with a filter [`level`](super::level) can
//! swap while the program runs.
use std::io::IsTerminal;

/// How log lines are written on standard error.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per event, coloured on a terminal
    #[default]
    Human,
    /// One JSON object per line, for log collectors
    Json,
}

/// Installs the global subscriber, writing to `writer` (standard error, or a writer that
/// wraps it): `info` and up unless `RUST_LOG` says otherwise, as text coloured only on a
/// terminal, or as one JSON object per line.
pub(super) fn install<W>(format: LogFormat, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    // In both formats the filter can be swapped later (`serve --config` sets the file's level,
    // SIGHUP changes it); callsites' interest stays cached between swaps.
    match format {
        LogFormat::Human => {
            let logs = logs
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter_reloading();
            super::level::keep(logs.reload_handle());
            logs.init()
        }
        LogFormat::Json => {
            // `{"timestamp", "level", "message", ...fields, "span": {"service", "peer",
            // "conn", "name"}}`: the event's fields at the top, the connection's in `span`.
            let logs = logs
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_filter_reloading();
            super::level::keep(logs.reload_handle());
            logs.init()
        }
    }
}
