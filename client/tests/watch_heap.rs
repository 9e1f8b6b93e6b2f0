//! The tree sampler allocates nothing per sample once warm: a watcher must not grow while it
//! watches. One heap test per file: this binary installs the counting allocator.

use std::process::{Command, Stdio};

use leak_client::watch::proctree::{Root, TreeSampler};

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

#[test]
fn sampling_a_tree_allocates_nothing_once_warm() {
    // A small tree: sh with a sleeping child, so children files and two processes are read.
    let mut tree = Command::new("sh")
        .args(["-c", "sleep 30 & wait"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let root = Root::Process(tree.id());
    for mut sampler in [TreeSampler::new(root), TreeSampler::with_proc_scan(root)] {
        // Warm: until the sleep child is found and every buffer has grown to its size.
        let mut warm = 0;
        while sampler.sample().procs < 2 {
            warm += 1;
            assert!(warm < 1000, "sleep child never appeared");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // And until a round of samples allocates nothing: on a loaded machine the child may
        // still be `sh` (forked, not yet exec'd into `sleep`) when it first appears, and its
        // /proc files grow once when it execs.
        let mut rounds = 0;
        loop {
            let before = heapmeter::snapshot();
            for _ in 0..10 {
                sampler.sample();
                sampler.sample_with_pss();
            }
            if heapmeter::snapshot().allocs == before.allocs {
                break;
            }
            rounds += 1;
            assert!(rounds < 100, "every round of samples allocated");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let before = heapmeter::snapshot();
        for i in 0..200 {
            let s = if i % 2 == 0 {
                sampler.sample()
            } else {
                sampler.sample_with_pss()
            };
            assert_eq!(s.procs, 2);
        }
        let after = heapmeter::snapshot();
        assert_eq!(
            (after.allocs - before.allocs, after.live),
            (0, before.live),
            "allocations during 200 samples"
        );
    }
    let _ = tree.kill();
    let _ = tree.wait();
}
