//! Records what built the binary for its reports: the exact ureq version from the workspace's
//! Cargo.lock, and the compiler (`$RUSTC --version`), not whichever `rustc` the report's host has.

fn main() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo::rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let version = text
        .split("[[package]]")
        .find(|block| block.lines().any(|l| l.trim() == "name = \"ureq\""))
        .and_then(|block| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix("version = \""))
        })
        .map_or("unknown", |v| v.trim_end_matches('"'));
    println!("cargo::rustc-env=LEAKPROBE_UREQ_VERSION={version}");

    // Cargo sets `RUSTC` for build scripts to the compiler that builds this crate.
    println!("cargo::rerun-if-env-changed=RUSTC");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let rustc = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && !s.contains('\n'))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo::rustc-env=LEAKPROBE_RUSTC={rustc}");
}
