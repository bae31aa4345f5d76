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
use clap::{Args, Subcommand, ValueEnum};
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

/// `taojie msg`.
#[derive(Args, Debug)]
pub struct MsgArgs {
    /// What to do on the LAN
    #[command(subcommand)]
    pub command: MsgCommand,
}

/// The `msg` subcommands.
#[derive(Subcommand, Debug)]
pub enum MsgCommand {
    /// Join the LAN and print every message to you (and who comes and goes) until Ctrl-C
    #[command(after_help = "\
Examples:
  taojie msg listen --name ann                 on port 2425, announced to every broadcast address
  taojie msg listen --json                     one JSON object per event
  taojie msg listen --accept-files ~/Inbox     offers numbered; type `accept N` to fetch one
  taojie msg listen --accept-files ~/Inbox --accept-from contacts
                                               fetch unasked from the contacts file's senders

Prints `msg udp ADDR` on standard error once bound; messages go to standard output.")]
    Listen(listen::ListenArgs),
    /// Send a message (and files) to a host or a name, and wait for its acknowledgement
    #[command(after_help = "\
Examples:
  taojie msg send 192.168.1.20 'lunch?'        exits 0 once acknowledged
  taojie msg send ann 'report attached' --file report.pdf
  taojie msg send --all 'meeting at 3'         every member that answers on the LAN
  taojie msg send --subnet 192.168.1.0/24 hi   every host address, as seed 000's loop does

A NAME is looked up in $XDG_CONFIG_HOME/taojie/contacts.toml (lines `ann = \"192.168.1.20\"`),
then among the members that answer on the LAN.")]
    Send(send::SendArgs),
    /// List who is on the LAN: broadcast an entry and print the members that answer
    Who(send::WhoArgs),
    /// Talk on a terminal: incoming messages above the input line; /to NAME, /who, /quit
    Chat(chat::ChatArgs),
}

/// Flags every `msg` subcommand takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Your name on the LAN (log-in name and nickname; default $USER)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Your group, shown by other clients
    #[arg(long, value_name = "GROUP", default_value = "")]
    pub group: String,
    /// Local address and port (default 0.0.0.0:2425, the port every peer answers to)
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Where entries and exits are broadcast; repeat for several (default every interface's
    /// broadcast address and 255.255.255.255, port 2425)
    #[arg(long, value_name = "ADDR")]
    pub broadcast: Vec<String>,
    /// The encoding you speak, declared in your entries (peers that follow the declaration,
    /// iptux among them, then send you this); GBK suits a LAN of old Feiq clients
    #[arg(long, value_enum, value_name = "ENCODING", default_value = "utf8")]
    pub encoding: EncodingArg,
    /// Members remembered at most (the least recently heard is forgotten first)
    #[arg(long, value_name = "N", default_value_t = members::DEFAULT_MAX_MEMBERS)]
    pub max_members: usize,
}

/// A text encoding named on the command line.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingArg {
    /// UTF-8 (iptux, newer IP Messenger)
    Utf8,
    /// GBK (Feiq, the seed)
    Gbk,
}

impl From<EncodingArg> for text::Encoding {
    fn from(e: EncodingArg) -> Self {
        match e {
            EncodingArg::Utf8 => text::Encoding::Utf8,
            EncodingArg::Gbk => text::Encoding::Gbk,
        }
    }
}

/// Runs `taojie msg`.
pub async fn run(args: MsgArgs) -> Result<ExitCode> {
    match args.command {
        MsgCommand::Listen(a) => listen::run(a).await,
        MsgCommand::Send(a) => send::run(a).await,
        MsgCommand::Who(a) => send::who(a).await,
        MsgCommand::Chat(a) => chat::run(a).await,
    }
}

/// How a subcommand wants port 2425.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PortUse {
    /// It must have it (listen, chat): peers answer there.
    Required,
    /// Any port will do when it is taken (send, who, while a listener holds it).
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
        let me = self.identity()?;
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
            encoding: self.encoding.into(),
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
