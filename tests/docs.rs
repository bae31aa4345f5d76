//! `taojie completions` and `taojie man`: the bash script completes in a real bash, and the
//! man pages render with man(1).
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{run_program, run_with_input};

const LIMIT: Duration = Duration::from_secs(20);

/// Sources the bash completion script in a real bash, completes `words` (the last one is the
/// word under the cursor) the way bash does on Tab, and returns the candidates.
fn complete(script: &Path, words: &[&str]) -> Vec<String> {
    const COMPLETE: &str = r#"
        source "$1" || exit 1
        shift
        # The function bash calls on Tab, as `complete -p` says the script registered it.
        spec=$(complete -p taojie) || exit 2
        fn=$(sed -n 's/.*-F \([^ ]*\).*/\1/p' <<<"$spec")
        [ -n "$fn" ] || exit 3
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        "$fn" taojie "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let mut args = vec!["-c", COMPLETE, "bash", script.to_str().unwrap()];
    args.extend_from_slice(words);
    let (status, out, err) = run_program("bash", &args, b"", LIMIT);
    assert!(
        status.success(),
        "bash completion of {words:?}: {status} {err}"
    );
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_subcommands_flags_and_values() {
    if !crate::common::need::tool("bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (status, script, err) = run_with_input(&["completions", "bash"], b"", LIMIT);
    assert!(status.success(), "{err}");
    let path = dir.path().join("taojie.bash");
    std::fs::write(&path, script).unwrap();

    let all = complete(&path, &["taojie", ""]);
    for sub in [
        "serve",
        "connect",
        "listen",
        "exec",
        "put",
        "chat",
        "completions",
        "man",
    ] {
        assert!(all.iter().any(|c| c == sub), "{sub} not in {all:?}");
    }
    assert_eq!(complete(&path, &["taojie", "ser"]), ["serve"]);
    assert_eq!(complete(&path, &["taojie", "serve", "ex"]), ["exec"]);

    let flags = complete(&path, &["taojie", "serve", "exec", "--"]);
    for flag in [
        "--listen",
        "--key",
        "--classic",
        "--allow",
        "--log-format",
        "--help",
    ] {
        assert!(flags.iter().any(|c| c == flag), "{flag} not in {flags:?}");
    }
    assert!(
        !flags.iter().any(|c| c == "--upper"),
        "echo's flag offered to exec"
    );
    assert_eq!(
        complete(&path, &["taojie", "serve", "echo", "--up"]),
        ["--upper"]
    );
    assert_eq!(complete(&path, &["taojie", "--log-format", "j"]), ["json"]);
    let shells = complete(&path, &["taojie", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            shells.iter().any(|c| c == shell),
            "{shell} not in {shells:?}"
        );
    }
}

#[test]
fn zsh_fish_elvish_and_powershell_scripts_name_taojie() {
    for (shell, mark) in [
        ("zsh", "#compdef taojie"),
        ("fish", "complete -c taojie"),
        ("elvish", "edit:completion:arg-completer[taojie]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let (status, out, err) = run_with_input(&["completions", shell], b"", LIMIT);
        assert!(status.success(), "{shell}: {err}");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains(mark), "{shell} script lacks {mark:?}");
        assert!(
            out.contains("--classic"),
            "{shell} script lacks serve exec's flags"
        );
    }
    let (status, _, err) = run_with_input(&["completions", "tcsh"], b"", LIMIT);
    assert!(!status.success());
    assert!(err.contains("bash"), "the error lists the shells: {err}");
}

/// Renders a page as man(1) shows it, in plain text with runs of spaces and line breaks made
/// one space; groff must not warn about anything on it.
fn render(page: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings=all", "-l"])
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LANG", "C.UTF-8")
        .output()
        .expect("man(1) is installed (.ci/run installs man-db)");
    assert!(out.status.success(), "man -l {}: {:?}", page.display(), out);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.is_empty(), "{}: {warnings}", page.display());
    // man marks bold and underline with backspaces when writing to a pipe.
    let text = String::from_utf8_lossy(&out.stdout);
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Words of `text` joined by single spaces (man fills and wraps paragraphs).
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn man_writes_a_page_per_subcommand_that_man_renders() {
    if !crate::common::need::tool("man") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let (status, out, err) =
        run_with_input(&["man", "--out", out_dir.to_str().unwrap()], b"", LIMIT);
    assert!(status.success(), "{err}");
    let listed: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    for name in [
        "taojie.1",
        "taojie-serve.1",
        "taojie-serve-exec.1",
        "taojie-serve-chat.1",
        "taojie-connect.1",
        "taojie-msg-send.1",
        "taojie-completions.1",
        "taojie-man.1",
    ] {
        let path = out_dir.join(name);
        assert!(path.is_file(), "{name} not written");
        assert!(
            listed.contains(&path.to_str().unwrap().to_string()),
            "{name} not listed in {listed:?}"
        );
    }
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), listed.len());
    assert!(!out_dir.join("taojie-help.1").exists(), "a page for `help`");

    for page in &listed {
        render(Path::new(page));
    }
    let exec = render(&out_dir.join("taojie-serve-exec.1"));
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES"] {
        assert!(
            exec.lines().any(|l| l == section),
            "no {section} in\n{exec}"
        );
    }
    let text = words(&exec);
    assert!(
        text.contains("taojie-serve-exec - Remote command execution"),
        "{exec}"
    );
    assert!(text.contains("--classic <ADDR>"), "{exec}");
    assert!(
        text.contains("taojie keygen exec.key"),
        "the examples are missing:\n{exec}"
    );
    assert!(
        text.contains("taojie 0.1.0"),
        "no version in the footer:\n{exec}"
    );

    let top = render(&out_dir.join("taojie.1"));
    assert!(top.lines().any(|l| l == "SUBCOMMANDS"), "{top}");
    let text = words(&top);
    assert!(text.contains("taojie-serve(1)"), "{top}");
    assert!(text.contains("--log-format <FORMAT>"), "{top}");
    // `serve` has notes after its options, not examples.
    let serve = render(&out_dir.join("taojie-serve.1"));
    assert!(serve.lines().any(|l| l == "NOTES"), "{serve}");
}

#[test]
fn man_with_no_dir_prints_the_command_s_page() {
    let (status, out, err) = run_with_input(&["man"], b"", LIMIT);
    assert!(status.success(), "{err}");
    let page = String::from_utf8(out).unwrap();
    assert!(page.contains("\n.TH taojie 1 "), "not taojie(1):\n{page}");
    assert!(page.contains("\n.SH EXAMPLES\n"), "{page}");
}
