//! Asking for a code on a terminal, with Tab completing the word being typed from the word
//! list (odd and even words in their places): `7-cross<Tab>` becomes `7-crossover-`. The
//! terminal is put in non-canonical mode with `stty` (no unsafe code) and restored on drop.
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use super::code::complete;

/// The terminal's modes before we changed them; put back on drop.
struct Raw(String);

impl Raw {
    fn enter() -> Option<Raw> {
        let tty = || std::fs::File::open("/dev/tty").ok();
        let saved = Command::new("stty")
            .arg("-g")
            .stdin(tty()?)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let saved = String::from_utf8(saved.stdout).ok()?.trim().to_string();
        let ok = Command::new("stty")
            .args(["-icanon", "-echo", "min", "1"])
            .stdin(tty()?)
            .status();
        ok.ok()?.success().then_some(Raw(saved))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Ok(tty) = std::fs::File::open("/dev/tty") {
            let _ = Command::new("stty").arg(&self.0).stdin(tty).status();
        }
    }
}

/// Reads a code from the terminal, completing words on Tab (codes of `words` words).
pub fn ask_code(words: usize) -> Result<String> {
    let mut err = std::io::stderr();
    let prompt = "Enter the wormhole code (Tab completes words): ";
    let Some(_raw) = Raw::enter() else {
        eprint!("Enter the wormhole code: ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line);
    };
    write!(err, "{prompt}")?;
    err.flush()?;
    let mut line = String::new();
    let mut byte = [0u8; 1];
    let mut stdin = std::io::stdin().lock();
    loop {
        if stdin.read(&mut byte)? == 0 {
            bail!("no code given");
        }
        match byte[0] {
            b'\n' | b'\r' => {
                writeln!(err)?;
                return Ok(line);
            }
            3 | 4 => {
                writeln!(err)?;
                bail!("no code given");
            }
            8 | 127 if line.pop().is_some() => write!(err, "\x08 \x08")?,
            b'\t' => {
                let options = complete(&line, words);
                match options.as_slice() {
                    [one] => {
                        write!(err, "{}", &one[line.len()..])?;
                        line = one.clone();
                    }
                    [] => write!(err, "\x07")?,
                    many => {
                        // The longest common start, then the choices under the line.
                        let mut common = many[0].clone();
                        for o in many {
                            while !o.starts_with(&common) {
                                common.pop();
                            }
                        }
                        let shown: Vec<&str> = many
                            .iter()
                            .take(24)
                            .map(|o| o.rsplit('-').find(|w| !w.is_empty()).unwrap_or(o))
                            .collect();
                        let more = if many.len() > 24 { " ..." } else { "" };
                        write!(err, "\r\n{}{more}\r\n{prompt}{common}", shown.join(" "))?;
                        line = common;
                    }
                }
            }
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b' ' => {
                let c = if b == b' ' { '-' } else { b as char };
                line.push(c);
                write!(err, "{c}")?;
            }
            _ => {}
        }
        err.flush()?;
    }
}
