//! What the watch tests share: the binary, the example programs, a folder per module for their
//! files, and the check that a real runtime they drive is on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `leak-client` binary Cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_leak-client")
}

/// The repository's `examples/` folder.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// `name` in a folder of this test process's own for module `module` (created if missing).
pub fn tmp(module: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakprobe-{module}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// Fails (not skips) when a real runtime these tests drive is missing, saying how to get it.
pub fn need(program: &str, apt_package: &str) {
    if Command::new(program).arg("--version").output().is_err() {
        panic!(
            "this test drives a real `{program}`, not on PATH: apt-get install -y {apt_package}"
        );
    }
}
