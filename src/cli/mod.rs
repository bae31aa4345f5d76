//! The command line: every subcommand's flags (the doc comments are the help text) and the
//! dispatch to the module that does the work; [`man`] and [`completions`] generate the man
//! pages and completion scripts from the same definitions.
//!
//! The top floor of the library: only `main.rs` uses it, and nothing below names it.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::log::LogFormat;
use crate::serve::{self, ServeArgs};
use crate::{bench, chat, exec, files, http, ipcalc, msg, netcat, time};
use args::{
    BenchArgs, ChatArgs, ConnectArgs, ExecArgs, GetArgs, HttpArgs, ListenArgs, LsArgs, MsgArgs,
    PutArgs, ReceiveArgs, SendArgs, ShareArgs, TimeArgs,
};

pub mod args;
pub mod completions;
pub mod man;

/// taojie (套接字): one socket toolkit — netcat, echo, time, exec, files, chat, msg (IP
/// Messenger), send/receive (Magic Wormhole), http, ipcalc and a load generator.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// How log lines on standard error look: `human` (text, coloured on a terminal) or
    /// `json` (one object per line: timestamp, level, message, fields, and the connection's
    /// service, peer and id)
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Human,
        hide_possible_values = true,
        help_heading = GLOBAL_OPTIONS,
        display_order = 1000
    )]
    pub log_format: LogFormat,
    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The heading global options are shown under, last, in every subcommand's help.
pub const GLOBAL_OPTIONS: &str = "Global options";

/// `taojie --help`'s examples, each working as written against `taojie serve` on its default
/// ports (`tests/help_examples.rs` runs them).
const EXAMPLES: &str = "\
Examples:
  taojie serve                                 every service on 127.0.0.1, default ports; exec and
                                               files use a key it makes, the clients' default
  taojie connect 127.0.0.1:9007                type lines, read the echo
  taojie exec 127.0.0.1:9512 -- uname -a       a command on the exec service
  taojie put 127.0.0.1:9021 photos/            a folder to the files service; get and ls fetch, list
  taojie time 127.0.0.1:9013 '%H:%M:%S'
  nc 127.0.0.1 9006                            join the chat; or: taojie chat 127.0.0.1:9006 --name ann
  taojie bench 127.0.0.1:9007 --conns 50 --depth 16 --seconds 3
  taojie serve echo --listen 127.0.0.1:0 --upper
  taojie listen [::1]:8000 --keep-open > log   a netcat listener
  taojie keygen my.key                         a key to share with a server on another machine
  taojie msg listen --name ann                 join the IP Messenger / Feiq / iptux LAN";

/// The subcommands.
// Parsed once per run and never moved in a loop: the size of its biggest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run servers: every service on 127.0.0.1 with no SERVICE, or one service
    Serve(ServeArgs),
    /// Netcat client: stdin to the socket, the socket to stdout
    Connect(ConnectArgs),
    /// Netcat listener: the first peer's bytes to stdout, stdin to the peer
    Listen(ListenArgs),
    /// Relay a port to another address for many clients (TCP, UDP, Unix; TLS or Noise tunnels)
    Forward(serve::args::ForwardArgs),
    /// Ask a time server: the seed's UDP strftime service, daytime (--tcp) or SNTP (--sntp)
    Time(TimeArgs),
    /// Load-test any echo server and verify every byte that comes back
    Bench(BenchArgs),
    /// Write a new random key file (64 hex characters, mode 0600); never overwrites
    Keygen(KeygenArgs),
    /// Run a command on an exec server; exits with the command's status
    Exec(ExecArgs),
    /// Upload files and directory trees to a files server (verified, resumable)
    Put(PutArgs),
    /// Download files and directory trees from a files server (verified, resumable)
    Get(GetArgs),
    /// List a directory on a files server
    Ls(LsArgs),
    /// Print a link to one file or folder of a files page, read-only, until it expires
    Share(ShareArgs),
    /// Chat client: join a taojie chat broker (or, with --udp, a hub) under a name
    #[command(after_help = "\
Examples:
  taojie chat 127.0.0.1:9006 --name alice            type lines; /who, /join ROOM, /me, /quit
  taojie chat 127.0.0.1:9006 --name bob --udp         the UDP hub (seed-style `NAME: text`)
  taojie chat 127.0.0.1:9006 --name eve --key chat.key
  taojie chat 10.0.0.1:9006,10.0.0.2:9006 --name ann  brokers joined by --nats: the next one
                                                      when one is gone, same name and room
  echo hello | taojie chat 127.0.0.1:9006 --name bot  scripted: plain lines in and out")]
    Chat(ChatArgs),
    /// LAN messenger speaking IP Messenger, Feiq (飞秋) and iptux on UDP 2425
    #[command(after_help = "\
Examples:
  taojie msg listen --name ann                print messages to you; Ctrl-C says goodbye
  taojie msg who                              who is on the LAN
  taojie msg send 192.168.1.20 '你好' --file notes.txt
  taojie msg chat --to bob                    talk on a terminal")]
    Msg(MsgArgs),
    /// Send files, folders or a text to another person with a short code (Magic Wormhole)
    Send(SendArgs),
    /// Receive what `taojie send` or any Magic Wormhole client sends, given its code
    Receive(ReceiveArgs),
    /// HTTP/1.1 and HTTPS client: the body to stdout or -o FILE (complete or not at all)
    Http(HttpArgs),
    /// Users of `taojie serve proxy --users FILE`: add one, or change a password
    ProxyUser(args::proxy_user::ProxyUserArgs),
    /// Addresses, masks and subnets: network, broadcast, hosts, kind; same subnet?; split
    Ipcalc(ipcalc::IpcalcArgs),
    /// Print a shell's completion script for taojie on standard output
    #[command(after_help = "\
Examples:
  source <(taojie completions bash)                        in ~/.bashrc
  taojie completions zsh > ~/.zfunc/_taojie                with fpath+=(~/.zfunc) before compinit
  taojie completions fish > ~/.config/fish/completions/taojie.fish")]
    Completions(CompletionsArgs),
    /// Man pages: taojie(1) on standard output, or one page per subcommand with --out DIR
    #[command(after_help = "\
Examples:
  taojie man | man -l -                      read taojie(1)
  taojie man --out ~/.local/share/man/man1   taojie.1, taojie-serve.1, taojie-serve-exec.1, ...
  man taojie-serve-exec                      once that directory is on the MANPATH")]
    Man(ManArgs),
}

/// `taojie completions SHELL`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `taojie man [--out DIR]`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write every page (taojie.1 and one per subcommand) into DIR, created if missing, and
    /// print each file's path
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
}

/// `taojie keygen FILE` and `taojie keygen --identity FILE`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  taojie keygen shared.key                 a shared key: copy it to the peer over a safe channel
  taojie keygen --identity ~/.config/taojie/id
                                           an identity: give id.pub to the servers' --authorized")]
pub struct KeygenArgs {
    /// Where to write the key; an existing file is left alone
    pub file: std::path::PathBuf,
    /// Write an X25519 identity key pair instead: FILE (private, mode 600) and FILE.pub (one
    /// line `taojie-x25519 BASE64 COMMENT`, also printed)
    #[arg(long)]
    pub identity: bool,
    /// The comment on the public key line (default: user@host)
    #[arg(long, value_name = "TEXT", requires = "identity")]
    pub comment: Option<String>,
}

/// Parses this process's arguments (exiting with clap's message on a bad one): the command,
/// and clap's matches, which say which flags were given rather than defaulted (`serve
/// --config` lays those over the file's keys).
pub fn parse() -> (Cli, ArgMatches) {
    let mut command = Cli::command();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = match command.try_get_matches_from_mut(&argv) {
        Ok(m) => m,
        Err(e) => args::hint_dashes(e, &argv).exit(),
    };
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => (cli, matches),
        Err(e) => e.format(&mut command).exit(),
    }
}

/// Runs the parsed command; the exit code is the command's own (a remote status, say).
/// `matches` are [`parse`]'s.
pub async fn run(cli: Cli, matches: &ArgMatches) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            serve::run(args, matches.subcommand_matches("serve")).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Connect(args) => netcat::connect(args.into()).await,
        Command::Listen(args) => netcat::listen(args.into()).await,
        Command::Forward(args) => {
            serve::forward(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Time(args) => time::run(args.into()).await,
        Command::Bench(args) => bench::run(args.into()).await,
        Command::Keygen(args) if args.identity => {
            let comment = args.comment.clone().unwrap_or_else(default_comment);
            let line = crate::secure::Identity::generate()?.save(&args.file, &comment)?;
            println!("{line}");
            eprintln!(
                "wrote {} (private, mode 600) and {} (public); add the public line to a \
                 server's --authorized file",
                args.file.display(),
                crate::secure::identity::public_path(&args.file).display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen(args) => {
            crate::auth::generate(&args.file)?;
            eprintln!(
                "wrote a new key to {} (mode 600); copy it to the peer over a safe channel",
                args.file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec(args) => exec::run(args.into()).await,
        Command::Put(args) => files::put(args.into()).await,
        Command::Get(args) => files::get(args.into()).await,
        Command::Ls(args) => files::ls(args.into()).await,
        Command::Share(args) => files::share(args.into()).map(|()| ExitCode::SUCCESS),
        Command::Chat(args) => chat::run(args.into()).await,
        Command::Msg(args) => msg::run(args.into()).await,
        Command::Send(args) => args::send(args).await,
        Command::Receive(args) => args::receive(args).await,
        Command::Http(args) => http::run(args.into()).await,
        Command::Ipcalc(args) => ipcalc::run(args),
        Command::ProxyUser(args) => {
            args::proxy_user::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions(args) => {
            completions::write(args.shell, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man(args) => {
            match args.out {
                Some(dir) => {
                    let mut out = std::io::stdout().lock();
                    for page in man::write_man_pages(&dir)? {
                        // The pages are written; a closed stdout only loses the list.
                        if writeln!(out, "{}", page.display()).is_err() {
                            break;
                        }
                    }
                }
                None => man::man_page(&mut std::io::stdout().lock())?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `user@host`, for the comment on a public key line.
fn default_comment() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "taojie".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("{user}@{host}")
}
