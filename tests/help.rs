//! What `--help` says, compared as text: global options last under their own heading in
//! every subcommand's help, flag help that ends in a whole sentence, examples where a user
//! looks for them, a hint at `--` for `exec`, and the one-line description that names every
//! part.
mod common;

use std::time::Duration;

use common::run_with_input;

const LIMIT: Duration = Duration::from_secs(20);

/// `taojie ARGS`' standard output, which must exit 0.
fn help(args: &[&str]) -> String {
    let (status, out, err) = run_with_input(args, b"", LIMIT);
    assert!(status.success(), "taojie {args:?}: {err}");
    String::from_utf8(out).unwrap()
}

/// The subcommands a help text lists under `Commands:` (without clap's `help`).
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

/// Every command path: `[]`, `["serve"]`, `["serve", "exec"]`, ...
fn every_command() -> Vec<Vec<String>> {
    let mut all = vec![Vec::new()];
    let mut i = 0;
    while i < all.len() {
        let path = all[i].clone();
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        for sub in subcommands(&help(&args)) {
            let mut deeper = path.clone();
            deeper.push(sub);
            all.push(deeper);
        }
        i += 1;
    }
    all
}

#[test]
fn global_options_come_last_under_their_own_heading_in_every_help() {
    let commands = every_command();
    assert!(commands.len() > 20, "{commands:?}");
    for path in commands {
        for flag in ["--help", "-h"] {
            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
            args.push(flag);
            let text = help(&args);
            let lines: Vec<&str> = text.lines().collect();
            let heading = lines
                .iter()
                .position(|l| *l == "Global options:")
                .unwrap_or_else(|| panic!("{args:?}: no `Global options:`\n{text}"));
            let section: Vec<&str> = lines[heading + 1..]
                .iter()
                .take_while(|l| !l.is_empty())
                .copied()
                .collect();
            // One entry: its name line, then (in the long form) its text and its default.
            let entries: Vec<&&str> = section
                .iter()
                .filter(|l| l.trim_start().starts_with('-'))
                .collect();
            assert!(
                entries.len() == 1
                    && section[0].trim_start().starts_with("--log-format")
                    && section.len() <= 4,
                "{args:?}: the global options are not one short entry:\n{text}"
            );
            // No option heading after it, and --log-format nowhere else.
            for later in &lines[heading + 1..] {
                assert!(
                    !later.ends_with("options:") && *later != "Options:",
                    "{args:?}:\n{text}"
                );
            }
            let mentions = lines
                .iter()
                .filter(|l| l.trim_start().starts_with("--log-format"))
                .count();
            assert_eq!(mentions, 1, "{args:?}:\n{text}");
            if let Some(options) = lines.iter().position(|l| *l == "Options:") {
                assert!(
                    options < heading,
                    "{args:?}: Options after the global ones\n{text}"
                );
            }
        }
    }
}

#[test]
fn the_retries_help_of_put_and_get_ends_in_a_whole_sentence() {
    for command in ["put", "get"] {
        let text = help(&[command, "--help"]);
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let start = words.find("--retries <N>").expect("--retries in the help");
        let end = words[start..].find("[default: 5]").expect("its default") + start;
        let said = words[start..end].trim_end();
        assert!(
            said.ends_with("A first connection that times out or finds no route is retried"),
            "{command}: {said}"
        );
    }
}

#[test]
fn http_help_has_examples() {
    let text = help(&["http", "--help"]);
    let examples: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "Examples:")
        .skip(1)
        .filter(|l| l.trim_start().starts_with("taojie http "))
        .collect();
    assert!(examples.len() >= 4, "{text}");
    for flag in [" -o ", " -i ", " -I ", " --raw"] {
        assert!(
            examples.iter().any(|e| e.contains(flag)),
            "no {flag} example:\n{text}"
        );
    }
}

#[test]
fn exec_without_dashes_hints_at_them() {
    for args in [
        &["exec", "127.0.0.1:9", "uname", "-a"][..],
        &["--log-format", "json", "exec", "127.0.0.1:9", "uname"],
    ] {
        let (status, _, err) = run_with_input(args, b"", LIMIT);
        assert_eq!(status.code(), Some(2), "{err}");
        assert!(
            err.contains("tip: the command goes after `--`: taojie exec ADDR -- uname"),
            "{args:?}: {err}"
        );
    }
    // An unknown flag keeps clap's own advice, and other commands get no word about exec.
    let (_, _, err) = run_with_input(&["exec", "127.0.0.1:9", "--bogus"], b"", LIMIT);
    assert!(!err.contains("the command goes after"), "{err}");
    let (_, _, err) = run_with_input(&["ls", "127.0.0.1:9", "a", "b"], b"", LIMIT);
    assert!(!err.contains("the command goes after"), "{err}");
}

#[test]
fn the_one_line_description_names_every_part() {
    let text = help(&["--help"]);
    let about = text.lines().next().unwrap();
    let page = help(&["man"]);
    let name = page
        .lines()
        .skip_while(|l| *l != ".SH NAME")
        .nth(1)
        .expect("a NAME section");
    for part in [
        "IP Messenger client (msg)",
        "HTTP client",
        "ipcalc",
        "Magic Wormhole",
    ] {
        assert!(about.contains(part), "{part} not in {about:?}");
        assert!(
            name.contains(part),
            "{part} not in the man page's NAME: {name:?}"
        );
    }
}

#[test]
fn the_readme_synopsis_shows_exec_s_key_as_optional() {
    let readme = include_str!("../README.md");
    let exec = readme
        .lines()
        .find(|l| l.starts_with("taojie exec ADDR"))
        .expect("exec in the README's synopsis");
    assert!(exec.starts_with("taojie exec ADDR [--key FILE"), "{exec}");
}
