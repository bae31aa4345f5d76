//! `[[forward]]` tables: one `taojie forward` each, several in one file. A table's keys are
//! `listen` and `target` (the command's two addresses) and the flags of `taojie forward`,
//! spelt the same (`from-key`, `to-tls = true`, `max-conns`), checked by the same parser;
//! `name` (optional) names the forward in its announce line, its log lines and its metrics:
//! `forward-NAME tcp ADDRESS`, `service="forward-NAME"`, NAME being its place in the file
//! (1, 2, ...) when not given.
use std::path::Path;

use anyhow::{Result, anyhow};
use clap::{Args, FromArgMatches};

use super::args::{self, Entry, Keys, Setting};
use super::file::{Raw, Table};
use crate::serve::args::ForwardArgs;

/// One `[[forward]]` table, checked.
#[derive(Debug, Clone)]
pub struct ForwardSection {
    /// Its name, as in `forward-NAME`.
    pub name: String,
    /// The line it starts on.
    pub line: usize,
    /// `listen`.
    pub listen: String,
    /// `target`.
    pub target: String,
    /// The other keys (flags).
    pub keys: Keys,
}

/// `taojie forward`'s command, whose flags the tables' keys are.
fn command() -> clap::Command {
    ForwardArgs::augment_args(clap::Command::new("forward"))
}

/// Reads every `[[forward]]` table of `path`.
pub fn from_tables(path: &Path, tables: &[Table]) -> Result<Vec<ForwardSection>> {
    let mut out: Vec<ForwardSection> = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let at = |line: usize, msg: String| anyhow!("{} line {line}: {msg}", path.display());
        let text = |key: &str| -> Result<Option<String>> {
            match table.keys.get(key) {
                None => Ok(None),
                Some(item) => match &item.raw {
                    Raw::Str(s) => Ok(Some(s.clone())),
                    Raw::Int(n) if key != "name" => Ok(Some(n.to_string())),
                    _ => Err(at(
                        item.line,
                        format!("[[forward]] {key}: expected a string"),
                    )),
                },
            }
        };
        let need = |key: &str| -> Result<String> {
            text(key)?.ok_or_else(|| at(table.line, format!("[[forward]] needs `{key}`")))
        };
        let (listen, target) = (need("listen")?, need("target")?);
        let name = text("name")?.unwrap_or_else(|| (i + 1).to_string());
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(at(
                table.line,
                format!("[[forward]] name {name:?}: letters, digits, - and _ only"),
            ));
        }
        if out.iter().any(|f| f.name == name) {
            return Err(at(
                table.line,
                format!("[[forward]] name {name:?} is taken by another"),
            ));
        }
        let mut flags = table.clone();
        for key in ["listen", "target", "name"] {
            flags.keys.remove(key);
        }
        let keys = args::flags_of(path, "[forward]", &command(), &flags)?;
        let section = ForwardSection {
            name,
            line: table.line,
            listen,
            target,
            keys,
        };
        section.options(path)?;
        out.push(section);
    }
    Ok(out)
}

impl ForwardSection {
    /// The forward's options, checked by clap as if given on the command line.
    pub fn options(&self, path: &Path) -> Result<crate::forward::Options> {
        let mut argv = vec![
            "forward".to_string(),
            self.listen.clone(),
            self.target.clone(),
        ];
        for (long, entry) in &self.keys {
            match &entry.setting {
                Setting::Switch(true) => argv.push(format!("--{long}")),
                Setting::Switch(false) => {}
                Setting::Values(values) => {
                    argv.extend(values.iter().map(|v| format!("--{long}={v}")))
                }
            }
        }
        let at = |msg: String| anyhow!("{} line {}: [[forward]] {msg}", path.display(), self.line);
        let matches = command().try_get_matches_from(argv).map_err(|e| {
            // clap's first lines up to its usage: the complaint and what it is about.
            let text = e.to_string();
            let said: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage"))
                .filter(|l| !l.is_empty())
                .collect();
            at(said.join(" ").trim_start_matches("error: ").to_string())
        })?;
        let parsed = ForwardArgs::from_arg_matches(&matches).map_err(|e| at(e.to_string()))?;
        let mut options = crate::forward::Options::from(parsed);
        // Named once per table and process: a handful of strings for good.
        options.service = Box::leak(format!("forward-{}", self.name).into_boxed_str());
        Ok(options)
    }

    /// A path key's value, if set.
    pub fn path(&self, key: &str) -> Option<std::path::PathBuf> {
        match &self.keys.get(key)? {
            Entry {
                setting: Setting::Values(v),
                ..
            } => v.first().map(std::path::PathBuf::from),
            _ => None,
        }
    }
}

/// Whether two readings of the tables ask for the same forwards (lines aside).
pub fn same(a: &[ForwardSection], b: &[ForwardSection]) -> bool {
    let settings = |f: &ForwardSection| -> Vec<(String, Setting)> {
        f.keys
            .iter()
            .map(|(k, e)| (k.clone(), e.setting.clone()))
            .collect()
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (&x.name, &x.listen, &x.target) == (&y.name, &y.listen, &y.target)
                && settings(x) == settings(y)
        })
}
