//! The file-transfer offer, as the sender's `offer` message carries it: a text, a file, a
//! directory as a zip, or (between two taojie peers) a stream of entries.
use anyhow::{Result, bail};
use serde_json::{Value, json};

/// The ability that marks a taojie peer (in `app_versions`, and the key of an entry-stream
/// offer).
pub const ABILITY: &str = "taojie-entries-v1";

/// The largest size an offer may state (JSON numbers are exact up to 2^53).
pub const MAX_SIZE: u64 = 1 << 53;
/// The most top-level names a taojie offer may list.
pub const MAX_NAMES: usize = 4096;

/// What the sender offers.
#[derive(Debug, Clone, PartialEq)]
pub enum Offer {
    /// A text message.
    Message(String),
    /// One file.
    File {
        /// Its name (checked by the receiver before use).
        name: String,
        /// Its size in bytes.
        size: u64,
    },
    /// A directory, as a zip archive.
    Directory {
        /// Its name.
        name: String,
        /// Bytes of the zip.
        zip_size: u64,
        /// Bytes of its files, unpacked.
        bytes: u64,
        /// How many files.
        files: u64,
    },
    /// Files and directories streamed entry by entry (taojie peers only).
    Entries {
        /// The top-level names, each of which appears in the receiver's directory.
        names: Vec<String>,
        /// How many files in all.
        files: u64,
        /// Bytes of all files.
        bytes: u64,
    },
}

fn size(v: &Value, key: &str) -> Result<u64> {
    match v.get(key).and_then(Value::as_u64) {
        Some(n) if n <= MAX_SIZE => Ok(n),
        _ => bail!("refused: the offer's {key} is not a size"),
    }
}

fn text(v: &Value, key: &str) -> Result<String> {
    match v.get(key).and_then(Value::as_str) {
        Some(s) => Ok(s.to_string()),
        None => bail!("refused: the offer has no {key}"),
    }
}

impl Offer {
    /// Reads an `offer` message's value.
    pub fn parse(v: &Value) -> Result<Offer> {
        if let Some(m) = v.get("message") {
            let Some(m) = m.as_str() else {
                bail!("refused: the offered message is not text")
            };
            return Ok(Offer::Message(m.to_string()));
        }
        if let Some(f) = v.get("file") {
            return Ok(Offer::File {
                name: text(f, "filename")?,
                size: size(f, "filesize")?,
            });
        }
        if let Some(d) = v.get("directory") {
            let mode = text(d, "mode")?;
            if !mode.starts_with("zipfile") {
                bail!("refused: the sender offers a directory as {mode:?}, not a zip file");
            }
            return Ok(Offer::Directory {
                name: text(d, "dirname")?,
                zip_size: size(d, "zipsize")?,
                bytes: size(d, "numbytes")?,
                files: size(d, "numfiles")?,
            });
        }
        if let Some(e) = v.get(ABILITY) {
            let names: Vec<String> = e
                .get("names")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            if names.is_empty() || names.len() > MAX_NAMES {
                bail!("refused: the offer lists no names, or too many");
            }
            return Ok(Offer::Entries {
                names,
                files: size(e, "files")?,
                bytes: size(e, "bytes")?,
            });
        }
        bail!("refused: the sender offers something this receiver does not know")
    }

    /// The `offer` message's value.
    pub fn to_json(&self) -> Value {
        match self {
            Offer::Message(m) => json!({ "message": m }),
            Offer::File { name, size } => json!({"file": {"filename": name, "filesize": size}}),
            Offer::Directory {
                name,
                zip_size,
                bytes,
                files,
            } => json!({"directory": {
                "mode": "zipfile/deflated", "dirname": name, "zipsize": zip_size,
                "numbytes": bytes, "numfiles": files,
            }}),
            Offer::Entries {
                names,
                files,
                bytes,
            } => json!({ ABILITY: {"names": names, "files": files, "bytes": bytes} }),
        }
    }
}

/// A byte count for people: `1.5 MiB`.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_round_trip() {
        for o in [
            Offer::Message("hi".into()),
            Offer::File {
                name: "a".into(),
                size: 5,
            },
            Offer::Directory {
                name: "d".into(),
                zip_size: 9,
                bytes: 20,
                files: 2,
            },
            Offer::Entries {
                names: vec!["a".into(), "d".into()],
                files: 3,
                bytes: 7,
            },
        ] {
            assert_eq!(Offer::parse(&o.to_json()).unwrap(), o);
        }
    }

    #[test]
    fn the_python_clients_offers_parse() {
        let v = json!({"directory": {"mode": "zipfile/deflated", "dirname": "d",
            "zipsize": 10, "numbytes": 20, "numfiles": 2}});
        assert!(matches!(Offer::parse(&v).unwrap(), Offer::Directory { .. }));
    }

    #[test]
    fn bad_offers_are_refused() {
        for v in [
            json!({"file": {"filename": "a", "filesize": -1}}),
            json!({"file": {"filename": "a", "filesize": 1e300}}),
            json!({"file": {"filesize": 1}}),
            json!({"directory": {"mode": "tarball", "dirname": "d", "zipsize": 1,
                "numbytes": 1, "numfiles": 1}}),
            json!({"message": 5}),
            json!({"shiny": {}}),
        ] {
            assert!(Offer::parse(&v).is_err(), "{v}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(5), "5 bytes");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(64 << 20), "64.0 MiB");
    }
}
