//! Reading the TOML file: its sections and keys with the line each is on, before anything
//! knows what the keys mean.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, anyhow};
use toml::de::{DeTable, DeValue};

/// One value as the file wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// A string.
    Str(String),
    /// An integer, in decimal.
    Int(i128),
    /// A float, as written (underscores removed).
    Float(String),
    /// `true` or `false`.
    Bool(bool),
    /// An array of values.
    List(Vec<Raw>),
    /// A table or a date: never a flag's value; the word says which.
    Other(&'static str),
}

/// A key's value and the line it is on.
#[derive(Debug, Clone)]
pub struct Item {
    /// The value.
    pub raw: Raw,
    /// 1-based line of the key.
    pub line: usize,
}

/// A `[section]` of the file.
#[derive(Debug, Clone)]
pub struct Table {
    /// 1-based line of its header (or of its first key, for a dotted or inline table).
    pub line: usize,
    /// Its keys, as spelt in the file.
    pub keys: BTreeMap<String, Item>,
}

/// The whole file: top-level keys and sections.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Keys outside any section.
    pub top: BTreeMap<String, Item>,
    /// The sections by name.
    pub tables: BTreeMap<String, Table>,
    /// The arrays of tables (`[[forward]]`) by name, in file order.
    pub arrays: BTreeMap<String, Vec<Table>>,
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses `text` (read from `path`, which names it in errors). A TOML syntax error is one line:
/// `FILE line N: MESSAGE`.
pub fn parse(path: &Path, text: &str) -> Result<Parsed> {
    let doc = DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        let msg = e.message().lines().next().unwrap_or("bad TOML").trim();
        anyhow!("{} line {line}: {msg}", path.display())
    })?;
    let mut parsed = Parsed::default();
    for (key, value) in doc.get_ref() {
        let line = line_of(text, key.span().start);
        match value.get_ref() {
            DeValue::Table(table) => {
                let keys = table
                    .iter()
                    .map(|(k, v)| {
                        let item = Item {
                            raw: raw(v.get_ref()),
                            line: line_of(text, k.span().start),
                        };
                        (k.get_ref().to_string(), item)
                    })
                    .collect();
                parsed
                    .tables
                    .insert(key.get_ref().to_string(), Table { line, keys });
            }
            DeValue::Array(items)
                if !items.is_empty()
                    && items
                        .iter()
                        .all(|v| matches!(v.get_ref(), DeValue::Table(_))) =>
            {
                let tables = items
                    .iter()
                    .filter_map(|v| match v.get_ref() {
                        DeValue::Table(t) => Some(table(text, line_of(text, v.span().start), t)),
                        _ => None,
                    })
                    .collect();
                parsed.arrays.insert(key.get_ref().to_string(), tables);
            }
            other => {
                let item = Item {
                    raw: raw(other),
                    line,
                };
                parsed.top.insert(key.get_ref().to_string(), item);
            }
        }
    }
    Ok(parsed)
}

/// A table's keys with their lines; `line` is where it starts.
fn table(text: &str, line: usize, t: &DeTable<'_>) -> Table {
    let keys = t
        .iter()
        .map(|(k, v)| {
            let item = Item {
                raw: raw(v.get_ref()),
                line: line_of(text, k.span().start),
            };
            (k.get_ref().to_string(), item)
        })
        .collect();
    Table { line, keys }
}

fn raw(value: &DeValue<'_>) -> Raw {
    match value {
        DeValue::String(s) => Raw::Str(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i128::from_str_radix(&digits, i.radix()) {
                Ok(n) => Raw::Int(n),
                Err(_) => Raw::Other("an integer out of range"),
            }
        }
        DeValue::Float(f) => Raw::Float(f.as_str().replace('_', "")),
        DeValue::Boolean(b) => Raw::Bool(*b),
        DeValue::Datetime(_) => Raw::Other("a date"),
        DeValue::Array(a) => Raw::List(a.iter().map(|v| raw(v.get_ref())).collect()),
        DeValue::Table(_) => Raw::Other("a table"),
    }
}
