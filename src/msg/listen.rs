//! `taojie msg listen`: joins the LAN, prints each message once (and who comes and goes),
//! fetches attachments when asked, and says BR_EXIT on Ctrl-C or SIGTERM.
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::attach::{self, Attachment, Request};
use super::members::Member;
use super::node::{Event, Message, Node};
use super::text::{neutralise, neutralise_name};
use super::{Common, PortUse};

/// Flags of `taojie msg listen`.
#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// One JSON object per event (message, entry, exit, file) on standard output
    #[arg(long)]
    pub json: bool,
    /// Fetch attached files into DIR (never replacing a file: name.1, name.2, … instead)
    #[arg(long, value_name = "DIR")]
    pub accept_files: Option<PathBuf>,
}

/// Runs the listener until SIGINT or SIGTERM.
pub async fn run(args: ListenArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.accept_files {
        anyhow::ensure!(
            dir.is_dir(),
            "--accept-files {}: not a directory",
            dir.display()
        );
    }
    let signal = crate::server::shutdown::on_signal()?;
    let mut started = args.common.start(PortUse::Required).await?;
    let node = started.node.clone();
    eprintln!("msg udp {}", node.local_addr()?);
    node.announce(&[]).await;
    let out = Output::new(args.json);
    loop {
        tokio::select! {
            _ = signal.cancelled() => break,
            event = started.events.recv() => {
                let Some(event) = event else { break };
                out.event(&event);
                if let (Event::Message(m), Some(dir)) = (&event, &args.accept_files)
                    && !m.files.is_empty()
                {
                    let (node, m, dir, out) = (node.clone(), m.clone(), dir.clone(), out);
                    tokio::spawn(async move { fetch_all(&node, &m, &dir, &out).await });
                }
            }
        }
    }
    node.leave().await;
    started.stop.cancel();
    Ok(ExitCode::SUCCESS)
}

/// Fetches every regular file of `m` into `dir`, one after the other.
async fn fetch_all(node: &Node, m: &Message, dir: &std::path::Path, out: &Output) {
    let enc = m.from.send_encoding();
    let (user, host) = (
        enc.encode(&node.identity().name),
        enc.encode(&node.identity().host),
    );
    let local = node
        .local_addr()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip());
    for file in &m.files {
        let req = Request {
            peer: m.addr,
            number: m.number,
            own_number: node.next_number(),
            user: &user,
            host: &host,
            local,
        };
        let result = attach::fetch(&req, file, dir).await;
        out.file(m, file, result);
    }
}

/// Where events are printed: human lines (coloured names on a terminal) or JSON lines.
#[derive(Clone, Copy)]
pub struct Output {
    json: bool,
    colour: bool,
}

impl Output {
    /// Output as `--json` asks, coloured when standard output is a terminal.
    pub fn new(json: bool) -> Self {
        Output {
            json,
            colour: !json && std::io::stdout().is_terminal(),
        }
    }

    /// Prints one event.
    pub fn event(&self, event: &Event) {
        self.print(&if self.json {
            json_event(event).to_string()
        } else {
            human_event(event, self.colour)
        });
    }

    fn file(&self, m: &Message, file: &Attachment, result: Result<PathBuf>) {
        let line = match (&result, self.json) {
            (_, true) => json!({
                "event": "file",
                "addr": m.addr.to_string(),
                "packet": m.number,
                "name": file.name,
                "size": file.size,
                "path": result.as_ref().ok().map(|p| p.display().to_string()),
                "error": result.as_ref().err().map(|e| format!("{e:#}")),
                "time": now(),
            })
            .to_string(),
            (Ok(path), false) => format!("    saved {}", path.display()),
            (Err(e), false) => format!(
                "    could not fetch {}: {}",
                neutralise_name(&file.name),
                neutralise(&format!("{e:#}"))
            ),
        };
        self.print(&line);
    }

    fn print(&self, line: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The JSON object of one event; the keys are fixed by PRODUCT.md.
pub fn json_event(event: &Event) -> serde_json::Value {
    let base = |kind: &str, m: &Member| {
        json!({
            "event": kind,
            "user": m.user,
            "host": m.host,
            "nick": m.nick,
            "group": m.group,
            "addr": m.addr.to_string(),
            "version": m.version,
            "text": serde_json::Value::Null,
            "packet": serde_json::Value::Null,
            "time": now(),
        })
    };
    match event {
        Event::Message(msg) => {
            let mut v = base("message", &msg.from);
            v["addr"] = json!(msg.addr.to_string());
            v["text"] = json!(msg.text);
            v["packet"] = json!(msg.number);
            v["broadcast"] = json!(msg.broadcast);
            v["files"] = json!(msg.files);
            v
        }
        Event::Entry(m) => base("entry", m),
        Event::Exit(m) => base("exit", m),
    }
}

/// One event as a person reads it; every name and text neutralised.
pub fn human_event(event: &Event, colour: bool) -> String {
    let time = chrono::Local::now().format("%H:%M:%S");
    let who = |m: &Member| {
        let name = neutralise_name(m.name());
        let name = if colour {
            format!("\x1b[{}m{name}\x1b[0m", crate::chat::colour::of(m.name()))
        } else {
            name
        };
        format!(
            "{name} ({}@{}, {})",
            neutralise_name(&m.user),
            neutralise_name(&m.host),
            m.addr
        )
    };
    match event {
        Event::Message(msg) => {
            let text = neutralise(&msg.text).replace('\n', "\n    ");
            let mut line = format!("[{time}] {}: {text}", who(&msg.from));
            for f in &msg.files {
                line.push_str(&format!(
                    "\n    [file] {} ({} bytes)",
                    neutralise_name(&f.name),
                    f.size
                ));
            }
            line
        }
        Event::Entry(m) => format!(
            "[{time}] *** {} is on the LAN ({})",
            who(m),
            neutralise_name(&m.version)
        ),
        Event::Exit(m) => format!("[{time}] *** {} left", who(m)),
    }
}
