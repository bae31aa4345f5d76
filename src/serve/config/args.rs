//! From a section's keys to the service's flags: each key is the long flag of the same name
//! (`max-conns = 5` is `--max-conns 5`), so the file takes exactly what the command line
//! takes and clap checks both the same way. A key's value becomes the flag's; `true` gives a
//! switch, `false` leaves it off; an array repeats a repeatable flag.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command, FromArgMatches, Subcommand};

use super::file::{Item, Raw, Table};
use crate::serve::Service;

/// The services a file may have a section for, in the order they start.
pub const SERVICES: [&str; 7] = ["echo", "time", "exec", "files", "chat", "relay", "proxy"];

/// What a key sets: a switch, or the values of a flag that takes some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// A switch, on or off.
    Switch(bool),
    /// One value, or several for a repeatable flag.
    Values(Vec<String>),
}

/// A key's setting and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it sets.
    pub setting: Setting,
    /// The file's line, or `None` for a flag given on the command line.
    pub line: Option<usize>,
}

/// A section's keys by long flag name.
pub type Keys = BTreeMap<String, Entry>;

/// `taojie serve SERVICE`'s command, whose flags a section's keys are.
pub fn command(service: &str) -> Command {
    Service::augment_subcommands(Command::new("serve"))
        .find_subcommand(service)
        .cloned()
        .unwrap_or_else(|| Command::new("unknown"))
}

/// The flags of `cmd` a file may set, by long name: everything but help and positionals.
fn flag<'c>(cmd: &'c Command, long: &str) -> Option<&'c clap::Arg> {
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(long) && a.get_id() != "help")
}

/// Checks `table` (the `[service]` section of `path`) against the service's flags: every key
/// must be one, with a value of the right kind.
pub fn from_table(path: &Path, service: &str, table: &Table) -> Result<Keys> {
    flags_of(path, service, &command(service), table)
}

/// Checks `table`'s keys against the flags of `cmd` (named `service` in messages).
pub fn flags_of(path: &Path, service: &str, cmd: &Command, table: &Table) -> Result<Keys> {
    let mut keys = Keys::new();
    for (name, item) in &table.keys {
        let at = |msg: String| anyhow!("{} line {}: {msg}", path.display(), item.line);
        let Some(arg) = flag(cmd, name) else {
            let hint = match flag(cmd, &name.replace('_', "-")) {
                Some(_) => format!(
                    " (keys are spelt as the flags: `{}`)",
                    name.replace('_', "-")
                ),
                None => String::new(),
            };
            return Err(at(format!("unknown key `{name}` in [{service}]{hint}")));
        };
        let setting = setting(arg, item).map_err(|m| at(format!("[{service}] {name}: {m}")))?;
        keys.insert(
            name.clone(),
            Entry {
                setting,
                line: Some(item.line),
            },
        );
    }
    if service == "proxy" {
        proxy_rules_in_order(path, table)?;
    }
    Ok(keys)
}

/// A file's keys lose their order, so the proxy's rules come in one of `allow`, `deny` or
/// `rule` (whose values keep theirs), never two.
fn proxy_rules_in_order(path: &Path, table: &Table) -> Result<()> {
    let mut lists = table
        .keys
        .iter()
        .filter(|(k, _)| ["allow", "deny", "rule"].contains(&k.as_str()));
    if let (Some(_), Some((k, item))) = (lists.next(), lists.next()) {
        bail!(
            "{} line {}: [proxy] `{k}` beside another rule key: the order of keys is lost, so \
             give every rule in order in one list: rule = [\"deny 10.0.0.0/8\", \"allow *\"]",
            path.display(),
            item.line
        );
    }
    Ok(())
}

fn setting(arg: &clap::Arg, item: &Item) -> Result<Setting, String> {
    let repeatable = matches!(arg.get_action(), ArgAction::Append);
    if !arg.get_action().takes_values() {
        return match item.raw {
            Raw::Bool(b) => Ok(Setting::Switch(b)),
            _ => Err("expected true or false".into()),
        };
    }
    let one = |raw: &Raw| -> Result<String, String> {
        match raw {
            Raw::Str(s) => Ok(s.clone()),
            Raw::Int(n) => Ok(n.to_string()),
            Raw::Float(f) => Ok(f.clone()),
            Raw::Bool(_) => Err("expected a value, not true or false".into()),
            Raw::List(_) => Err("expected one value, not an array".into()),
            Raw::Other(what) => Err(format!("expected a value, not {what}")),
        }
    };
    match &item.raw {
        Raw::List(items) if repeatable => Ok(Setting::Values(
            items.iter().map(one).collect::<Result<_, _>>()?,
        )),
        raw => Ok(Setting::Values(vec![one(raw)?])),
    }
}

/// The flags of `matches` (the parsed `taojie serve SERVICE ...`) given on the command line,
/// as keys that override the file's.
pub fn given(service: &str, matches: &ArgMatches) -> Keys {
    let cmd = command(service);
    let mut keys = Keys::new();
    for arg in cmd.get_arguments() {
        let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else {
            continue;
        };
        if long == "help" || matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let setting = if arg.get_action().takes_values() {
            let values = matches.get_raw(id).into_iter().flatten();
            Setting::Values(values.map(|v| v.to_string_lossy().into_owned()).collect())
        } else {
            Setting::Switch(true)
        };
        keys.insert(
            long.to_string(),
            Entry {
                setting,
                line: None,
            },
        );
    }
    keys
}

/// The service `keys` configure, checked by clap as if they were given as flags. An error
/// names the line of the key at fault (or of the section, `section_line`).
pub fn service(path: &Path, name: &str, section_line: usize, keys: &Keys) -> Result<Service> {
    let mut argv = vec![name.to_string()];
    for (long, entry) in keys {
        match &entry.setting {
            Setting::Switch(true) => argv.push(format!("--{long}")),
            Setting::Switch(false) => {}
            // `--flag=value`, so that a value starting with `-` is not taken for a flag.
            Setting::Values(values) => argv.extend(values.iter().map(|v| format!("--{long}={v}"))),
        }
    }
    let matches = command(name)
        .try_get_matches_from(argv)
        .map_err(|e| clap_error(path, name, section_line, keys, &e))?;
    let service = match name {
        "echo" => Service::Echo(FromArgMatches::from_arg_matches(&matches)?),
        "time" => Service::Time(FromArgMatches::from_arg_matches(&matches)?),
        "exec" => Service::Exec(FromArgMatches::from_arg_matches(&matches)?),
        "files" => Service::Files(FromArgMatches::from_arg_matches(&matches)?),
        "chat" => Service::Chat(FromArgMatches::from_arg_matches(&matches)?),
        "relay" => Service::Relay(FromArgMatches::from_arg_matches(&matches)?),
        "proxy" => {
            let mut a: crate::serve::ProxyArgs = FromArgMatches::from_arg_matches(&matches)?;
            a.order(&matches);
            Service::Proxy(a)
        }
        other => bail!("no service `{other}`"),
    };
    Ok(service)
}

/// clap's complaint about the flags a section made, as one line naming the key's line.
fn clap_error(
    path: &Path,
    service: &str,
    section_line: usize,
    keys: &Keys,
    e: &clap::Error,
) -> anyhow::Error {
    let long_of = |kind: ContextKind| -> Option<String> {
        let text = match e.get(kind)? {
            ContextValue::String(s) => s.clone(),
            ContextValue::Strings(v) => v.first()?.clone(),
            _ => return None,
        };
        let long = text.strip_prefix("--")?;
        Some(long.split([' ', '=']).next()?.to_string())
    };
    let key = long_of(ContextKind::InvalidArg);
    let other = long_of(ContextKind::PriorArg);
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => Some(v.clone()),
        _ => None,
    };
    let msg = match (e.kind(), &key) {
        (ErrorKind::ArgumentConflict, Some(k)) => match &other {
            Some(o) => format!("[{service}] `{k}` cannot be used with `{o}`"),
            None => format!("[{service}] `{k}` cannot be used with the other keys"),
        },
        (ErrorKind::MissingRequiredArgument, Some(k)) => {
            format!("[{service}] needs `{k}` with the keys it has")
        }
        (ErrorKind::InvalidValue | ErrorKind::ValueValidation, Some(k)) => {
            let why = std::error::Error::source(e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            let v = value.unwrap_or_default();
            format!("[{service}] {k}: bad value `{v}`{why}")
        }
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad keys");
            format!("[{service}] {}", first.trim_start_matches("error: "))
        }
    };
    // The line of the key at fault when it came from the file; else of the other key in a
    // conflict, else of the section.
    let line = [&key, &other]
        .into_iter()
        .flatten()
        .filter_map(|k| keys.get(k))
        .find_map(|entry| entry.line);
    match (line, keys.get(key.as_deref().unwrap_or_default())) {
        (_, Some(Entry { line: None, .. })) => anyhow!("command line: {msg}"),
        (Some(line), _) => anyhow!("{} line {line}: {msg}", path.display()),
        (None, _) => anyhow!("{} line {section_line}: {msg}", path.display()),
    }
}
