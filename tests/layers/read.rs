//! Reading `src/` for the floors test: the modules (following `mod` declarations from
//! `lib.rs`, `#[path]` included) and every `crate::…` and `super::…` path their code names, in
//! `use` trees and in code, resolved to the module it reaches. A small tokenizer of our own
//! skips comments, strings, character literals and `$crate`, and keeps track of inline modules
//! so that a test module's `super::` means its file.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A module path, `["chat", "room", "members"]`.
pub type ModPath = Vec<String>;

/// One path the code names, resolved: from `file` (its module `from`) at `line`, to `to`.
#[derive(Debug, Clone)]
pub struct Use {
    pub file: PathBuf,
    pub line: usize,
    pub from: ModPath,
    pub to: ModPath,
}

/// Every module of the crate (path → its file, relative to `src`) and every path its code
/// names, following `mod` declarations from `lib.rs` as rustc does.
pub fn read_crate(src: &Path) -> (BTreeMap<ModPath, PathBuf>, Vec<Use>) {
    let mut modules = BTreeMap::new();
    let mut uses = Vec::new();
    modules.insert(vec!["main".to_string()], PathBuf::from("main.rs"));
    let mut todo = vec![(Vec::new(), PathBuf::from("lib.rs"))];
    while let Some((module, file)) = todo.pop() {
        let text = std::fs::read_to_string(src.join(&file))
            .unwrap_or_else(|e| panic!("src/{}: {e}", file.display()));
        let scan = scan(&text);
        // Children of a `mod.rs` or `lib.rs` live beside it; of `x.rs`, in `x/`.
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        for decl in &scan.mods {
            let mut path = module.clone();
            path.extend(decl.inline.iter().cloned());
            path.push(decl.name.clone());
            let inline_dir: PathBuf = decl.inline.iter().collect();
            match (&decl.file, decl.body) {
                (_, true) => {
                    modules.insert(path, file.clone());
                }
                (Some(p), false) => {
                    let base = file.parent().unwrap().join(&inline_dir);
                    todo.push((path, base.join(p)));
                }
                (None, false) => {
                    let base = dir.join(&inline_dir);
                    let flat = base.join(format!("{}.rs", decl.name));
                    let child = match src.join(&flat).exists() {
                        true => flat,
                        false => base.join(&decl.name).join("mod.rs"),
                    };
                    todo.push((path, child));
                }
            }
        }
        for (line, inline, segments) in scan.paths {
            let mut here = module.clone();
            here.extend(inline);
            let Some(to) = resolve(&here, &segments) else {
                continue;
            };
            if module.is_empty() || to.is_empty() {
                continue; // lib.rs declares the modules; it imports nothing
            }
            uses.push(Use {
                file: file.clone(),
                line,
                from: module.clone(),
                to,
            });
        }
        modules.insert(module, file);
    }
    // A path names the deepest module it goes through.
    for u in &mut uses {
        while u.to.len() > 1 && !modules.contains_key(&u.to) {
            u.to.pop();
        }
    }
    (modules, uses)
}

/// `crate::a::b` or `super::…::a` from module `here`, as a path from the crate root; `None` for
/// anything else (a relative path stays inside its module; `self` too).
fn resolve(here: &[String], segments: &[String]) -> Option<ModPath> {
    let (first, rest) = segments.split_first()?;
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "super" => {
            let mut base = here.to_vec();
            let mut rest = segments;
            while let Some(("super", tail)) = rest.split_first().map(|(h, t)| (h.as_str(), t)) {
                base.pop()?;
                rest = tail;
            }
            base.extend(rest.iter().filter(|s| *s != "self").cloned());
            Some(base)
        }
        _ => None,
    }
}

/// A `mod NAME;` or `mod NAME { … }` declaration, inside the inline modules `inline`.
struct ModDecl {
    inline: Vec<String>,
    name: String,
    body: bool,
    /// Its `#[path = "…"]`, if any.
    file: Option<String>,
}

/// What one file declares and names.
struct Scan {
    mods: Vec<ModDecl>,
    /// (line, inline modules around it, segments) of every `crate::`/`super::` path.
    paths: Vec<(usize, Vec<String>, Vec<String>)>,
}

/// A token: an identifier or keyword, `::`, or one punctuation character; with its line.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Punct(char),
    /// A string literal (its text kept for `#[path = "…"]`).
    Str(String),
}

fn scan(text: &str) -> Scan {
    let toks = tokens(text);
    let mut mods = Vec::new();
    let mut paths = Vec::new();
    // Inline modules open around the current token: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut path_attr: Option<String> = None;
    let mut i = 0;
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let names = |inline: &[(String, usize)]| inline.iter().map(|(n, _)| n.clone()).collect();
    while i < toks.len() {
        let (tok, line) = &toks[i];
        match tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Tok::Ident(w) if w == "path" && i > 0 && toks[i - 1].0 == Tok::Punct('[') => {
                if let (Some((Tok::Punct('='), _)), Some((Tok::Str(p), _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    path_attr = Some(p.clone());
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some(name) = ident(i + 1) {
                    let body = matches!(toks.get(i + 2), Some((Tok::Punct('{'), _)));
                    mods.push(ModDecl {
                        inline: names(&inline),
                        name: name.to_string(),
                        body,
                        file: path_attr.take(),
                    });
                    if body {
                        depth += 1;
                        inline.push((name.to_string(), depth));
                        i += 3;
                        continue;
                    }
                }
            }
            Tok::Ident(w) if w == "use" => {
                let end = (i..toks.len())
                    .find(|&j| toks[j].0 == Tok::Punct(';'))
                    .unwrap_or(toks.len());
                for segments in expand(&toks[i + 1..end]) {
                    paths.push((*line, names(&inline), segments));
                }
                i = end;
                continue;
            }
            Tok::Ident(w)
                if (w == "crate" || w == "super")
                    && matches!(toks.get(i + 1), Some((Tok::Path, _)))
                    && !(i > 0 && toks[i - 1].0 == Tok::Punct('$'))
                    && !(i > 0 && toks[i - 1].0 == Tok::Path) =>
            {
                let mut segments = vec![w.clone()];
                let mut j = i + 1;
                while let (Some((Tok::Path, _)), Some(next)) = (toks.get(j), ident(j + 1)) {
                    segments.push(next.to_string());
                    j += 2;
                }
                paths.push((*line, names(&inline), segments));
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Scan { mods, paths }
}

/// The paths one `use` tree names: `crate::{a, b::{c, d}}` is `crate::a`, `crate::b::c`,
/// `crate::b::d` (`self` inside braces is the path before them; `as` names are dropped).
fn expand(toks: &[(Tok, usize)]) -> Vec<Vec<String>> {
    fn tree(toks: &[(Tok, usize)], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        while *i < toks.len() {
            match &toks[*i].0 {
                Tok::Ident(w) if w == "as" => *i += 2,
                Tok::Ident(w)
                    if w == "self" && path.len() == prefix.len() && !prefix.is_empty() =>
                {
                    *i += 1
                }
                Tok::Ident(w) => {
                    path.push(w.clone());
                    *i += 1;
                }
                Tok::Path => *i += 1,
                Tok::Punct('{') => {
                    *i += 1;
                    loop {
                        tree(toks, i, &path, out);
                        match toks.get(*i).map(|t| &t.0) {
                            Some(Tok::Punct(',')) => *i += 1,
                            Some(Tok::Punct('}')) => {
                                *i += 1;
                                return;
                            }
                            _ => return,
                        }
                    }
                }
                Tok::Punct(',' | '}') => break,
                _ => *i += 1, // `*`, `pub(crate)` and the like
            }
        }
        if path.len() > prefix.len() || !prefix.is_empty() {
            out.push(path);
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    // Skip a leading `::`.
    if matches!(toks.first(), Some((Tok::Path, _))) {
        i = 1;
    }
    tree(toks, &mut i, &[], &mut out);
    out
}

/// The tokens of Rust source, enough to find paths and modules: comments are dropped, string
/// and character literals become one token, lifetimes are skipped.
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        match ch {
            '\n' => {
                line += 1;
                i += 1;
            }
            _ if ch.is_whitespace() => i += 1,
            '/' if next == Some('/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut nest = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        nest += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        nest -= 1;
                        i += 2;
                        if nest == 0 {
                            break;
                        }
                    } else {
                        line += usize::from(c[i] == '\n');
                        i += 1;
                    }
                }
            }
            // Raw strings: r"…", r#"…"#, br#"…"#.
            'r' | 'b' if raw_string_start(&c, i).is_some() => {
                let (hashes, body) = raw_string_start(&c, i).unwrap();
                let start_line = line;
                let mut j = body;
                let close: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                while j < c.len() && !c[j..].starts_with(&close) {
                    line += usize::from(c[j] == '\n');
                    j += 1;
                }
                out.push((Tok::Str(c[body..j].iter().collect()), start_line));
                i = j + close.len();
            }
            '"' => {
                let start_line = line;
                let mut j = i + 1;
                let mut s = String::new();
                while j < c.len() && c[j] != '"' {
                    if c[j] == '\\' {
                        j += 1;
                    }
                    if let Some(&x) = c.get(j) {
                        line += usize::from(x == '\n');
                        s.push(x);
                    }
                    j += 1;
                }
                out.push((Tok::Str(s), start_line));
                i = j + 1;
            }
            '\'' => {
                // A character literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
                if next == Some('\\') {
                    let mut j = i + 3;
                    while j < c.len() && c[j] != '\'' {
                        j += 1;
                    }
                    i = j + 1;
                } else if c.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            ':' if next == Some(':') => {
                out.push((Tok::Path, line));
                i += 2;
            }
            _ if ch.is_alphanumeric() || ch == '_' => {
                let mut j = i;
                while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                    j += 1;
                }
                // A byte string or byte char right after `b` is a literal, not an identifier.
                let word: String = c[i..j].iter().collect();
                if word == "b" && matches!(c.get(j), Some('"' | '\'')) {
                    i = j;
                    continue;
                }
                out.push((Tok::Ident(word), line));
                i = j;
            }
            _ => {
                out.push((Tok::Punct(ch), line));
                i += 1;
            }
        }
    }
    out
}

/// At `i`, the start of a raw string (`r"`, `r#"`, `br#"`): its number of `#` and where its
/// text begins.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if c[j] == 'b' {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&x| x == '#').count();
    (c.get(j + hashes) == Some(&'"')).then_some((hashes, j + hashes + 1))
}

#[test]
fn the_reader_finds_every_path_and_nothing_in_comments_or_strings() {
    let text = r##"
        //! Docs name [`crate::cli`] freely.
        use crate::{a, b::{c, self}, d::e as f};
        use super::g::*;
        // use crate::comment;
        /* use crate::block; /* nested */ */
        const S: &str = "crate::string";
        const R: &str = r#"crate::raw "quoted" "#;
        fn x<'a>(c: &'a char) -> char { let _ = '"'; crate::h::call(); *c }
        macro_rules! m { () => { $crate::macro_path() } }
        #[path = "elsewhere.rs"]
        mod moved;
        #[cfg(test)]
        mod tests {
            use super::inner;
        }
        pub(crate) fn y() { super::super::k(); }
    "##;
    let scan = scan(text);
    let named: Vec<(usize, String)> = scan
        .paths
        .iter()
        .map(|(line, inline, p)| {
            let mut all = inline.clone();
            all.push(p.join("::"));
            (*line, all.join("/"))
        })
        .collect();
    let want = [
        (3, "crate::a"),
        (3, "crate::b::c"),
        (3, "crate::b"),
        (3, "crate::d::e"),
        (4, "super::g"),
        (9, "crate::h::call"),
        (15, "tests/super::inner"),
        (17, "super::super::k"),
    ];
    let want: Vec<(usize, String)> = want.iter().map(|(l, p)| (*l, p.to_string())).collect();
    assert_eq!(named, want);
    let mods: Vec<(&str, bool, Option<&str>)> = scan
        .mods
        .iter()
        .map(|m| (m.name.as_str(), m.body, m.file.as_deref()))
        .collect();
    assert_eq!(
        mods,
        [
            ("moved", false, Some("elsewhere.rs")),
            ("tests", true, None)
        ]
    );
    // `super` from a test module inside chat/room.rs is chat::room; from the file, chat.
    let here = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        resolve(
            &here(&["chat", "room", "tests"]),
            &path(&["super", "State"])
        ),
        Some(path(&["chat", "room", "State"]))
    );
    assert_eq!(
        resolve(
            &here(&["chat", "room"]),
            &path(&["super", "super", "cli", "Cli"])
        ),
        Some(path(&["cli", "Cli"]))
    );
}
