//! Walking a tree beneath the root one entry at a time, for what streams a tree out (a
//! folder's archive, a search): depth first, each directory's names in order, a directory
//! before what it holds. Only one directory's names per level are held at a time, so memory
//! follows the tree's depth and its widest directory, not its size. Links are reported as
//! [`Kind::Other`] and never followed; names that cannot be sent are skipped.
use std::fs::File;
use std::io;

use super::resolve::NotBeneath;
use super::walk::{entry_in, names_in};
use super::{Dir, Entry, Kind, Root};
use crate::files::names::RelName;

/// One entry met on a walk.
pub struct Visit<'a> {
    /// Its path relative to the walk's top (`a/b/c`).
    pub rel: &'a str,
    /// What it is, with its size and time (`entry.name` is the last component).
    pub entry: &'a Entry,
    dir: &'a Dir,
}

impl Visit<'_> {
    /// Opens a file met on the walk, relative to the directory it was met in; the bytes read
    /// are that descriptor's, whatever happens to the name.
    pub fn open(&self) -> io::Result<File> {
        let file = self.dir.open_read(&self.entry.name)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(file)
    }
}

/// Whether a walk goes on.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Into this entry (if a directory) and on.
    Go,
    /// On, but not into this directory.
    Skip,
    /// No further.
    Stop,
}

impl Root {
    /// Walks the directory `top` (the root for `None`), calling `visit` for every entry under
    /// it (see the module's doc).
    pub fn walk(
        &self,
        top: Option<&RelName>,
        visit: &mut dyn FnMut(Visit<'_>) -> io::Result<Flow>,
    ) -> io::Result<()> {
        // Per level: the directory, its path prefix, its names and the next one to look at.
        let top = self.dir(top)?;
        let names = names_in(&top)?;
        let mut stack: Vec<(Dir, String, Vec<String>, usize)> =
            vec![(top, String::new(), names, 0)];
        while let Some((dir, prefix, names, next)) = stack.last_mut() {
            let Some(name) = names.get(*next).cloned() else {
                stack.pop();
                continue;
            };
            *next += 1;
            let (dir, rel) = (dir.clone(), format!("{prefix}{name}"));
            let Some(entry) = entry_in(&dir, name)? else {
                continue; // gone meanwhile
            };
            let flow = visit(Visit {
                rel: &rel,
                entry: &entry,
                dir: &dir,
            })?;
            match flow {
                Flow::Stop => return Ok(()),
                Flow::Skip => continue,
                Flow::Go if entry.kind != Kind::Dir => continue,
                Flow::Go => {}
            }
            match dir.subdir(&entry.name) {
                Ok(sub) => {
                    let names = names_in(&sub)?;
                    stack.push((sub, format!("{rel}/"), names, 0));
                }
                // Swapped for a link or removed since the stat: skipped.
                Err(e) if NotBeneath::is(&e) || e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_first_in_order_and_links_are_not_entered() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("a"), b"a").unwrap();
        std::fs::write(root.join("b/c/d"), b"dd").unwrap();
        std::fs::write(root.join("b/.e.taojie-part"), b"").unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("z")).unwrap();
        let r = Root::open(&root).unwrap();
        let mut seen = Vec::new();
        r.walk(None, &mut |v| {
            let size = if v.entry.kind == Kind::File {
                v.open()?.metadata()?.len()
            } else {
                0
            };
            seen.push(format!("{}:{}:{size}", v.rel, v.entry.kind.as_str()));
            Ok(Flow::Go)
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "a:file:1",
                "b:dir:0",
                "b/c:dir:0",
                "b/c/d:file:2",
                "z:other:0"
            ]
        );
    }
}
