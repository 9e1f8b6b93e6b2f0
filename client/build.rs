//! Records the exact ureq version from the workspace's Cargo.lock, so reports say which ureq
//! was measured.

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
}
