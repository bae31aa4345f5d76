//! `taojie serve` with no service: every service on its default port on 127.0.0.1, with no
//! configuration. Services that need a key share one, created on first start in the user's
//! data directory (see [`crate::auth::default_path`]).
use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::secure::flags::ServerKeys;
use crate::server::Limits;
use crate::{auth, chat, echo, exec, files, time};

/// Runs every service on 127.0.0.1 at its default ports (or, with `any_port`, on ports the
/// kernel picks) until `shutdown` is cancelled; echo and daytime with `limits`, the others
/// with their own defaults.
pub async fn serve(limits: Limits, any_port: bool, shutdown: CancellationToken) -> Result<()> {
    let port = |default: u16| Some(format!("127.0.0.1:{}", if any_port { 0 } else { default }));
    let key_path = auth::default_path()?;
    let (_, created) = auth::load_or_create(&key_path)?;
    if created {
        eprintln!(
            "taojie: created a new key at {} (mode 600); clients on this machine use it \
             unless given --key, others need a copy",
            key_path.display()
        );
    } else {
        eprintln!("taojie: using the key at {}", key_path.display());
    }
    let echo = echo::Options {
        listen: port(echo::DEFAULT_PORT),
        udp: port(echo::DEFAULT_PORT),
        limits: limits.clone().into(),
        ..Default::default()
    };
    let time = time::ServeOptions {
        listen: port(time::DEFAULT_PORT),
        tcp: port(time::DEFAULT_PORT),
        sntp: port(time::DEFAULT_SNTP_PORT),
        limits: limits.into(),
        ..Default::default()
    };
    let keys = ServerKeys {
        key: Some(key_path),
        ..Default::default()
    };
    let exec = exec::ServeOptions {
        listen: port(exec::DEFAULT_PORT),
        keys: keys.clone(),
        ..Default::default()
    };
    // The files page too, with the key: its login URL is printed at start.
    let files = files::ServeOptions {
        listen: port(files::DEFAULT_PORT),
        web: port(files::web::DEFAULT_PORT),
        keys,
        ..Default::default()
    };
    let chat = chat::ServeOptions {
        listen: port(chat::DEFAULT_PORT),
        udp: port(chat::DEFAULT_PORT),
        web: port(chat::web::DEFAULT_PORT),
        ..Default::default()
    };
    tokio::try_join!(
        echo::serve(echo, shutdown.clone()),
        time::serve(time, shutdown.clone()),
        exec::serve(exec, shutdown.clone()),
        files::serve(files, shutdown.clone()),
        // A loopback chat room that nc and a browser can join, as in the seeds: no key.
        chat::serve(chat, shutdown),
    )?;
    Ok(())
}
