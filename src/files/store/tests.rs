use std::os::unix::fs::symlink;

use super::*;
use crate::files::names::validate;

fn n(name: &str) -> RelName {
    validate(name).unwrap()
}

/// A root with `d/f`, a link out of it, a link within it, and a file outside.
fn fixture() -> (tempfile::TempDir, Root) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("d/e")).unwrap();
    std::fs::write(root.join("d/f"), b"f").unwrap();
    std::fs::write(root.join("d/e/g"), b"g").unwrap();
    std::fs::create_dir(tmp.path().join("outside")).unwrap();
    std::fs::write(tmp.path().join("outside/secret"), b"s").unwrap();
    symlink(tmp.path().join("outside"), root.join("out")).unwrap();
    symlink("d", root.join("alias")).unwrap();
    let r = Root::open(&root).unwrap();
    (tmp, r)
}

#[test]
fn nothing_is_reached_through_a_link_in_or_out() {
    let (_tmp, root) = fixture();
    assert!(root.open_file(&n("d/f")).is_ok());
    for name in ["out/secret", "alias/f", "out"] {
        let e = root.open_file(&n(name)).unwrap_err();
        assert!(resolve::NotBeneath::is(&e), "{name}: {e}");
        assert!(root.find(&n(name)).is_err(), "{name}");
    }
    assert!(root.dir(Some(&n("out"))).is_err());
    assert!(root.list(Some(&n("out"))).is_err());
    assert!(root.place(&n("out/new")).is_err());
    assert!(root.place(&n("alias/e/new")).is_err());
    let e = root.open_file(&n("d")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_fifo_is_refused_without_hanging() {
    let (tmp, root) = fixture();
    let fifo = tmp.path().join("root/pipe");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
    assert!(root.open_file(&n("pipe")).is_err());
    assert!(root.find(&n("pipe")).is_err());
}

#[test]
fn the_root_stays_the_directory_opened_when_its_path_changes() {
    let (tmp, root) = fixture();
    let path = tmp.path().join("root");
    std::fs::rename(&path, tmp.path().join("moved")).unwrap();
    symlink(tmp.path().join("outside"), &path).unwrap();
    let names: Vec<String> = root
        .list(None)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["alias", "d", "out"]);
    assert!(root.open_file(&n("secret")).is_err());
}

#[test]
fn listings_and_trees_leave_out_links_partials_and_unsendable_names() {
    let (tmp, root) = fixture();
    let d = tmp.path().join("root/d");
    std::fs::write(d.join(".f.taojie-part"), b"").unwrap();
    std::fs::write(d.join("bad\nname"), b"").unwrap();
    symlink("f", d.join("link")).unwrap();
    let listed = root.list(Some(&n("d"))).unwrap();
    let shown: Vec<(&str, Kind)> = listed.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(
        shown,
        [
            ("bad\nname", Kind::File),
            ("e", Kind::Dir),
            ("f", Kind::File),
            ("link", Kind::Other)
        ]
    );
    assert_eq!(listed[2].size, 1);
    std::fs::create_dir_all(d.join("empty/deeper")).unwrap();
    std::fs::create_dir(d.join("links only")).unwrap();
    symlink("../f", d.join("links only/l")).unwrap();
    let Found::Tree(tree) = root.find(&n("d")).unwrap() else {
        panic!("d is a directory");
    };
    let mut files: Vec<&str> = tree.files.iter().map(RelName::as_str).collect();
    files.sort();
    assert_eq!(files, ["e/g", "f"]);
    let mut empty: Vec<&str> = tree.empty_dirs.iter().map(RelName::as_str).collect();
    empty.sort();
    assert_eq!(empty, ["empty/deeper", "links only"]);
    let all = root.tree_under(None).unwrap();
    assert_eq!(all.files.len(), 2, "{all:?}");
    root.make_dirs(&n("made/here")).unwrap();
    root.make_dirs(&n("made/here")).unwrap();
    assert!(tmp.path().join("root/made/here").is_dir());
    let err = root.make_dirs(&n("d/f/x")).unwrap_err();
    assert!(err.to_string().contains("f is not a directory"), "{err}");
}

#[test]
fn directories_are_made_only_when_asked_and_undone_when_refused() {
    let (tmp, root) = fixture();
    let mut place = root.place(&n("a/b/c/f")).unwrap();
    assert!(!place.exists());
    assert!(!tmp.path().join("root/a").exists(), "placing makes nothing");
    place.make().unwrap();
    assert!(tmp.path().join("root/a/b/c").is_dir());
    place.undo();
    assert!(!tmp.path().join("root/a").exists());
    // Existing parents are found in one step; a file on the way is no directory.
    assert!(root.place(&n("d/e/new")).unwrap().exists());
    let e = root.place(&n("d/f/new")).err().unwrap();
    assert!(e.to_string().contains("not a directory"), "{e}");
}

#[test]
fn rename_new_never_replaces() {
    let (tmp, root) = fixture();
    let d = root.dir(Some(&n("d"))).unwrap();
    std::fs::write(tmp.path().join("root/d/new"), b"new").unwrap();
    let e = d.rename_new("new", "f").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(tmp.path().join("root/d/f")).unwrap(), b"f");
    d.rename_new("new", "g").unwrap();
    assert_eq!(std::fs::read(tmp.path().join("root/d/g")).unwrap(), b"new");
}
