//! The log level in force, changeable while the program runs: [`set`] swaps the filter
//! (`taojie serve --config` does at start and on SIGHUP), [`parse`] checks a level before.
use std::sync::OnceLock;

use anyhow::{Result, bail};
use tracing_subscriber::EnvFilter;

/// Replaces the filter of the subscriber installed with a reload handle.
type Swap = Box<dyn Fn(EnvFilter) -> Result<()> + Send + Sync>;

static SWAP: OnceLock<Swap> = OnceLock::new();

/// Keeps the way to replace the installed subscriber's filter; the first call wins.
pub(crate) fn keep<S>(handle: tracing_subscriber::reload::Handle<EnvFilter, S>)
where
    S: tracing::Subscriber + 'static,
{
    let _ = SWAP.set(Box::new(move |filter| {
        handle
            .reload(filter)
            .map_err(|e| anyhow::anyhow!("cannot change the log level: {e}"))
    }));
}

/// Checks `level`: a level name (`off`, `error`, `warn`, `info`, `debug`, `trace`) or
/// `RUST_LOG`-style directives (`info,taojie=debug`). A bare word that is neither is refused
/// rather than taken as a target name, so a misspelt level is an error, not silence.
pub fn parse(level: &str) -> Result<EnvFilter> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for part in level.split(',').map(str::trim) {
        if !part.contains('=') && !LEVELS.contains(&part.to_ascii_lowercase().as_str()) {
            bail!(
                "`{part}` is not a log level (off, error, warn, info, debug, trace) or a TARGET=LEVEL directive"
            );
        }
    }
    EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("bad log level `{level}`: {e}"))
}

/// Makes `level` (see [`parse`]) the level in force, for every line from now on.
pub fn set(level: &str) -> Result<()> {
    let filter = parse(level)?;
    match SWAP.get() {
        Some(swap) => swap(filter),
        None => bail!("cannot change the log level: logging was set up without a reload handle"),
    }
}
