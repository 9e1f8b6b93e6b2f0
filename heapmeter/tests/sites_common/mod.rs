//! Planted allocation sites shared by the sampled-sites tests: two that retain, one that churns.
// Shared by two test binaries, each of which uses a part.
#![allow(dead_code)]

use heapmeter::sites::{self, Frame, SiteReport, Trim};

pub const A_SIZE: usize = 256;
pub const B_SIZE: usize = 64;
pub const CHURN_SIZE: usize = 4096;

/// Planted sites: where their allocations are, and what they retain.
pub struct Planted {
    pub a: Vec<Vec<u8>>,
    pub b: Vec<Vec<u8>>,
    pub a_line: u32,
    pub b_line: u32,
    pub churn_line: u32,
}

impl Planted {
    /// Reserves the keepers' own storage up front, so planting allocates only at the sites.
    pub fn new(a: usize, b: usize) -> Planted {
        Planted {
            a: Vec::with_capacity(a),
            b: Vec::with_capacity(b),
            a_line: 0,
            b_line: 0,
            churn_line: 0,
        }
    }

    /// Retains `a` blocks of `A_SIZE` at site A, `b` of `B_SIZE` at site B, and allocates and
    /// frees `churn` blocks of about `CHURN_SIZE` (grown by reallocs) at the churn site, in
    /// interleaved rounds.
    pub fn plant(&mut self, a: usize, b: usize, churn: usize, rounds: usize) {
        for _ in 0..rounds {
            self.a_line = plant_a(&mut self.a, a / rounds);
            self.b_line = plant_b(&mut self.b, b / rounds);
            self.churn_line = churn_site(churn / rounds);
        }
    }
}

#[inline(never)]
pub fn plant_a(keep: &mut Vec<Vec<u8>>, n: usize) -> u32 {
    let mut line = 0;
    for _ in 0..n {
        let (v, l) = (vec![1u8; A_SIZE], line!());
        keep.push(v);
        line = l;
    }
    line
}

#[inline(never)]
pub fn plant_b(keep: &mut Vec<Vec<u8>>, n: usize) -> u32 {
    let mut line = 0;
    for _ in 0..n {
        let (v, l) = (vec![2u8; B_SIZE], line!());
        keep.push(v);
        line = l;
    }
    line
}

/// Allocates and frees: each block grows by reallocs to `CHURN_SIZE` and is dropped.
#[inline(never)]
pub fn churn_site(n: usize) -> u32 {
    let mut line = 0;
    for i in 0..n {
        let (mut v, l) = (Vec::<u8>::with_capacity(64), line!());
        line = l;
        while v.len() < CHURN_SIZE {
            v.extend_from_slice(&[i as u8; 64]);
        }
        std::hint::black_box(&v);
    }
    line
}

/// The report whose first frame outside std is `function` (a path suffix) in this file.
pub fn find<'a>(reports: &'a [SiteReport], function: &str) -> Vec<&'a SiteReport> {
    reports
        .iter()
        .filter(|r| sites::headline(&r.frames).is_some_and(|f| f.function.ends_with(function)))
        .collect()
}

pub fn headline(r: &SiteReport) -> &Frame {
    sites::headline(&r.frames).expect("a frame")
}

/// The libtest frames below a test function.
pub const TEST_HARNESS: Trim<'static> = Trim {
    harness: &["test", "core::ops::function"],
};

/// Live samples allocated from code in `file` (a path suffix). Counts only this test's own
/// allocations, whatever the test harness's threads do meanwhile. Symbolises: call it after
/// the counted heap's last check.
pub fn live_samples_from(file: &str) -> usize {
    sites::snapshot()
        .samples()
        .iter()
        .filter(|s| {
            sites::symbolize_all(s.site)
                .iter()
                .any(|f| f.file.as_deref().is_some_and(|p| p.ends_with(file)))
        })
        .count()
}
