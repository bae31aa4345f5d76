//! `taojie msg chat`: seed 002's UDP "QQ" grown up. Pick whom to talk to from the LAN or the
//! contact book (`/to NAME`), type lines, see each one acknowledged; messages from anyone
//! appear above the input line, each name in the colour `taojie chat` gives it.
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use tokio::sync::mpsc;

use super::node::{Event, Node};
use super::text::{neutralise, neutralise_name};
use super::{Common, PortUse, targets};
use crate::tty::console::{self, terminated};

/// Whom `taojie msg chat` talks to first.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// Who you are on the LAN, and where.
    pub common: Common,
    /// Whom to talk to first (a name on the LAN, a contact or an address).
    pub to: Option<String>,
}

/// Whom the typed lines go to.
#[derive(Clone)]
struct Recipient {
    addr: SocketAddr,
    name: String,
}

/// Runs the chat until /quit, Ctrl-D, Ctrl-C or SIGTERM.
pub async fn run(args: ChatOptions) -> Result<ExitCode> {
    let mut started = args.common.start(PortUse::Required).await?;
    let node = started.node.clone();
    eprintln!("msg udp {}", node.local_addr()?);
    node.announce(&[]).await;
    let (screen, mut keyboard) = console::open();
    let mut to: Option<Recipient> = None;
    let mut wanted = args.to.clone();
    if let Some(name) = &wanted
        && let Some(p) = lookup(&node, name)?
    {
        to = Some(p);
        wanted = None;
    }
    screen.show(hint(&to).as_bytes());
    let (sent_tx, mut sent_rx) = mpsc::channel::<String>(64);
    let stop = terminated();
    tokio::pin!(stop);
    let code = loop {
        tokio::select! {
            code = &mut stop => break code,
            event = started.events.recv() => {
                let Some(event) = event else { break ExitCode::SUCCESS };
                for line in describe(&event) {
                    screen.show(line.as_bytes());
                }
                // The peer asked for with --to may answer only now; a first message picks
                // its sender as whom to answer.
                match &event {
                    Event::Entry(m) if wanted.as_deref().is_some_and(|w| w == m.name() || w == m.user) => {
                        to = Some(Recipient { addr: m.addr, name: m.name().to_string() });
                        wanted = None;
                        screen.show(hint(&to).as_bytes());
                    }
                    Event::Message(m) if to.is_none() => {
                        to = Some(Recipient { addr: m.addr, name: m.from.name().to_string() });
                        screen.show(hint(&to).as_bytes());
                    }
                    Event::Exit(m) if to.as_ref().is_some_and(|p| p.addr.ip() == m.addr.ip()) => {
                        screen.show(b"*** lines will not reach them until they come back; /to NAME picks someone else");
                    }
                    _ => {}
                }
            }
            note = sent_rx.recv() => {
                if let Some(note) = note {
                    screen.show(note.as_bytes());
                }
            }
            lines = keyboard.next() => {
                let Some(lines) = lines? else { break ExitCode::SUCCESS };
                for line in lines {
                    match command(&line) {
                        Some(("/quit", _)) => {
                            node.leave().await;
                            started.stop.cancel();
                            return Ok(ExitCode::SUCCESS);
                        }
                        Some(("/who", _)) => {
                            let members = node.members();
                            screen.show(format!("*** {} on the LAN", members.len()).as_bytes());
                            for m in members {
                                screen.show(format!("***   {} ({})", neutralise_name(m.name()), m.addr).as_bytes());
                            }
                            node.announce(&[]).await;
                        }
                        Some(("/to", name)) if !name.is_empty() => match lookup(&node, name) {
                            Ok(Some(p)) => {
                                to = Some(p);
                                screen.show(hint(&to).as_bytes());
                            }
                            Ok(None) => screen.show(format!("*** nobody named {name:?} on the LAN or in contacts").as_bytes()),
                            Err(e) => screen.show(format!("*** {e:#}").as_bytes()),
                        },
                        Some((other, _)) => screen.show(format!("*** unknown command {other} (/to NAME, /who, /quit)").as_bytes()),
                        None if line.trim().is_empty() => {}
                        None => match &to {
                            None => screen.show(b"*** nobody to send to yet: /to NAME"),
                            Some(peer) => {
                                let text = line.strip_prefix("//").map_or(line.clone(), |t| format!("/{t}"));
                                if screen.is_terminal() {
                                    screen.show(format!("<{}> {text}", node.identity().name).as_bytes());
                                }
                                send(&node, peer.clone(), text, sent_tx.clone());
                            }
                        },
                    }
                }
            }
        }
    };
    node.leave().await;
    started.stop.cancel();
    Ok(code)
}

/// Sends in the background and reports the acknowledgement (or its absence) as a line.
fn send(node: &Arc<Node>, peer: Recipient, text: String, done: mpsc::Sender<String>) {
    let node = node.clone();
    tokio::spawn(async move {
        let enc = node
            .member(peer.addr.ip())
            .map_or(super::text::Encoding::Gbk, |m| m.send_encoding());
        let name = neutralise_name(&peer.name);
        let note = match node.send_message(peer.addr, &text, None, enc).await {
            Ok(_) => format!(
                "*** acknowledged by {name} at {}",
                chrono::Local::now().format("%H:%M:%S")
            ),
            Err(e) => format!("*** not delivered to {name}: {e:#}"),
        };
        let _ = done.send(note).await;
    });
}

/// A `/command` and its argument; `//text` is text starting with `/`.
fn command(line: &str) -> Option<(&str, &str)> {
    if !line.starts_with('/') || line.starts_with("//") {
        return None;
    }
    let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
    Some((cmd, arg.trim()))
}

/// Finds `name`: an address, a contact, or a member heard from.
fn lookup(node: &Node, name: &str) -> Result<Option<Recipient>> {
    if let Some(addr) = targets::parse_addr(name) {
        let shown = node
            .member(addr.ip())
            .map_or(addr.to_string(), |m| m.name().to_string());
        return Ok(Some(Recipient { addr, name: shown }));
    }
    if let Some(addr) = targets::contacts()?.get(name) {
        return Ok(Some(Recipient {
            addr: *addr,
            name: name.to_string(),
        }));
    }
    Ok(node.named(name).first().map(|m| Recipient {
        addr: m.addr,
        name: m.name().to_string(),
    }))
}

fn hint(to: &Option<Recipient>) -> String {
    match to {
        Some(p) => format!(
            "*** talking to {} ({}); /to NAME, /who, /quit",
            neutralise_name(&p.name),
            p.addr
        ),
        None => "*** /to NAME picks whom to talk to; /who lists the LAN; /quit".into(),
    }
}

/// The lines an event shows as, in the chat's own line format (`<name> text`, `*** …`).
fn describe(event: &Event) -> Vec<String> {
    match event {
        Event::Message(m) => {
            let name = neutralise_name(m.from.name()).replace(['<', '>', ' '], "_");
            let mut lines: Vec<String> = neutralise(&m.text)
                .split('\n')
                .map(|l| format!("<{name}> {l}"))
                .collect();
            for f in &m.files {
                lines.push(format!(
                    "*** {name} attached {} ({} bytes); `taojie msg listen --accept-files DIR` fetches attachments",
                    neutralise_name(&f.name),
                    f.size
                ));
            }
            lines
        }
        Event::Entry(m) => vec![format!(
            "*** {} ({}) is on the LAN",
            neutralise_name(m.name()),
            m.addr
        )],
        Event::Exit(m) => vec![format!("*** {} left", neutralise_name(m.name()))],
    }
}
