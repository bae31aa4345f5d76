//! The shipped config/taojie.toml: it passes `--check-config`, and every key it shows
//! commented out is a real key of its section.
use super::{run, write};

fn example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/taojie.toml");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_example_config_passes_check_config() {
    let dir = tempfile::tempdir().unwrap();
    // Its state directory moved into a temporary one, so that a real /var/lib/taojie on the
    // test machine cannot change the answer.
    let text = example().replace("/var/lib/taojie", &dir.path().display().to_string());
    let path = write(dir.path(), "taojie.toml", &text);
    let path = path.to_str().unwrap();
    let (ok, out, err) = run(&["serve", "--check-config", path]);
    assert!(ok, "stderr: {err}");
    assert_eq!(
        out.trim(),
        format!("{path}: ok (echo, time, exec, files, chat)")
    );
    // Loopback only, as shipped.
    for line in text
        .lines()
        .filter(|l| l.contains(":90") || l.contains(":91"))
    {
        assert!(line.contains("127.0.0.1"), "not loopback: {line}");
    }
}

#[test]
fn every_commented_key_in_the_example_is_a_real_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = example();
    let lines: Vec<&str> = text.lines().collect();
    let mut tried = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("# ") else {
            continue;
        };
        let Some((key, _)) = rest.split_once(" = ") else {
            continue;
        };
        if !key.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            continue;
        }
        let mut one = lines.clone();
        one[i] = rest;
        let path = write(dir.path(), "one.toml", &one.join("\n"));
        let (_, _, err) = run(&["serve", "--check-config", path.to_str().unwrap()]);
        assert!(
            !err.contains("unknown key") && !err.contains("expected"),
            "`{key}` (line {}): {err}",
            i + 1
        );
        tried += 1;
    }
    assert!(tried > 40, "only {tried} commented keys found");
}
