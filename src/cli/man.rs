//! `taojie man`: the man pages (clap_mangen), generated from the clap definitions in
//! [`crate::cli`], so they never drift from the flags.
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_mangen::Man;

use super::Cli;

/// The name the pages are named after and the completion scripts complete.
pub(super) const BIN: &str = "taojie";

/// Writes taojie(1), the page for the command itself, to `out`.
pub fn man_page(out: &mut dyn Write) -> Result<()> {
    quiet_pipe(out.write_all(&render(&command())?)).context("cannot write the man page")
}

/// Writes taojie.1 and one page per subcommand (`taojie-serve.1`, `taojie-serve-exec.1`, ...)
/// into `dir`, creating it if needed; returns the files written, the command's page first.
pub fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    write_pages(&command(), dir, &mut written)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    Ok(written)
}

fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> io::Result<()> {
    let path = dir.join(Man::new(cmd.clone()).get_filename());
    std::fs::write(&path, render(cmd)?)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// One command's page. clap_mangen titles the text after the options (the `after_help` of
/// `--help`) `EXTRA`; here it is `EXAMPLES` when it starts with examples, as it mostly does,
/// and `NOTES` otherwise, set ragged-right without hyphenation so that a command line wraps
/// only between words and copies as it was written.
fn render(cmd: &clap::Command) -> io::Result<Vec<u8>> {
    let after = cmd
        .get_after_help()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let examples = after
        .strip_prefix("Examples:\n")
        .or_else(|| after.strip_prefix("Example: "));
    let (cmd, title) = match examples {
        Some(rest) => (cmd.clone().after_help(rest.to_string()), "EXAMPLES"),
        None => (cmd.clone(), "NOTES"),
    };
    let mut page = Vec::new();
    Man::new(cmd)
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    Ok(page
        .replacen("\n.SH EXTRA\n", &format!("\n.SH {title}\n.nh\n.ad l\n"), 1)
        .into_bytes())
}

/// A reader that stopped reading (`taojie man | head`) is not an error worth a message.
pub(super) fn quiet_pipe(res: io::Result<()>) -> io::Result<()> {
    match res {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        res => res,
    }
}

/// The command tree as the pages show it: built, so each subcommand carries its full name
/// (`taojie-serve-exec`), and without clap's `help` subcommand, which has no page of its own.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}
