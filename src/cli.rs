//! The command line: every subcommand's flags (the doc comments are the help text) and the
//! dispatch to the module that does the work.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::log::LogFormat;
use crate::server::{LimitArgs, shutdown};

mod wormhole_args;
use crate::{bench, chat, docs, echo, exec, files, http, ipcalc, msg, netcat, serve, time};
pub use wormhole_args::serve_relay;

/// taojie (套接字): one socket toolkit — netcat, echo, time, exec, files and chat, a load generator.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// How log lines on standard error look: text for people, or one JSON object per line
    /// (timestamp, level, message, fields, and the connection's service, peer and id)
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  taojie serve                                 every service on 127.0.0.1, default ports
  taojie serve echo --listen 127.0.0.1:0 --upper
  taojie connect 127.0.0.1:9007                type lines, read the echo
  taojie listen [::1]:8000 --keep-open > log   a netcat listener
  taojie time 127.0.0.1:9013 '%H:%M:%S'
  taojie keygen my.key && taojie exec 127.0.0.1:9512 --key my.key -- uname -a
  taojie put 127.0.0.1:9021 --key my.key photos/
  nc 127.0.0.1 9006                            join the chat; or: taojie chat 127.0.0.1:9006 --name ann
  taojie bench 127.0.0.1:9007 --conns 50 --depth 16
  taojie msg listen --name ann                 join the IP Messenger / Feiq / iptux LAN";

/// The subcommands.
// Parsed once per run and never moved in a loop: the size of its biggest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run servers: every service on 127.0.0.1 with no SERVICE, or one service
    Serve(ServeArgs),
    /// Netcat client: stdin to the socket, the socket to stdout
    Connect(netcat::ConnectArgs),
    /// Netcat listener: the first peer's bytes to stdout, stdin to the peer
    Listen(netcat::ListenArgs),
    /// Ask a time server: the seed's UDP strftime service, daytime (--tcp) or SNTP (--sntp)
    Time(time::ClientArgs),
    /// Load-test any echo server and verify every byte that comes back
    Bench(bench::BenchArgs),
    /// Write a new random key file (64 hex characters, mode 0600); never overwrites
    Keygen(KeygenArgs),
    /// Run a command on an exec server; exits with the command's status
    Exec(exec::ClientArgs),
    /// Upload files and directory trees to a files server (verified, resumable)
    Put(files::PutArgs),
    /// Download files and directory trees from a files server (verified, resumable)
    Get(files::GetArgs),
    /// List a directory on a files server
    Ls(files::LsArgs),
    /// Chat client: join a taojie chat broker (or, with --udp, a hub) under a name
    #[command(after_help = "\
Examples:
  taojie chat 127.0.0.1:9006 --name alice            type lines; /who, /join ROOM, /me, /quit
  taojie chat 127.0.0.1:9006 --name bob --udp         the UDP hub (seed-style `NAME: text`)
  taojie chat 127.0.0.1:9006 --name eve --key chat.key
  taojie chat 10.0.0.1:9006,10.0.0.2:9006 --name ann  brokers joined by --nats: the next one
                                                      when one is gone, same name and room
  echo hello | taojie chat 127.0.0.1:9006 --name bot  scripted: plain lines in and out")]
    Chat(chat::ClientArgs),
    /// LAN messenger speaking IP Messenger, Feiq (飞秋) and iptux on UDP 2425
    #[command(after_help = "\
Examples:
  taojie msg listen --name ann                print messages to you; Ctrl-C says goodbye
  taojie msg who                              who is on the LAN
  taojie msg send 192.168.1.20 '你好' --file notes.txt
  taojie msg chat --to bob                    talk on a terminal")]
    Msg(msg::MsgArgs),
    /// Send files, folders or a text to another person with a short code (Magic Wormhole)
    Send(wormhole_args::SendArgs),
    /// Receive what `taojie send` or any Magic Wormhole client sends, given its code
    Receive(wormhole_args::ReceiveArgs),
    /// HTTP/1.1 and HTTPS client: the body to stdout or -o FILE (complete or not at all)
    Http(http::HttpArgs),
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

/// `taojie serve [SERVICE]`.
#[derive(Args, Debug)]
#[command(
    after_help = "With no SERVICE, serves every service on 127.0.0.1 and prints one \
`SERVICE PROTO ADDRESS` line per socket: echo 9007 (tcp, udp), time 9013 (udp) and daytime 9013 \
(tcp), sntp 9123 (udp), chat 9006 (tcp, udp; no key) with its page on chat-web 9080 (tcp; \
http://127.0.0.1:9080/), exec 9512 and files 9021 (tcp). exec and \
files use a key created on first start in $XDG_DATA_HOME/taojie/key (else \
~/.local/share/taojie/key); files live beside it in taojie/files. \
With --metrics PORT (before or after SERVICE), also `metrics tcp 127.0.0.1:PORT`: Prometheus \
metrics at http://127.0.0.1:PORT/metrics, labelled by service.

With --config FILE, the services FILE has a section for (see config/taojie.toml: every key \
is a flag of `taojie serve SERVICE`, kebab-case):
  taojie serve --check-config /etc/taojie/taojie.toml     check it; binds nothing
  taojie serve --config /etc/taojie/taojie.toml           run it; SIGHUP re-reads it
  taojie serve --config taojie.toml exec --max-procs 4    exec alone, the flag over the file"
)]
pub struct ServeArgs {
    /// The one service to run (default: all of them on 127.0.0.1)
    #[command(subcommand)]
    pub service: Option<Service>,
    /// Connection limits for echo and daytime when started with no SERVICE (exec, files and
    /// chat keep their own defaults); with --config, for every section that takes them
    #[command(flatten)]
    pub limits: LimitArgs,
    /// With no SERVICE: every socket on 127.0.0.1 port 0, so the kernel picks free ports (the
    /// printed lines say which); for tests and runs beside another taojie
    #[arg(long, conflicts_with = "config")]
    pub any_port: bool,
    /// The metrics endpoint
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
    /// Run the services FILE (TOML) has a `[SERVICE]` section for, each with the section's keys
    /// as its flags (same names: max-conns = 50); flags given here override the file, and with
    /// a SERVICE only that one runs. SIGHUP re-reads FILE: connection and handshake limits and
    /// log-level apply to new connections, the rest is reported as needing a restart
    #[arg(long, value_name = "FILE", conflicts_with = "check_config")]
    pub config: Option<std::path::PathBuf>,
    /// Check FILE as --config would read it (keys, values, key files) and exit, binding
    /// nothing: `FILE: ok (SERVICES)` and status 0, or the error naming the line
    #[arg(long, value_name = "FILE")]
    pub check_config: Option<std::path::PathBuf>,
}

/// The services `taojie serve` can run one at a time.
#[derive(Subcommand, Debug)]
pub enum Service {
    /// Echo (RFC 862) over TCP, UDP and Unix sockets, plain or --upper
    #[command(
        after_help = "Example: taojie serve echo --listen 127.0.0.1:0 --udp 127.0.0.1:0 --upper"
    )]
    Echo(echo::EchoArgs),
    /// Time: the seed's UDP strftime service, daytime over TCP (RFC 867), SNTP (RFC 4330)
    #[command(
        after_help = "Example: taojie serve time --listen 127.0.0.1:0 --tcp 127.0.0.1:0 --sntp 127.0.0.1:0"
    )]
    Time(time::ServeArgs),
    /// Remote command execution, authenticated, output streamed; --classic for the seed's protocol
    #[command(after_help = "Examples:
  taojie keygen exec.key
  taojie serve exec --listen 127.0.0.1:9512 --key exec.key --allow uname --allow ls
  taojie serve exec --listen 127.0.0.1:0 --key exec.key --shell --timeout 60
  taojie serve exec --classic 127.0.0.1:8080 --key exec.key     the seed's client works

A command runs in a process group of its own; the whole group is killed when its client
disconnects, at --timeout, and 5 s after SIGINT/SIGTERM stops the server. What it started that
left the group (setsid -f, a double fork) is killed too: the server is its subreaper. Its stdout is a Unix
socket (as under sshd: it buffers more than a pipe), its stdin and stderr are pipes.")]
    Exec(exec::ServeArgs),
    /// Files: uploads, downloads and listings under --root, verified and resumable
    #[command(
        after_help = "Example: taojie serve files --listen 127.0.0.1:0 --root /srv/files --key key --classic 127.0.0.1:0"
    )]
    Files(files::ServeArgs),
    /// Chat: a TCP line broker (nc works as a client) with names and rooms, a UDP hub, and
    /// a page for browsers
    #[command(after_help = "\
Examples:
  taojie serve chat --listen 127.0.0.1:0 --udp 127.0.0.1:0
  nc 127.0.0.1 9006                      any line client joins; lines arrive as `<name> text`
  taojie serve chat --listen 0.0.0.0:9006 --key chat.key   taojie clients with the key only
  taojie serve chat --listen 127.0.0.1:9006 --web 127.0.0.1:9080
      then open http://127.0.0.1:9080/?name=ann&room=dev   (an invitation link: joins #dev)
      with --key, the page needs the token in the `chat-web login URL` printed at start
  nats-server -js -a 127.0.0.1 -p 4222 -sd /var/lib/nats &
  taojie serve chat --listen 127.0.0.1:9006 --nats nats://127.0.0.1:4222
  taojie serve chat --listen 127.0.0.1:9106 --nats nats://127.0.0.1:4222
      two brokers, one chat: rooms, unique names, /who and the last 20 lines span both")]
    Chat(chat::ServeArgs),
    /// A Magic Wormhole mailbox server and transit relay, for `taojie send` and any wormhole
    /// client
    Relay(wormhole_args::RelayArgs),
}

/// Runs the parsed command; the exit code is the command's own (a remote status, say).
pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(ServeArgs {
            check_config: Some(path),
            ..
        }) => {
            crate::config::check(&path)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(ServeArgs {
            config: Some(path),
            metrics,
            ..
        }) => {
            // Read before anything binds: a bad file is one line and exit status 1.
            let config =
                crate::config::Config::load(&path, &crate::config::Overrides::from_command_line())?;
            let token = shutdown::on_signal()?;
            // `--metrics` on the command line wins over the file's `metrics`.
            let metrics = crate::metrics::MetricsArgs {
                metrics: metrics.metrics.or_else(|| config.metrics.clone()),
            };
            let metrics = start_metrics(&metrics, &token).await?;
            crate::config::serve(config, token).await?;
            if let Some(m) = metrics {
                let _ = m.await;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let token = shutdown::on_signal()?;
            let metrics = start_metrics(&args.metrics, &token).await?;
            match args.service {
                None => serve::all(args.limits, args.any_port, token).await?,
                Some(Service::Echo(a)) => echo::run(a, token).await?,
                Some(Service::Time(a)) => time::serve(a, token).await?,
                Some(Service::Exec(a)) => exec::serve(a, token).await?,
                Some(Service::Files(a)) => files::run(a, token).await?,
                Some(Service::Chat(a)) => chat::run(a, token).await?,
                Some(Service::Relay(a)) => wormhole_args::serve_relay(a, token).await?,
            }
            if let Some(m) = metrics {
                // The services are done; the endpoint stopped with them (same token).
                let _ = m.await;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Connect(args) => netcat::connect(args).await,
        Command::Listen(args) => netcat::listen(args).await,
        Command::Time(args) => time::client(args).await,
        Command::Bench(args) => bench::run(args).await,
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
        Command::Exec(args) => exec::client(args).await,
        Command::Put(args) => files::put(args).await,
        Command::Get(args) => files::get(args).await,
        Command::Ls(args) => files::ls(args).await,
        Command::Chat(args) => chat::client(args).await,
        Command::Msg(args) => msg::run(args).await,
        Command::Send(args) => wormhole_args::send(args).await,
        Command::Receive(args) => wormhole_args::receive(args).await,
        Command::Http(args) => http::run(args).await,
        Command::Ipcalc(args) => ipcalc::run(args),
        Command::Completions(args) => {
            docs::completions(args.shell, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man(args) => {
            match args.out {
                Some(dir) => {
                    let mut out = std::io::stdout().lock();
                    for page in docs::write_man_pages(&dir)? {
                        // The pages are written; a closed stdout only loses the list.
                        if writeln!(out, "{}", page.display()).is_err() {
                            break;
                        }
                    }
                }
                None => docs::man_page(&mut std::io::stdout().lock())?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Binds the metrics endpoint `--metrics` asks for, if any (before the services, so a bad
/// address is an error before anything serves), and runs it until `token` is cancelled.
async fn start_metrics(
    args: &crate::metrics::MetricsArgs,
    token: &tokio_util::sync::CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    Ok(match &args.metrics {
        Some(spec) => Some(tokio::spawn(
            crate::metrics::serve(spec, token.clone().cancelled_owned()).await?,
        )),
        None => None,
    })
}

/// `user@host`, for the comment on a public key line.
fn default_comment() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "taojie".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("{user}@{host}")
}
