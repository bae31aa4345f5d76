//! The flags of `taojie exec`, and the client options they make.
use std::ffi::OsString;

use clap::Args;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::exec::ClientOptions;
use crate::flags::in_place;
use crate::secure::flags::ClientKeyArgs;

/// Flags of `taojie exec`.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Exit status: the remote command's (128+N if signal N ended it, 124 if \
the server's --timeout did); 126/127 if it could not start; 255 if taojie could not connect, \
authenticate or was refused.

Examples:
  taojie exec 127.0.0.1:9512 --key exec.key -- uname -a
  tar cf - src | taojie exec 127.0.0.1:9512 --key exec.key -- tar xf - -C /tmp/copy
  taojie exec 127.0.0.1:9512 --key exec.key --shell -- 'ls | wc -l'",
    mut_args(in_place("key", |a| a.help(
        "Key file shared with the server [default: the key `taojie serve` created, if any]"
    ))),
    mut_args(in_place("identity", |a| a.help(
        "Your identity key (`taojie keygen --identity FILE`); the server must list FILE.pub. \
         The server's own key is pinned in $XDG_CONFIG_HOME/taojie/known_hosts on first use"
    ))),
)]
pub struct ExecArgs {
    /// Server address, HOST:PORT
    #[arg(value_parser = crate::addr::host_port)]
    pub addr: String,
    /// Key flags
    #[command(flatten)]
    pub keys: ClientKeyArgs,
    /// Run the words as one command line through the server's shell (`sh -c`); the server
    /// must have been started with --shell
    #[arg(long)]
    pub shell: bool,
    /// Do not forward stdin; the command reads end-of-file at once
    #[arg(long, short = 'n')]
    pub no_stdin: bool,
    /// Talk to a server started with --insecure-no-auth
    #[arg(long, conflicts_with_all = ["key", "identity"])]
    pub insecure_no_auth: bool,
    /// Seconds to wait for the connection
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = crate::flags::positive_secs)]
    pub connect_timeout: f64,
    /// Connect through a proxy: socks5://, socks5h:// (names resolved by the proxy) or
    /// http:// (CONNECT), with USER:PASSWORD@ if it asks (never printed)
    #[arg(long, value_name = "URL")]
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Adds a tip to clap's "unexpected argument" error when `taojie exec ADDR uname` left out
/// the `--` that separates taojie's flags from the command (`argv` is the whole command line).
pub fn hint_dashes(mut e: clap::Error, argv: &[OsString]) -> clap::Error {
    if e.kind() != ErrorKind::UnknownArgument
        || subcommand(argv) != Some("exec")
        || argv.iter().any(|a| a == "--")
    {
        return e;
    }
    let word = match e.get(ContextKind::InvalidArg) {
        // An unknown flag is clap's to explain; a word is the command.
        Some(ContextValue::String(w)) if !w.starts_with('-') => w.clone(),
        _ => return e,
    };
    let tip = format!("the command goes after `--`: taojie exec ADDR -- {word} ...");
    e.insert(
        ContextKind::Suggested,
        ContextValue::StyledStrs(vec![tip.into()]),
    );
    e
}

/// The subcommand `argv` names: its first word that is neither a flag nor the value of the
/// global `--log-format`.
fn subcommand(argv: &[OsString]) -> Option<&str> {
    let mut words = argv.iter().skip(1).map(|a| a.to_str());
    while let Some(word) = words.next() {
        match word? {
            "--log-format" => {
                words.next();
            }
            flag if flag.starts_with('-') => {}
            sub => return Some(sub),
        }
    }
    None
}

impl From<ExecArgs> for ClientOptions {
    fn from(a: ExecArgs) -> Self {
        ClientOptions {
            addr: a.addr,
            keys: a.keys.into(),
            shell: a.shell,
            no_stdin: a.no_stdin,
            insecure_no_auth: a.insecure_no_auth,
            connect_timeout: a.connect_timeout,
            proxy: a.proxy,
            command: a.command,
        }
    }
}
