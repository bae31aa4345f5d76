//! `taojie send`: open a wormhole, offer a text, a file, a directory (a zip for wormhole
//! peers; entries streamed for taojie peers), wait for the answer, move the bytes through
//! transit, and finish when the receiver's ack carries the same SHA-256.
use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::super::messages::hex;
use super::super::session::{CodeChoice, Wormhole};
use super::super::transit::{Role, Suite, Transit, parse_hints};
use super::offer::{Offer, human};
use super::progress::Progress;
use super::{SendOptions, What, archive, ext, stream};

/// What is sent, once the peer's abilities are known.
enum Source {
    Text(String),
    File {
        file: File,
        name: String,
        size: u64,
    },
    Zip {
        file: File,
        name: String,
        packed: archive::Packed,
    },
    Entries(ext::Manifest),
}

/// Runs `taojie send`.
pub async fn send(opts: SendOptions) -> Result<()> {
    // Check the paths before anyone is given a code.
    if let What::Paths(paths) = &opts.what {
        for p in paths {
            std::fs::metadata(p).with_context(|| format!("cannot send {}", p.display()))?;
        }
    }
    let choice = match &opts.code {
        Some(c) => CodeChoice::Given(c.clone()),
        None => CodeChoice::Allocate(opts.code_length),
    };
    let session = super::session_options(&opts.endpoints, opts.extensions);
    let w = Wormhole::open(&session, choice, |code| {
        let code = code.as_str();
        eprintln!("Wormhole code is: {code}");
        eprintln!("On the other computer, please run:  taojie receive {code}");
        eprintln!("                          (or:  wormhole receive {code})");
    })
    .await?;
    let source = match &opts.what {
        What::Text(t) => Source::Text(t.clone()),
        What::Paths(paths) => {
            if opts.extensions && ext::peer_has(&w.peer_app_versions) {
                Source::Entries(ext::Manifest::scan(paths)?)
            } else {
                v1_source(paths)?
            }
        }
    };
    send_on(w, source, &opts).await
}

/// A single file as itself, anything else as one zip.
fn v1_source(paths: &[PathBuf]) -> Result<Source> {
    if let [p] = paths {
        let meta = std::fs::metadata(p)?;
        if meta.is_file() {
            let name = p
                .file_name()
                .ok_or_else(|| anyhow!("{} has no file name", p.display()))?
                .to_string_lossy()
                .into_owned();
            return Ok(Source::File {
                file: File::open(p)?,
                name,
                size: meta.len(),
            });
        }
    }
    let name = match paths {
        [p] => p
            .canonicalize()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "files".into()),
        _ => format!("taojie-{}-items", paths.len()),
    };
    eprintln!("Building a zip archive of {name} for a wormhole receiver...");
    // Inside the zip, a single directory's contents sit at the top, as `wormhole send` has it.
    let roots: Vec<(PathBuf, String)> = match paths {
        [p] => vec![(p.clone(), ".".into())],
        _ => paths
            .iter()
            .map(|p| {
                let n = p
                    .canonicalize()?
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                Ok((p.clone(), n.unwrap_or_else(|| "root".into())))
            })
            .collect::<Result<_>>()?,
    };
    let (file, packed) = archive::zip_dir(&roots, anonymous_file()?)?;
    Ok(Source::Zip { file, name, packed })
}

/// A temporary file with no name (O_TMPFILE in the temporary directory).
fn anonymous_file() -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(std::env::temp_dir())
        .context("cannot create a temporary file for the zip archive")
}

async fn send_on(mut w: Wormhole, source: Source, opts: &SendOptions) -> Result<()> {
    let offer = match &source {
        Source::Text(t) => Offer::Message(t.clone()),
        Source::File { name, size, .. } => Offer::File {
            name: name.clone(),
            size: *size,
        },
        Source::Zip { name, packed, .. } => Offer::Directory {
            name: name.clone(),
            zip_size: packed.zip_size,
            bytes: packed.bytes,
            files: packed.files,
        },
        Source::Entries(m) => m.offer(),
    };
    let transit = match source {
        Source::Text(_) => None,
        _ => {
            let t = Transit::new(Role::Sender, opts.endpoints.transit.clone()).await?;
            w.send_json(&t.message()).await?;
            Some(t)
        }
    };
    match &offer {
        Offer::Message(t) => eprintln!("Sending a text message ({})", human(t.len() as u64)),
        Offer::File { name, size } => eprintln!("Sending {} file named {name:?}", human(*size)),
        Offer::Directory { name, zip_size, .. } => {
            eprintln!(
                "Sending directory ({} zipped) named {name:?}",
                human(*zip_size)
            )
        }
        Offer::Entries {
            names,
            files,
            bytes,
        } => eprintln!(
            "Sending {} in {files} files ({})",
            human(*bytes),
            names.join(", ")
        ),
    }
    w.send_json(&json!({ "offer": offer.to_json() })).await?;
    let mut peer_hints = Default::default();
    let answer = loop {
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
                "the receiver refused: {}",
                e.as_str().unwrap_or("no reason given")
            );
        }
        if let Some(t) = m.get("transit") {
            peer_hints = parse_hints(&t["hints-v1"]);
        }
        if let Some(a) = m.get("answer") {
            break a.clone();
        }
    };
    let key = w.derive_key(&format!("{}/transit-key", super::super::APPID));
    let Some(transit) = transit else {
        w.close("happy").await;
        if answer.get("message_ack").and_then(Value::as_str) == Some("ok") {
            eprintln!("text message sent");
            return Ok(());
        }
        bail!("the receiver did not take the message: {answer}");
    };
    if answer.get("file_ack").and_then(Value::as_str) != Some("ok") {
        w.close("happy").await;
        bail!("the receiver did not accept the offer: {answer}");
    }
    // Entries go to a taojie peer: its records in ChaCha20-Poly1305.
    let suite = if matches!(source, Source::Entries(_)) {
        Suite::ChaCha
    } else {
        Suite::SecretBox
    };
    // The mailbox is closed while transit connects: a server round trip (with its database
    // commits, on the Python server) less before the first byte moves.
    let (conn, ()) = tokio::join!(transit.connect(&key, &peer_hints, suite), w.close("happy"));
    let mut conn = conn?;
    eprintln!("Sending ({})...", conn.description);
    let (file, size) = match source {
        Source::File { file, size, .. } => (file, size),
        Source::Zip { file, packed, .. } => (file, packed.zip_size),
        Source::Entries(m) => return ext::send_entries(m, conn, opts.progress).await,
        Source::Text(_) => unreachable!("texts have no transit"),
    };
    let progress = Progress::new(size, "sending", opts.progress);
    let sha = stream::send_file(
        file,
        size,
        stream::CHUNK_V1,
        &mut conn.writer,
        &progress,
        Sha256::new(),
    )
    .await?;
    progress.finish();
    eprintln!("File sent, waiting for the receiver's confirmation...");
    let ack: Value = serde_json::from_slice(
        &conn
            .reader
            .recv()
            .await
            .context("the receiver closed the connection before confirming")?,
    )
    .context("the receiver's confirmation is not JSON")?;
    if ack.get("ack").and_then(Value::as_str) != Some("ok") {
        bail!("the transfer failed (the receiver says {ack})");
    }
    if let Some(theirs) = ack.get("sha256").and_then(Value::as_str)
        && theirs != hex(&sha)
    {
        bail!("the transfer failed: the receiver's SHA-256 differs from ours");
    }
    let _ = conn.writer.shutdown().await;
    eprintln!("Confirmation received. Transfer complete.");
    Ok(())
}
