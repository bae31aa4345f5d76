//! The flags of `taojie send` and `taojie receive` (Magic Wormhole), and their translation
//! into [`crate::wormhole::transfer`]'s plain options (the text from standard input, the code
//! asked for on a terminal).
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::wormhole::code::Code;
use crate::wormhole::transfer::{self, Endpoints, ReceiveOptions, SendOptions, What};
use crate::wormhole::transit::{TcpHint, TransitOptions};
use crate::wormhole::{DEFAULT_RELAY_URL, DEFAULT_TRANSIT_HELPER};

/// Where the mailbox server and the transit relay are, and how transit connects.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The mailbox (rendezvous) server both sides use
    #[arg(long, value_name = "URL", env = "TAOJIE_RELAY_URL", default_value = DEFAULT_RELAY_URL)]
    pub relay_url: String,
    /// The transit relay, used when no direct connection works
    #[arg(long, value_name = "tcp:HOST:PORT", env = "TAOJIE_TRANSIT_HELPER",
          default_value = DEFAULT_TRANSIT_HELPER, value_parser = TcpHint::parse_helper)]
    pub transit_helper: TcpHint,
    /// Do not listen for direct connections (the peer then connects to us through the relay,
    /// unless we reach its own listener)
    #[arg(long)]
    pub no_listen: bool,
    /// Speak plain wormhole file-transfer v1 even to a taojie peer (no resume; folders as zip)
    #[arg(long)]
    pub no_extensions: bool,
}

impl ServerArgs {
    fn endpoints(&self) -> Endpoints {
        Endpoints {
            relay_url: self.relay_url.clone(),
            transit: TransitOptions {
                relay: Some(self.transit_helper.clone()),
                listen: !self.no_listen,
            },
        }
    }
}

/// `taojie send PATH... | --text TEXT`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  taojie send report.pdf                  prints a code such as 7-crossover-clockwork
  taojie send photos/ notes.txt           several files and folders under one code
  taojie send --text 'the wifi password is ...'
  echo hi | taojie send --text -
  taojie send big.iso --code 42-pioneer-merit

The receiver runs `taojie receive CODE` (or `wormhole receive CODE`: any Magic Wormhole client
works; with it folders travel as a zip). Between two taojie peers an interrupted transfer
resumes where it stopped when sent again.")]
pub struct SendArgs {
    /// Files and directories to send
    #[arg(
        value_name = "PATH",
        required_unless_present = "text",
        conflicts_with = "text"
    )]
    pub paths: Vec<PathBuf>,
    /// Send this text instead of files (`-`: read it from standard input)
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,
    /// Use this code (NUMBER-WORD-WORD...) instead of one from the server
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
    /// Words in a generated code
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u8).range(1..=16))]
    pub code_length: u8,
    /// The servers
    #[command(flatten)]
    pub servers: ServerArgs,
}

/// `taojie receive [CODE]`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  taojie receive 7-crossover-clockwork           shows the offer and asks
  taojie receive 7-crossover-clockwork --accept -o ~/Downloads

Files appear only complete and verified (SHA-256), under their own name in -o DIR, never
replacing an existing file unless --overwrite. Folders from wormhole clients arrive as a zip:
every entry is checked (no absolute paths, no `..`, no symlinks, sizes bounded).")]
pub struct ReceiveArgs {
    /// The code the sender was given (asked for when missing)
    #[arg(value_name = "CODE")]
    pub code: Option<String>,
    /// Accept the offer without asking
    #[arg(long, alias = "accept-file", alias = "yes")]
    pub accept: bool,
    /// Where received files and folders go
    #[arg(
        short = 'o',
        long = "output-dir",
        value_name = "DIR",
        default_value = "."
    )]
    pub out: PathBuf,
    /// Replace an existing file of the offered name
    #[arg(long)]
    pub overwrite: bool,
    /// The servers
    #[command(flatten)]
    pub servers: ServerArgs,
}

/// Runs `taojie send`.
pub async fn send(args: SendArgs) -> Result<ExitCode> {
    let what = match args.text {
        Some(t) if t == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the text from standard input")?;
            What::Text(s)
        }
        Some(t) => What::Text(t),
        None => What::Paths(args.paths),
    };
    let code = args.code.as_deref().map(Code::parse).transpose()?;
    transfer::send(SendOptions {
        endpoints: args.servers.endpoints(),
        what,
        code,
        code_length: args.code_length as usize,
        extensions: !args.servers.no_extensions,
        progress: true,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `taojie receive`.
pub async fn receive(args: ReceiveArgs) -> Result<ExitCode> {
    let typed = match args.code {
        Some(c) => c,
        None => {
            if !std::io::stdin().is_terminal() {
                bail!("no code given: taojie receive CODE");
            }
            tokio::task::spawn_blocking(|| crate::wormhole::prompt::ask_code(2)).await??
        }
    };
    transfer::receive(ReceiveOptions {
        endpoints: args.servers.endpoints(),
        code: Code::parse(&typed)?,
        accept: args.accept,
        out_dir: args.out,
        overwrite: args.overwrite,
        extensions: !args.servers.no_extensions,
        progress: true,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
