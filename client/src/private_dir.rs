//! A run's private folder in the shared temporary directory, and the files written into it: never
//! a name another user can predict or plant first. Knows nothing of what goes in it.
//!
//! The folder is made by one `mkdir` of a random name (`tempfile`), mode 0700, retried under a
//! new name if the name exists, so a folder or symlink another local user made first is never
//! entered. Files in it are created with `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600: a file
//! that is already there (or a symlink to one elsewhere) is an error, not overwritten or
//! followed. The folder is removed on drop, unless [`PrivateDir::keep`] keeps it for a
//! post-mortem.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A folder only this user can enter, removed on drop unless kept.
#[derive(Debug)]
pub struct PrivateDir {
    dir: Option<tempfile::TempDir>,
    /// The folder, canonical (a command that changes directory still finds its files).
    path: PathBuf,
}

impl PrivateDir {
    /// Makes `<parent>/<prefix><random>`, mode 0700.
    pub fn create_in(parent: &Path, prefix: &str) -> io::Result<PrivateDir> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)?;
        let path = dir.path().canonicalize()?;
        Ok(PrivateDir {
            dir: Some(dir),
            path,
        })
    }

    /// Makes `$TMPDIR/<prefix><random>` (`/tmp` without `TMPDIR`), mode 0700.
    pub fn create(prefix: &str) -> io::Result<PrivateDir> {
        PrivateDir::create_in(&std::env::temp_dir(), prefix)
    }

    /// The folder's absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the folder in place when this is dropped; returns where it is.
    pub fn keep(&mut self) -> &Path {
        if let Some(d) = self.dir.take() {
            // `keep` only disarms the removal; the path is already known.
            let _ = d.keep();
        }
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            // Best effort: a process of the command may still hold a file open.
            let _ = d.close();
        }
    }
}

/// Creates `path` with `contents`, mode 0600; fails if anything (a file, a symlink) is already
/// there rather than writing through it.
pub fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut f: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    f.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_folder_is_new_private_and_gone_after_drop() {
        let parent = tempfile::tempdir().expect("parent");
        let a = PrivateDir::create_in(parent.path(), "leakprobe-watch-").expect("a");
        let b = PrivateDir::create_in(parent.path(), "leakprobe-watch-").expect("b");
        assert_ne!(a.path(), b.path(), "a random name each time");
        let mode = std::fs::metadata(a.path()).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists(), "removed on drop");
        let mut kept = b;
        let path = kept.keep().to_path_buf();
        drop(kept);
        assert!(path.is_dir(), "kept for a post-mortem");
    }

    #[test]
    fn files_are_0600_and_never_written_through_what_is_there() {
        let dir = PrivateDir::create("leakprobe-test-").expect("dir");
        let file = dir.path().join("probe.cjs");
        write_new(&file, b"x").expect("new file");
        let meta = std::fs::metadata(&file).expect("stat");
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert!(
            write_new(&file, b"y").is_err(),
            "an existing file is not overwritten"
        );
        assert_eq!(std::fs::read(&file).expect("read"), b"x");
        let target = dir.path().join("target");
        write_new(&target, b"keep").expect("target");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(
            write_new(&link, b"evil").is_err(),
            "a symlink is not followed"
        );
        assert_eq!(std::fs::read(&target).expect("read"), b"keep");
    }
}
