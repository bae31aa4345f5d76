//! `taojie msg`: a command-line member of an IP Messenger LAN, speaking the protocol of IP
//! Messenger, Feiq (飞秋) and iptux — the broadcast on UDP 2425 that seed 000 ends with.
//!
//! The tree follows a packet: [`packet`] parses and builds the wire format, [`text`] decodes
//! and neutralises names and texts (UTF-8 or GBK, per peer), [`members`] is the table of who is
//! on the LAN, [`node`] is the socket with its receive loop (answers, acknowledgements,
//! sending with retries), [`attach`] carries files over TCP, [`inbox`] decides which offered
//! files `listen` fetches and how much, [`targets`] finds broadcast
//! addresses, contacts and subnets; [`listen`], [`send`] and [`chat`] are the subcommands.
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

pub mod attach;
pub mod chat;
pub mod inbox;
pub mod listen;
pub mod members;
pub mod node;
pub mod packet;
pub mod send;
pub mod targets;
pub mod text;

use node::{Identity, Node};

/// A `taojie msg` subcommand and its options.
#[derive(Debug, Clone)]
pub enum Command {
    /// Join the LAN and print every message to you (and who comes and goes).
    Listen(listen::ListenOptions),
    /// Send a message (and files) and wait for its acknowledgement.
    Send(send::SendOptions),
    /// List who is on the LAN.
    Who(send::WhoOptions),
    /// Talk on a terminal.
    Chat(chat::ChatOptions),
}

/// What every `msg` subcommand takes: who you are on the LAN and where you listen.
#[derive(Debug, Clone)]
pub struct Common {
    /// Your name on the LAN (log-in name and nickname; default $USER).
    pub name: Option<String>,
    /// Your group, shown by other clients.
    pub group: String,
    /// Local address and port (default 0.0.0.0:2425, the port every peer answers to).
    pub bind: Option<String>,
    /// Where entries and exits are broadcast (default every interface's broadcast address
    /// and 255.255.255.255, port 2425).
    pub broadcast: Vec<String>,
    /// The encoding you speak, declared in your entries.
    pub encoding: text::Encoding,
    /// Members remembered at most (the least recently heard is forgotten first).
    pub max_members: usize,
}

/// Runs a `taojie msg` subcommand.
pub async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Listen(a) => listen::run(a).await,
        Command::Send(a) => send::run(a).await,
        Command::Who(a) => send::who(a).await,
        Command::Chat(a) => chat::run(a).await,
    }
}

/// How a subcommand wants port 2425, which also says whether it stays on the LAN.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PortUse {
    /// It must have it (listen, chat): peers answer there, and it is a member that stays.
    Required,
    /// Any port will do when it is taken (send, who, while a listener holds it): it only
    /// passes through, and says so in its entries ([`packet::opt::NOADDLIST`]).
    Preferred,
}

/// A started member: the node, its events, and whether it holds the messenger port.
pub struct Started {
    /// The member.
    pub node: std::sync::Arc<Node>,
    /// What it hears.
    pub events: tokio::sync::mpsc::Receiver<node::Event>,
    /// Cancelled to stop its receive loop.
    pub stop: CancellationToken,
    /// It could not have its port and took another.
    pub fallback: bool,
}

impl Common {
    /// Checks the flags, binds the socket and starts the member.
    pub async fn start(&self, port: PortUse) -> Result<Started> {
        let me = Identity {
            // Those that take any port pass through; those that must have it stay.
            passing: port == PortUse::Preferred,
            ..self.identity()?
        };
        let bind = match &self.bind {
            Some(b) => targets::parse_addr(b)
                .with_context(|| format!("--bind {b:?}: expected IP or IP:PORT"))?,
            None => SocketAddr::from(([0, 0, 0, 0], packet::PORT)),
        };
        let (socket, fallback) = bind_member(bind, port)?;
        let broadcast = if self.broadcast.is_empty() {
            targets::default_broadcast()
        } else {
            self.broadcast
                .iter()
                .map(|b| {
                    targets::parse_addr(b)
                        .with_context(|| format!("--broadcast {b:?}: expected IP or IP:PORT"))
                })
                .collect::<Result<_>>()?
        };
        let stop = CancellationToken::new();
        let (node, events) = Node::start(socket, me, broadcast, self.max_members, stop.clone());
        Ok(Started {
            node,
            events,
            stop,
            fallback,
        })
    }

    fn identity(&self) -> Result<Identity> {
        let name = match &self.name {
            Some(n) => n.clone(),
            None => std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "taojie".into()),
        };
        check_name("--name", &name)?;
        check_name("--group", &self.group)?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().replace(':', "_"))
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        Ok(Identity {
            name,
            group: self.group.clone(),
            host,
            encoding: self.encoding,
            passing: false,
        })
    }
}

/// Names travel between `:` and NUL separators, so neither may be in one.
fn check_name(flag: &str, name: &str) -> Result<()> {
    if flag == "--name" && name.is_empty() {
        bail!("{flag}: a name is needed");
    }
    if name.chars().any(|c| c == ':' || c.is_control()) || name.len() > 64 {
        bail!("{flag} {name:?}: at most 64 bytes, with no `:` and no control characters");
    }
    Ok(())
}

fn bind_member(bind: SocketAddr, port: PortUse) -> Result<(UdpSocket, bool)> {
    match node::bind(bind) {
        Ok(s) => Ok((s, false)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port == PortUse::Preferred => {
            let any = SocketAddr::new(bind.ip(), 0);
            let s = node::bind(any).with_context(|| format!("cannot bind udp {any}"))?;
            tracing::info!(
                "udp {bind} is taken (a `taojie msg listen`?); using {} — peers that answer on \
                 port {} only (iptux) send their answers to that listener",
                s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                packet::PORT
            );
            Ok((s, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(e).with_context(|| {
            format!(
                "cannot bind udp {bind}: another messenger (iptux, Feiq, a taojie msg) holds it"
            )
        }),
        Err(e) => Err(e).with_context(|| format!("cannot bind udp {bind}")),
    }
}
