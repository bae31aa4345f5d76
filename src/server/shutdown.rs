//! The shutdown signal: the first SIGINT or SIGTERM starts a graceful shutdown, a second one
//! ends the process at once.
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// What a server says when the first signal comes.
const SERVER_SHUTDOWN: &str = "shutting down: no new connections; a second signal stops at once";

/// Returns a token cancelled on the first SIGINT or SIGTERM, which a server logs ("shutting
/// down: no new connections"); a second signal exits with status 130 without waiting for
/// connections to finish.
pub fn on_signal() -> std::io::Result<CancellationToken> {
    watch(Some(SERVER_SHUTDOWN))
}

/// Like [`on_signal`], for a program that is not a server (`msg listen`): the first signal
/// ends it without a word about connections it never accepted.
pub fn on_signal_quietly() -> std::io::Result<CancellationToken> {
    watch(None)
}

fn watch(say: Option<&'static str>) -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let trigger = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if let Some(say) = say {
            tracing::info!("{say}");
        }
        trigger.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(130);
    });
    Ok(token)
}
