//! Sampled blocks cross threads: allocated on one thread and freed (or grown, then freed) on
//! another, they are matched by address, keep their contents, and the site's live estimate
//! returns to zero. (One heap test per file: its own allocator.)

mod sites_common;

use std::sync::mpsc;

use heapmeter::sites;
use sites_common::live_samples_from;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

const BLOCKS: usize = 4000;
const SIZE: usize = 1024;

#[inline(never)]
fn producer_site(i: usize) -> Vec<u8> {
    vec![(i % 251) as u8; SIZE]
}

#[test]
fn blocks_freed_on_another_thread_leave_no_live_samples() {
    // A low rate: about one block in five is sampled.
    sites::set_sample_rate(4096);
    sites::set_seed(7);
    sites::enable().expect("enable sampling");
    let live_before = heapmeter::snapshot().live;
    let samples_before = sites::stats().live_samples;

    let (tx, rx) = mpsc::sync_channel::<Vec<Vec<u8>>>(1);
    let producer = std::thread::spawn(move || {
        let blocks: Vec<Vec<u8>> = (0..BLOCKS).map(producer_site).collect();
        tx.send(blocks).expect("send");
    });
    let mut blocks = rx.recv().expect("blocks from the producer");
    drop(rx);
    producer.join().expect("producer");

    let mid = sites::snapshot();
    let live_mid: f64 = mid.by_site().iter().map(|s| s.bytes).sum();
    let planted = (BLOCKS * SIZE) as f64;
    assert!(
        (live_mid - planted).abs() < 0.2 * planted,
        "estimated {live_mid:.0} of {planted}"
    );
    let taken = sites::stats().live_samples - samples_before;
    assert!(taken > 400, "{taken} live samples");

    // The consumer checks contents, grows half of the blocks (moving sampled ones in and out of
    // the region by the sampling rule), then frees everything.
    let consumer = std::thread::spawn(move || {
        for (i, b) in blocks.iter_mut().enumerate() {
            assert!(b.iter().all(|&x| x == (i % 251) as u8), "block {i} intact");
            if i % 2 == 0 {
                b.extend_from_slice(&[9u8; 3 * SIZE]);
                assert_eq!(b[SIZE - 1], (i % 251) as u8);
                assert_eq!(b[4 * SIZE - 1], 9);
            }
        }
        drop(blocks);
    });
    consumer.join().expect("consumer");

    let after = sites::snapshot();
    // Before symbolising (which loads debug info into the heap).
    let residue = heapmeter::snapshot().live as i64 - live_before as i64;
    assert!(
        residue.abs() < 4096,
        "counted heap back to baseline: {residue}"
    );
    assert_eq!(
        live_samples_from("tests/sites_threads.rs"),
        0,
        "every sampled block was matched at its free"
    );
    for s in after.by_site() {
        let frames = sites::symbolize(s.site, &sites::Trim::default());
        assert!(
            !frames.iter().any(|f| f.function.contains("producer_site")),
            "producer site still live: {s:?}"
        );
    }
    let is_producer = |id| {
        sites::symbolize(id, &sites::Trim::default())
            .iter()
            .any(|f| f.function.contains("producer_site"))
    };
    let producer_mid: f64 = mid
        .by_site()
        .iter()
        .filter(|s| is_producer(s.site))
        .map(|s| s.bytes)
        .sum();
    assert!(producer_mid > 0.5 * planted, "{producer_mid}");
    let producer_growth: f64 = sites::growth(&mid, &after, 1)
        .iter()
        .filter(|g| is_producer(g.site))
        .map(|g| g.growth)
        .sum();
    assert!(
        (producer_growth + producer_mid).abs() < 1.0,
        "all of it went: {producer_growth} of {producer_mid}"
    );

    // Two threads at once, each allocating, growing and freeing, and passing half of its blocks
    // to the other to free: the shared tables stay consistent and every block keeps its bytes.
    let live_before = heapmeter::snapshot().live;
    let (to_b, from_a) = mpsc::channel::<Vec<u8>>();
    let (to_a, from_b) = mpsc::channel::<Vec<u8>>();
    let worker = |tag: u8, tx: mpsc::Sender<Vec<u8>>, rx: mpsc::Receiver<Vec<u8>>| {
        move || {
            for i in 0..20_000usize {
                let mut v = vec![tag; 64 + (i * 37) % 3000];
                if i % 3 == 0 {
                    v.resize(v.len() + 500, tag);
                }
                if i % 2 == 0 {
                    tx.send(v).expect("send");
                } else {
                    assert!(v.iter().all(|&x| x == tag));
                }
                for theirs in rx.try_iter() {
                    assert!(
                        theirs.iter().all(|&x| x == (tag ^ 1)),
                        "foreign block intact"
                    );
                }
            }
            drop(tx);
            for theirs in rx {
                assert!(theirs.iter().all(|&x| x == (tag ^ 1)));
            }
        }
    };
    let a = std::thread::spawn(worker(2, to_b, from_b));
    let b = std::thread::spawn(worker(3, to_a, from_a));
    a.join().expect("thread a");
    b.join().expect("thread b");
    let residue = heapmeter::snapshot().live as i64 - live_before as i64;
    assert!(
        residue.abs() < 4096,
        "counted heap back to baseline: {residue}"
    );
    assert!(sites::stats().samples > 5000, "the threads were sampled");
    assert_eq!(live_samples_from("tests/sites_threads.rs"), 0);
}
