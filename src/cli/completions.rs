//! `taojie completions SHELL`: a shell's completion script (clap_complete), generated from
//! the clap definitions in [`crate::cli`], so it never drifts from the flags.
use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;
use super::man::{BIN, quiet_pipe};

/// Writes `shell`'s completion script for taojie to `out`.
pub fn write(shell: Shell, out: &mut dyn Write) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
    quiet_pipe(out.write_all(&script)).context("cannot write the completion script")
}
