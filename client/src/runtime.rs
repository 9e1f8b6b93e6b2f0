//! `Runtime`: the language runtimes whose heap a probe reads — the value of `--probe`, and the
//! name the probe lines and the watch summary carry. Data only: the probes themselves are
//! `watch::probe`'s.

/// Which runtime's probe (`--probe node|python`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// `NODE_OPTIONS=--expose-gc --require <probe>`: every node process's live heap (V8's own
    /// memory measurement of its live objects; after a forced collection at load and exit) and
    /// `external` (Buffers, ArrayBuffers), judged as two parts and added.
    Node,
    /// `sitecustomize` on `PYTHONPATH`: each python process's anonymous resident memory
    /// (objects, buffers, C extensions' memory; page granularity), or tracemalloc's traced bytes
    /// after a full `gc.collect()` with --probe-tracemalloc.
    Python,
}

impl Runtime {
    /// The name used on the command line and in the probe lines (`node`, `python`).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Node => "node",
            Runtime::Python => "python",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn a_runtime_is_named_as_its_flag_value() {
        for r in Runtime::value_variants() {
            let flag = r
                .to_possible_value()
                .expect("every runtime is a --probe value");
            assert_eq!(flag.get_name(), r.name());
        }
    }
}
