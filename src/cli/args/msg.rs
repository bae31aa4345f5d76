//! The flags of `taojie msg` and its subcommands, and the messenger options they make.
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::msg::chat::ChatOptions;
use crate::msg::listen::ListenOptions;
use crate::msg::members::DEFAULT_MAX_MEMBERS;
use crate::msg::send::{ANSWER_DELAY, SendOptions, WhoOptions};
use crate::msg::text::Encoding;
use crate::msg::{Command, Common};

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
    Listen(MsgListenArgs),
    /// Send a message (and files) to a host or a name, and wait for its acknowledgement
    #[command(after_help = "\
Examples:
  taojie msg send 192.168.1.20 'lunch?'        exits 0 once acknowledged
  taojie msg send ann 'report attached' --file report.pdf
  taojie msg send --all 'meeting at 3'         every member that answers on the LAN
  taojie msg send --subnet 192.168.1.0/24 hi   every host address, as seed 000's loop does

A NAME is looked up in $XDG_CONFIG_HOME/taojie/contacts.toml (lines `ann = \"192.168.1.20\"`),
then among the members that answer on the LAN.")]
    Send(MsgSendArgs),
    /// List who is on the LAN: broadcast an entry and print the members that answer
    Who(MsgWhoArgs),
    /// Talk on a terminal: incoming messages above the input line; /to NAME, /who, /quit
    Chat(MsgChatArgs),
}

/// Flags every `msg` subcommand takes.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
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
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_MEMBERS)]
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

impl From<EncodingArg> for Encoding {
    fn from(e: EncodingArg) -> Self {
        match e {
            EncodingArg::Utf8 => Encoding::Utf8,
            EncodingArg::Gbk => Encoding::Gbk,
        }
    }
}

impl From<MsgArgs> for Command {
    fn from(a: MsgArgs) -> Self {
        match a.command {
            MsgCommand::Listen(a) => Command::Listen(a.into()),
            MsgCommand::Send(a) => Command::Send(a.into()),
            MsgCommand::Who(a) => Command::Who(a.into()),
            MsgCommand::Chat(a) => Command::Chat(a.into()),
        }
    }
}

impl From<CommonArgs> for Common {
    fn from(a: CommonArgs) -> Self {
        Common {
            name: a.name,
            group: a.group,
            bind: a.bind,
            broadcast: a.broadcast,
            encoding: a.encoding.into(),
            max_members: a.max_members,
        }
    }
}

/// Flags of `taojie msg listen`.
#[derive(Args, Debug, Clone)]
pub struct MsgListenArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// One JSON object per event (message, entry, exit, file) on standard output
    #[arg(long)]
    pub json: bool,
    /// Fetch the attached files you accept into DIR (never replacing a file: name.1, name.2,
    /// … instead): each offer is shown with a number N; type `accept N` (or `accept all`) on
    /// standard input. Nothing is fetched unasked but from --accept-from senders
    #[arg(long, value_name = "DIR")]
    pub accept_files: Option<PathBuf>,
    /// Fetch without asking what this sender offers, from its own address only: IP or
    /// IP:PORT (port 2425 if not given), a name in the contacts file, or `contacts` for
    /// everyone in it (repeatable). A packet's source address can be forged, so name only
    /// senders on a LAN you trust
    #[arg(long, value_name = "SENDER", requires = "accept_files")]
    pub accept_from: Vec<String>,
    /// Largest file fetched, as the sender declares it (K, M, G suffixes)
    #[arg(long, value_name = "BYTES", default_value = "1G", value_parser = crate::flags::bytes)]
    pub max_file_size: u64,
    /// Files offered from one message; the rest of its list is ignored
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_files: usize,
    /// Bytes fetched in all while listening
    #[arg(long, value_name = "BYTES", default_value = "4G", value_parser = crate::flags::bytes)]
    pub max_total: u64,
    /// Files fetched at once; more wait their turn
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub max_fetches: usize,
    /// Free space to leave on DIR's filesystem: a file that would eat into it is refused
    #[arg(long, value_name = "BYTES", default_value = "1G", value_parser = crate::flags::bytes)]
    pub min_free: u64,
}

impl From<MsgListenArgs> for ListenOptions {
    fn from(a: MsgListenArgs) -> Self {
        ListenOptions {
            common: a.common.into(),
            json: a.json,
            accept_files: a.accept_files,
            accept_from: a.accept_from,
            max_file_size: a.max_file_size,
            max_files: a.max_files,
            max_total: a.max_total,
            max_fetches: a.max_fetches,
            min_free: a.min_free,
        }
    }
}

/// Flags of `taojie msg send`.
#[derive(Args, Debug, Clone)]
pub struct MsgSendArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// HOST (IP or IP:PORT) or NAME and the TEXT; only TEXT with --all or --subnet
    #[arg(value_name = "HOST|NAME TEXT", num_args = 1..=2, required = true)]
    pub words: Vec<String>,
    /// Attach a file (repeat for several); served over TCP until fetched or --wait passes
    #[arg(long, value_name = "PATH")]
    pub file: Vec<PathBuf>,
    /// Send to every member that answers on the LAN
    #[arg(long, conflicts_with = "subnet")]
    pub all: bool,
    /// Send to every host address of an IPv4 subnet (at most a /16; private or loopback
    /// ranges unless --force)
    #[arg(long, value_name = "NET/PREFIX")]
    pub subnet: Option<String>,
    /// Allow --subnet on a public range
    #[arg(long)]
    pub force: bool,
    /// Seconds to keep attached files on offer
    #[arg(long, value_name = "SECS", default_value_t = 300.0, value_parser = crate::flags::secs)]
    pub wait: f64,
}

impl From<MsgSendArgs> for SendOptions {
    fn from(a: MsgSendArgs) -> Self {
        SendOptions {
            common: a.common.into(),
            words: a.words,
            file: a.file,
            all: a.all,
            subnet: a.subnet,
            force: a.force,
            wait: a.wait,
        }
    }
}

/// Flags of `taojie msg who`.
#[derive(Args, Debug, Clone)]
pub struct MsgWhoArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Seconds to wait for answers (peers wait up to a second before answering)
    #[arg(long, value_name = "SECS", default_value_t = ANSWER_DELAY.as_secs_f64(), value_parser = crate::flags::secs)]
    pub wait: f64,
    /// One JSON object per member
    #[arg(long)]
    pub json: bool,
}

impl From<MsgWhoArgs> for WhoOptions {
    fn from(a: MsgWhoArgs) -> Self {
        WhoOptions {
            common: a.common.into(),
            wait: a.wait,
            json: a.json,
        }
    }
}

/// Flags of `taojie msg chat`.
#[derive(Args, Debug, Clone)]
pub struct MsgChatArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Whom to talk to first (a name on the LAN, a contact or an address)
    #[arg(long, value_name = "NAME|HOST")]
    pub to: Option<String>,
}

impl From<MsgChatArgs> for ChatOptions {
    fn from(a: MsgChatArgs) -> Self {
        ChatOptions {
            common: a.common.into(),
            to: a.to,
        }
    }
}
