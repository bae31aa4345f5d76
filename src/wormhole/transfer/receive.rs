//! `taojie receive CODE`: open the wormhole, read the offer, ask, and land the text, file or
//! directory safely (see [`super::output`] and [`super::archive`]), then ack with the
//! SHA-256 of what arrived.
use std::io::{IsTerminal, Seek};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::super::messages::hex;
use super::super::session::{CodeChoice, Wormhole};
use super::super::transit::{Connection, PeerHints, Role, Suite, Transit, parse_hints};
use super::offer::{Offer, human};
use super::output::{PartFile, check_name};
use super::progress::Progress;
use super::{ReceiveOptions, archive, land, stream};

/// Runs `taojie receive`.
pub async fn receive(opts: ReceiveOptions) -> Result<()> {
    let meta = std::fs::metadata(&opts.out_dir)
        .with_context(|| format!("cannot receive into {}", opts.out_dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", opts.out_dir.display());
    }
    let session = super::session_options(&opts.endpoints, opts.extensions);
    let mut w = Wormhole::open(&session, CodeChoice::Given(opts.code.clone()), |_| {
        eprintln!("Waiting for the sender...");
    })
    .await?;
    let mut transit: Option<Transit> = None;
    let mut hints = PeerHints::default();
    let offer = loop {
        let m = match w.recv_json().await {
            Ok(m) => m,
            Err(e) => {
                w.close("errory").await;
                return Err(e);
            }
        };
        if let Some(e) = m.get("error") {
            w.close("happy").await;
            bail!(
                "the sender gave up: {}",
                e.as_str().unwrap_or("no reason given")
            );
        }
        if let Some(t) = m.get("transit") {
            hints = parse_hints(&t["hints-v1"]);
            if transit.is_none() {
                let t = Transit::new(Role::Receiver, opts.endpoints.transit.clone()).await?;
                w.send_json(&t.message()).await?;
                transit = Some(t);
            }
        }
        if let Some(o) = m.get("offer") {
            match Offer::parse(o).and_then(|o| check_offer(&o, &opts).map(|_| o)) {
                Ok(o) => break o,
                Err(e) => return refuse(w, e).await,
            }
        }
    };
    if let Offer::Message(text) = &offer {
        println!("{text}");
        w.send_json(&json!({"answer": {"message_ack": "ok"}}))
            .await?;
        w.close("happy").await;
        return Ok(());
    }
    if !ask(&offer, &opts).await? {
        w.send_json(&json!({"error": "transfer rejected"})).await?;
        w.close("happy").await;
        bail!("transfer rejected: nothing was written");
    }
    let transit = match transit {
        Some(t) => t,
        None => Transit::new(Role::Receiver, opts.endpoints.transit.clone()).await?,
    };
    // The part file opens before we say yes, so a refusal costs the sender nothing.
    let part = match &offer {
        Offer::File { name, .. } => {
            match PartFile::open(&opts.out_dir, name, opts.overwrite, false) {
                Ok(p) => Some(p),
                Err(e) => return refuse(w, e).await,
            }
        }
        _ => None,
    };
    w.send_json(&json!({"answer": {"file_ack": "ok"}})).await?;
    let key = w.derive_key(&format!("{}/transit-key", super::super::APPID));
    let suite = if matches!(offer, Offer::Entries { .. }) {
        Suite::ChaCha
    } else {
        Suite::SecretBox
    };
    // The mailbox is closed while transit connects (one server round trip off the start).
    let (conn, ()) = tokio::join!(transit.connect(&key, &hints, suite), w.close("happy"));
    let conn = conn?;
    eprintln!("Receiving ({})...", conn.description);
    match offer {
        Offer::File { size, .. } => {
            receive_file(conn, part.expect("opened above"), size, &opts).await
        }
        Offer::Directory {
            name,
            zip_size,
            bytes,
            ..
        } => receive_zip(conn, &name, zip_size, bytes, &opts).await,
        Offer::Entries { names, bytes, .. } => {
            land::receive_entries(conn, &opts, &names, bytes).await
        }
        Offer::Message(_) => unreachable!("answered above"),
    }
}

/// Tells the sender why, closes, and returns the reason as the error.
async fn refuse(mut w: Wormhole, e: anyhow::Error) -> Result<()> {
    let _ = w.send_json(&json!({ "error": format!("{e:#}") })).await;
    w.close("happy").await;
    Err(e)
}

/// Checks names, existing targets and free space before asking the user.
fn check_offer(offer: &Offer, opts: &ReceiveOptions) -> Result<()> {
    let (names, need): (Vec<&str>, u64) = match offer {
        Offer::Message(_) => return Ok(()),
        Offer::File { name, size } => (vec![name], *size),
        Offer::Directory {
            name,
            zip_size,
            bytes,
            ..
        } => (vec![name], zip_size.saturating_add(*bytes)),
        Offer::Entries { names, bytes, .. } => (names.iter().map(String::as_str).collect(), *bytes),
    };
    for n in &names {
        check_name(n)?;
        let target = opts.out_dir.join(n);
        if std::fs::symlink_metadata(&target).is_ok() {
            let replace_ok = opts.overwrite && matches!(offer, Offer::File { .. });
            if !replace_ok {
                bail!(
                    "refused: {} exists (use --overwrite to replace a file)",
                    target.display()
                );
            }
        }
    }
    if let Ok(free) = crate::sys::free_space(&opts.out_dir)
        && free < need
    {
        bail!(
            "refused: {} needs {} but only {} is free",
            opts.out_dir.display(),
            human(need),
            human(free)
        );
    }
    Ok(())
}

/// Shows the offer and asks (unless `--accept`): a line from stdin, `y` or `yes` accepts.
async fn ask(offer: &Offer, opts: &ReceiveOptions) -> Result<bool> {
    let what = match offer {
        Offer::File { name, size } => format!("a file, {} named {name:?}", human(*size)),
        Offer::Directory {
            name, bytes, files, ..
        } => {
            format!(
                "a directory named {name:?}: {files} files, {}",
                human(*bytes)
            )
        }
        Offer::Entries {
            names,
            files,
            bytes,
        } => {
            format!("{files} files, {} in {}", human(*bytes), names.join(", "))
        }
        Offer::Message(_) => unreachable!("texts are not asked about"),
    };
    eprintln!("Receiving {what} into {}", opts.out_dir.display());
    if opts.accept {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        eprintln!("(standard input is not a terminal: reading the answer from it)");
    }
    eprint!("ok? (y/N): ");
    let line = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).map(|_| s)
    })
    .await??;
    let yes = matches!(line.trim().to_lowercase().as_str(), "y" | "yes");
    Ok(yes)
}

async fn send_ack(conn: &mut Connection, sha: &[u8; 32]) -> Result<()> {
    let ack = json!({"ack": "ok", "sha256": hex(sha)});
    conn.writer.send(ack.to_string().as_bytes()).await?;
    conn.writer.shutdown().await
}

async fn receive_file(
    mut conn: Connection,
    part: PartFile,
    size: u64,
    opts: &ReceiveOptions,
) -> Result<()> {
    let progress = Progress::new(size, "receiving", opts.progress);
    let file = part.file.try_clone()?;
    let got = stream::recv_file(file, size, &mut conn.reader, &progress, Sha256::new()).await;
    progress.finish();
    let (_, sha) = match got {
        Ok(g) => g,
        Err(e) => {
            part.discard();
            return Err(e);
        }
    };
    let path = part.commit(None)?;
    send_ack(&mut conn, &sha).await?;
    eprintln!("Received file written to {}", path.display());
    Ok(())
}

async fn receive_zip(
    mut conn: Connection,
    name: &str,
    zip_size: u64,
    bytes: u64,
    opts: &ReceiveOptions,
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    // The zip itself lives in a file with no name beside the target: nothing to clean up.
    let zip = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(&opts.out_dir)
        .with_context(|| format!("cannot write in {}", opts.out_dir.display()))?;
    let progress = Progress::new(zip_size, "receiving", opts.progress);
    let (mut zip, sha) =
        stream::recv_file(zip, zip_size, &mut conn.reader, &progress, Sha256::new()).await?;
    progress.finish();
    zip.rewind()?;
    eprintln!("Unpacking the zip archive...");
    let out = opts.out_dir.clone();
    let name2 = name.to_string();
    let (path, done) =
        tokio::task::spawn_blocking(move || archive::unpack(zip, &out, &name2, bytes))
            .await
            .map_err(|_| anyhow!("the unpacking failed"))??;
    send_ack(&mut conn, &sha).await?;
    eprintln!(
        "Received {} files ({}) written to {}",
        done.files,
        human(done.bytes),
        path.display()
    );
    Ok(())
}
