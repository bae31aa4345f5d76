//! `taojie serve --config FILE`: which services run and their flags, from a TOML file.
//!
//! A `[SERVICE]` section (echo, time, exec, files, chat) runs that service; its keys are the
//! flags of `taojie serve SERVICE`, spelt the same (kebab-case: `max-conns`), and checked by
//! the same parser ([`args`]). The top-level keys are `log-level` and `metrics`. Flags on the command line
//! override the file's keys: `taojie serve --config F --max-conns 50` for every section that
//! takes it, `taojie serve --config F exec --max-procs 4` for exec, which then runs alone.
//! An unknown key or a bad value is one error naming the line ([`mod@file`] keeps each key's).
//! [`run`] starts the services; [`reload`] re-reads the file on SIGHUP, applies the limits
//! ([`LIVE_KEYS`]) and the log level, and says what needs a restart.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::ArgMatches;
use clap::parser::ValueSource;

pub mod args;
pub mod file;
pub mod forward;
pub mod reload;
pub mod run;

pub use args::{Entry, Keys, SERVICES, Setting};
pub use run::serve;

/// The keys that change on SIGHUP, in sections of services that take them: the connection
/// limits (echo, time, files, chat), for connections accepted after the reload, and the
/// handshake limits (exec, files, chat), for handshakes that start after it.
pub const LIVE_KEYS: [&str; 6] = [
    "max-conns",
    "idle-timeout",
    "grace",
    "max-handshakes",
    "max-handshakes-per-addr",
    "handshake-timeout",
];

/// Flags given on the command line, laid over the file's keys every time it is read.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `taojie serve --config F SERVICE`: only that service runs.
    pub only: Option<String>,
    /// `--max-conns`, `--idle-timeout`, `--grace` given to `serve` itself: for every section.
    pub all: Keys,
    /// The flags given to SERVICE.
    pub service: Keys,
}

impl Overrides {
    /// The flags given to `taojie serve` (and to its SERVICE) on the command line, from clap's
    /// matches for `serve`, which record which flags were given rather than defaulted.
    pub fn from_matches(serve: &ArgMatches) -> Overrides {
        let mut all = Keys::new();
        for (id, long) in [
            ("max_conns", "max-conns"),
            ("idle_timeout", "idle-timeout"),
            ("grace", "grace"),
        ] {
            if serve.value_source(id) == Some(ValueSource::CommandLine)
                && let Some(values) = serve.get_raw(id)
            {
                let values = values.map(|v| v.to_string_lossy().into_owned()).collect();
                let setting = Setting::Values(values);
                all.insert(
                    long.into(),
                    Entry {
                        setting,
                        line: None,
                    },
                );
            }
        }
        let (only, service) = match serve.subcommand() {
            Some((name, m)) => (Some(name.to_string()), args::given(name, m)),
            None => (None, Keys::new()),
        };
        Overrides { only, all, service }
    }
}

/// `taojie serve --check-config FILE`: reads and checks `path` as `--config` would (with the
/// command line's `overrides`), looks up every address it names, binding and writing nothing; prints `FILE: ok (SERVICES)` on
/// standard output and notes (a key still to be created) on standard error.
pub async fn check(path: &Path, overrides: &Overrides) -> Result<()> {
    let config = Config::load(path, overrides)?;
    config.resolve_addresses().await?;
    for note in config.check_files()? {
        eprintln!("taojie: {note}");
    }
    let mut names: Vec<String> = config.sections.iter().map(|s| s.name.to_string()).collect();
    names.extend(
        config
            .forwards
            .iter()
            .map(|f| format!("forward-{}", f.name)),
    );
    println!("{}: ok ({})", path.display(), names.join(", "));
    Ok(())
}

/// One service's section, with the command line's flags laid over it, checked.
#[derive(Debug, Clone)]
pub struct Section {
    /// The service.
    pub name: &'static str,
    /// The line of its header (1 when it is not in the file).
    pub line: usize,
    /// Its keys (flags), the command line's included.
    pub keys: Keys,
}

impl Section {
    /// The service these keys configure.
    pub fn service(&self, path: &Path) -> Result<super::Service> {
        args::service(path, self.name, self.line, &self.keys)
    }

    /// A path key's value, if set.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        match &self.keys.get(key)?.setting {
            Setting::Values(v) => v.first().map(PathBuf::from),
            Setting::Switch(_) => None,
        }
    }

    fn on(&self, key: &str) -> bool {
        matches!(
            self.keys.get(key),
            Some(Entry {
                setting: Setting::Switch(true),
                ..
            })
        )
    }
}

/// A configuration file read and checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// `log-level`, if set.
    pub log_level: Option<String>,
    /// `metrics`, the address of the Prometheus endpoint (as `--metrics`), if set.
    pub metrics: Option<String>,
    /// The line of `metrics`.
    pub metrics_line: usize,
    /// The services to run, in start order.
    pub sections: Vec<Section>,
    /// The `[[forward]]` tables, in file order (started after the services).
    pub forwards: Vec<forward::ForwardSection>,
    /// The command line's flags, applied again at each reload.
    pub overrides: Overrides,
}

impl Config {
    /// Reads and checks `path`, with `overrides` laid over it. Every error is one line naming
    /// the file and line.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let parsed = file::parse(path, &text)?;
        let at = |line: usize, msg: String| anyhow!("{} line {line}: {msg}", path.display());
        let mut log_level = None;
        let mut metrics = None;
        let mut metrics_line = 1;
        for (key, item) in &parsed.top {
            match (key.as_str(), &item.raw) {
                ("log-level", file::Raw::Str(s)) => {
                    crate::log::level::parse(s).map_err(|e| at(item.line, format!("{e:#}")))?;
                    log_level = Some(s.clone());
                }
                ("metrics", raw) => {
                    let spec = match raw {
                        file::Raw::Str(s) => s.clone(),
                        file::Raw::Int(port) => port.to_string(),
                        _ => {
                            return Err(at(
                                item.line,
                                "metrics: expected a port or \"HOST:PORT\" (as --metrics)".into(),
                            ));
                        }
                    };
                    crate::serve::metrics::spec(&spec)
                        .map_err(|e| at(item.line, format!("metrics: bad value `{spec}`: {e}")))?;
                    metrics = Some(spec);
                    metrics_line = item.line;
                }
                ("log-level", _) => {
                    return Err(at(item.line, "log-level: expected a string".into()));
                }
                (k, _) if SERVICES.contains(&k) => {
                    return Err(at(item.line, format!("`{k}` must be a section: [{k}]")));
                }
                (k, _) => {
                    return Err(at(
                        item.line,
                        format!("unknown key `{k}` (the top-level keys are log-level and metrics)"),
                    ));
                }
            }
        }
        if let Some(table) = parsed.tables.get("forward") {
            return Err(at(
                table.line,
                "forwards are [[forward]] tables (two brackets: one table per forward)".into(),
            ));
        }
        if let Some((name, tables)) = parsed.arrays.iter().find(|(name, _)| *name != "forward") {
            return Err(at(
                tables[0].line,
                format!("unknown tables [[{name}]] (the only array of tables is [[forward]])"),
            ));
        }
        // `serve --config F SERVICE` runs that service alone.
        let forwards = match (&overrides.only, parsed.arrays.get("forward")) {
            (None, Some(tables)) => forward::from_tables(path, tables)?,
            _ => Vec::new(),
        };
        if let Some((name, table)) = parsed
            .tables
            .iter()
            .find(|(name, _)| !SERVICES.contains(&name.as_str()))
        {
            return Err(at(
                table.line,
                format!(
                    "unknown section [{name}] (the services are {})",
                    SERVICES.join(", ")
                ),
            ));
        }
        let mut sections = Vec::new();
        for name in SERVICES {
            if overrides.only.as_deref().is_some_and(|only| only != name) {
                continue;
            }
            let table = parsed.tables.get(name);
            let (line, mut keys) = match table {
                Some(t) => (t.line, args::from_table(path, name, t)?),
                None if overrides.only.is_some() => (1, Keys::new()),
                None => continue,
            };
            let cmd = args::command(name);
            for (k, entry) in &overrides.all {
                if cmd.get_arguments().any(|a| a.get_long() == Some(k)) {
                    keys.insert(k.clone(), entry.clone());
                }
            }
            keys.extend(overrides.service.clone());
            let section = Section { name, line, keys };
            section.service(path)?;
            sections.push(section);
        }
        if sections.is_empty() && forwards.is_empty() {
            bail!(
                "{}: no service to run: add a section such as [echo] (services: {}), or [[forward]]",
                path.display(),
                SERVICES.join(", ")
            );
        }
        Ok(Config {
            path: path.to_path_buf(),
            log_level,
            metrics,
            metrics_line,
            sections,
            forwards,
            overrides: overrides.clone(),
        })
    }

    /// The section of `name`, if it runs.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Looks up every address the file names (`metrics` and each section's address keys,
    /// those whose flag takes an ADDR): an error names the line of the first that does not
    /// resolve. Their form was checked when the file was read, by the flags' parser.
    pub async fn resolve_addresses(&self) -> Result<()> {
        if let Some(spec) = &self.metrics
            && !spec.bytes().all(|b| b.is_ascii_digit())
        {
            crate::addr::resolve(spec).await.map_err(|e| {
                anyhow!(
                    "{} line {}: metrics: {e:#}",
                    self.path.display(),
                    self.metrics_line
                )
            })?;
        }
        for s in &self.sections {
            let cmd = args::command(s.name);
            for (key, entry) in &s.keys {
                let takes_addr = cmd.get_arguments().any(|a| {
                    a.get_long() == Some(key.as_str())
                        && a.get_value_names().is_some_and(|v| v == ["ADDR"])
                });
                let (true, Setting::Values(values)) = (takes_addr, &entry.setting) else {
                    continue;
                };
                for value in values {
                    if let Err(e) = crate::addr::resolve(value).await {
                        let at = match entry.line {
                            Some(line) => format!("{} line {line}", self.path.display()),
                            None => "command line".to_string(),
                        };
                        bail!("{at}: [{}] {key}: {e:#}", s.name);
                    }
                }
            }
        }
        Ok(())
    }

    /// What `--check-config` looks at beyond the keys, binding nothing and writing nothing:
    /// the key, identity and authorized files that exist must load, and exec and files must
    /// have a key, an identity or `insecure-no-auth`. Returns notes (a key that will be
    /// created at the first start, say).
    pub fn check_files(&self) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for s in &self.sections {
            let at = |e: anyhow::Error| {
                anyhow!(
                    "{} line {}: [{}] {e:#}",
                    self.path.display(),
                    s.line,
                    s.name
                )
            };
            if let Some(key) = s.path("key") {
                if key.exists() {
                    crate::auth::Key::load(&key).map_err(at)?;
                } else {
                    notes.push(format!(
                        "[{}] key {} does not exist yet: it is created (mode 600) at the first start",
                        s.name,
                        key.display()
                    ));
                }
            }
            if let Some(id) = s.path("identity") {
                crate::secure::Identity::load(&id).map_err(at)?;
            }
            if let Some(list) = s.path("authorized") {
                crate::secure::Authorized::load(&list).map_err(at)?;
            }
            if let Some(root) = s.path("root")
                && !root.is_dir()
            {
                notes.push(format!(
                    "[{}] root {} does not exist yet: it is created (mode 700) at the first start",
                    s.name,
                    root.display()
                ));
            }
            let keyed = s.path("key").is_some() || s.path("identity").is_some();
            if matches!(s.name, "exec" | "files") && !keyed && !s.on("insecure-no-auth") {
                return Err(at(anyhow!(
                    "needs `key`, or `identity` with `authorized`, or `insecure-no-auth = true` \
                     on a loopback address"
                )));
            }
        }
        for f in &self.forwards {
            let at = |e: anyhow::Error| {
                anyhow!("{} line {}: [[forward]] {e:#}", self.path.display(), f.line)
            };
            for key in ["from-key", "to-key"] {
                if let Some(k) = f.path(key) {
                    crate::auth::Key::load(&k).map_err(at)?;
                }
            }
            for id in ["from-identity", "to-identity"] {
                if let Some(p) = f.path(id) {
                    crate::secure::Identity::load(&p).map_err(at)?;
                }
            }
            if let Some(list) = f.path("from-authorized") {
                crate::secure::Authorized::load(&list).map_err(at)?;
            }
        }
        Ok(notes)
    }
}
