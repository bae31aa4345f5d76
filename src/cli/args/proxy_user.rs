//! `taojie proxy-user add FILE NAME`: a user of `taojie serve proxy --users FILE`, with the
//! password read from the terminal (twice, not echoed) or from standard input's first line.
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

/// `taojie proxy-user`.
#[derive(Args, Debug)]
pub struct ProxyUserArgs {
    /// What to do
    #[command(subcommand)]
    pub action: ProxyUserAction,
}

/// What `taojie proxy-user` does.
#[derive(Subcommand, Debug)]
pub enum ProxyUserAction {
    /// Add NAME to FILE, or set NAME's new password; FILE is created (mode 600) if missing
    #[command(after_help = "\
The password is asked twice on a terminal (not shown), else read from standard input's first \
line. FILE keeps an Argon2id hash of it, never the password.

Examples:
  taojie proxy-user add /etc/taojie/proxy-users ann
  printf '%s\\n' \"$PASSWORD\" | taojie proxy-user add users bob")]
    Add {
        /// The users file
        file: PathBuf,
        /// The user's name (no `:` or spaces)
        name: String,
    },
}

/// Runs `taojie proxy-user`.
pub fn run(args: ProxyUserArgs) -> Result<()> {
    match args.action {
        ProxyUserAction::Add { file, name } => {
            crate::proxy::users::check_name(&name)?;
            let password = read_password(&name)?;
            let new = crate::proxy::users::add(&file, &name, password.as_bytes())?;
            let what = if new {
                "added"
            } else {
                "changed the password of"
            };
            eprintln!("{what} {name} in {}", file.display());
            Ok(())
        }
    }
}

fn read_password(name: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let p = line.trim_end_matches(['\n', '\r']).to_string();
        if p.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(p);
    }
    let first = prompt(&format!("password for {name}: "))?;
    let again = prompt("again: ")?;
    if first != again {
        bail!("the passwords differ");
    }
    if first.is_empty() {
        bail!("empty password");
    }
    Ok(first)
}

/// Reads a line from the terminal with echo off (through stty, as the chat client does).
fn prompt(text: &str) -> Result<String> {
    let stty = |arg: &str| {
        Command::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    eprint!("{text}");
    std::io::stderr().flush()?;
    if !stty("-echo") {
        bail!("cannot turn the terminal's echo off (stty); pipe the password in instead");
    }
    let mut line = String::new();
    let res = std::io::stdin().lock().read_line(&mut line);
    stty("echo");
    eprintln!();
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
