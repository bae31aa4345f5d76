//! `taojie msg listen`: joins the LAN, prints each message once (and who comes and goes),
//! fetches the attachments the user accepts ([`super::inbox`] decides what and how much), and
//! says BR_EXIT on Ctrl-C or SIGTERM.
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use serde_json::json;
use tokio::sync::mpsc;

use super::attach::{self, Attachment, Request};
use super::inbox::{Caps, Inbox, Offer};
use super::members::Member;
use super::node::{Event, Message, Node};
use super::text::{neutralise, neutralise_name};
use super::{Common, PortUse};

/// What `taojie msg listen` does.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Who you are on the LAN, and where.
    pub common: Common,
    /// One JSON object per event (message, entry, exit, file) on standard output.
    pub json: bool,
    /// Fetch the attached files you accept into DIR (never replacing a file: name.1, name.2,
    /// … instead): each offer is shown with a number N; type `accept N` (or `accept all`) on
    /// standard input. Nothing is fetched unasked but from --accept-from senders.
    pub accept_files: Option<PathBuf>,
    /// Fetch without asking what this sender offers, from its own address only: IP or
    /// IP:PORT (port 2425 if not given), a name in the contacts file, or `contacts` for
    /// everyone in it (repeatable). A packet's source address can be forged, so name only
    /// senders on a LAN you trust.
    pub accept_from: Vec<String>,
    /// Largest file fetched, as the sender declares it (K, M, G suffixes).
    pub max_file_size: u64,
    /// Files offered from one message; the rest of its list is ignored.
    pub max_files: usize,
    /// Bytes fetched in all while listening.
    pub max_total: u64,
    /// Files fetched at once; more wait their turn.
    pub max_fetches: usize,
    /// Free space to leave on DIR's filesystem: a file that would eat into it is refused.
    pub min_free: u64,
}

impl ListenOptions {
    /// The inbox `--accept-files` asks for, with its caps and trusted senders.
    fn inbox(&self) -> Result<Option<Arc<Inbox>>> {
        let Some(dir) = &self.accept_files else {
            return Ok(None);
        };
        anyhow::ensure!(
            dir.is_dir(),
            "--accept-files {}: not a directory",
            dir.display()
        );
        let caps = Caps {
            max_file_size: self.max_file_size,
            max_files: self.max_files,
            max_total: self.max_total,
            max_fetches: self.max_fetches.max(1),
            min_free: self.min_free,
        };
        Ok(Some(Arc::new(Inbox::new(
            dir.clone(),
            caps,
            trusted(&self.accept_from)?,
        ))))
    }
}

/// The addresses `--accept-from` names.
fn trusted(senders: &[String]) -> Result<Vec<SocketAddr>> {
    let needs_book = senders
        .iter()
        .any(|s| super::targets::parse_addr(s).is_none());
    let book = if needs_book {
        super::targets::contacts()?
    } else {
        Default::default()
    };
    let mut out = Vec::new();
    for s in senders {
        if let Some(addr) = super::targets::parse_addr(s) {
            out.push(addr);
        } else if s == "contacts" {
            out.extend(book.values().copied());
        } else if let Some(addr) = book.get(s) {
            out.push(*addr);
        } else {
            let path = super::targets::contacts_path().unwrap_or_default();
            bail!(
                "--accept-from {s:?}: not an IP address, and no contact of that name in {}",
                path.display()
            );
        }
    }
    Ok(out)
}

/// Runs the listener until SIGINT or SIGTERM.
pub async fn run(args: ListenOptions) -> Result<ExitCode> {
    let inbox = args.inbox()?;
    let signal = crate::server::shutdown::on_signal_quietly()?;
    let mut started = args.common.start(PortUse::Required).await?;
    let node = started.node.clone();
    eprintln!("msg udp {}", node.local_addr()?);
    node.announce(&[]).await;
    let out = Output::new(args.json);
    let mut commands = inbox.is_some().then(read_commands);
    loop {
        tokio::select! {
            _ = signal.cancelled() => break,
            event = started.events.recv() => {
                let Some(event) = event else { break };
                out.event(&event);
                if let (Event::Message(m), Some(inbox)) = (&event, &inbox)
                    && !m.files.is_empty()
                {
                    let (offers, ignored) = inbox.offer(m);
                    let from = inbox.trusted_source(m);
                    out.offers(m, &offers, ignored, from.is_some());
                    if let Some(from) = from {
                        for offer in offers {
                            spawn_fetch(&node, inbox, offer, from, out);
                        }
                    }
                }
            }
            line = recv(&mut commands) => match (line, &inbox) {
                (Some(line), Some(inbox)) => accept(&line, &node, inbox, out),
                _ => commands = None,
            },
        }
    }
    node.leave().await;
    started.stop.cancel();
    Ok(ExitCode::SUCCESS)
}

/// Lines typed on standard input, read on a thread of their own (a blocked read must not
/// hold up the exit).
fn read_commands() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next typed line; never, once standard input has ended.
async fn recv(commands: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `accept N` or `accept all`: fetches those offers from the address they came from.
fn accept(line: &str, node: &Arc<Node>, inbox: &Arc<Inbox>, out: Output) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let which = match words[..] {
        [] => return,
        ["accept", "all"] => None,
        ["accept", n] => match n.trim_start_matches('#').parse() {
            Ok(n) => Some(n),
            Err(_) => return eprintln!("taojie: `accept N`: N is an offer's number"),
        },
        _ => return eprintln!("taojie: type `accept N` (an offer's number) or `accept all`"),
    };
    let offers = inbox.take(which);
    if offers.is_empty() {
        eprintln!("taojie: no such offer waiting (offers are kept 10 minutes)");
    }
    for offer in offers {
        let from = offer.message.addr;
        spawn_fetch(node, inbox, offer, from, out);
    }
}

/// Fetches one offer from `from` within the inbox's caps, and prints how it went.
fn spawn_fetch(node: &Arc<Node>, inbox: &Arc<Inbox>, offer: Offer, from: SocketAddr, out: Output) {
    let (node, inbox) = (node.clone(), inbox.clone());
    tokio::spawn(async move {
        let result = fetch(&node, &inbox, &offer, from).await;
        out.file(&offer.message, &offer.file, result);
    });
}

async fn fetch(node: &Node, inbox: &Inbox, offer: &Offer, from: SocketAddr) -> Result<PathBuf> {
    let reserved = inbox.reserve(&offer.file)?;
    let _turn = inbox.turn().await;
    let m = &offer.message;
    let enc = m.from.send_encoding();
    let (user, host) = (
        enc.encode(&node.identity().name),
        enc.encode(&node.identity().host),
    );
    let local = node
        .local_addr()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip());
    let req = Request {
        peer: from,
        number: m.number,
        own_number: node.next_number(),
        user: &user,
        host: &host,
        local,
    };
    let result = attach::fetch(&req, &offer.file, inbox.dir()).await;
    inbox.release(reserved, result.is_ok());
    result
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

    /// Prints the offers of one message: numbered for `accept N`, or being fetched.
    fn offers(&self, m: &Message, offers: &[Offer], ignored: usize, fetching: bool) {
        for o in offers {
            self.print(&if self.json {
                json!({
                    "event": "offer",
                    "addr": m.addr.to_string(),
                    "packet": m.number,
                    "offer": o.number,
                    "name": o.file.name,
                    "size": o.file.size,
                    "fetching": fetching,
                    "time": now(),
                })
                .to_string()
            } else {
                let what = if fetching {
                    "fetching (a sender named by --accept-from)".to_string()
                } else {
                    format!("type `accept {}` to fetch it", o.number)
                };
                format!(
                    "    offer {}: {} ({} bytes): {what}",
                    o.number,
                    neutralise_name(&o.file.name),
                    o.file.size
                )
            });
        }
        if ignored > 0 {
            self.print(&if self.json {
                json!({
                    "event": "ignored",
                    "addr": m.addr.to_string(),
                    "packet": m.number,
                    "files": ignored,
                    "time": now(),
                })
                .to_string()
            } else {
                format!(
                    "    {ignored} more files ignored (--max-files: at most {} from one message)",
                    offers.len()
                )
            });
        }
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
            format!("\x1b[{}m{name}\x1b[0m", crate::tty::colour::of(m.name()))
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
