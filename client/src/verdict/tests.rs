//! The verdict's table tests: hand-computed fits, and thousands of synthetic series (eight noise
//! shapes, leaks, ramps, caches, steps, sawtooths) judged with the default thresholds. Tests only:
//! nothing here is used by the tool.

use super::early_stop::*;
use super::policy::*;
use super::reasons::round_up_nice;
use super::stats::{bin, median, sign_autocorrelation, theil_sen};
use super::types::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
const BASE: f64 = 2.0 * MIB;

/// Noise shapes seen through a counting allocator while requests are in flight.
#[derive(Debug, Clone, Copy)]
enum Noise {
    None,
    Gauss(f64),
    /// Uniform in ±a.
    Uniform(f64),
    /// Binomial(conc, ½) requests in flight, each holding `each` bytes.
    InFlight {
        conc: u32,
        each: f64,
    },
    /// Gaussian plus, with probability p, a spike uniform in [0, max].
    Spiky {
        sigma: f64,
        p: f64,
        max: f64,
    },
    /// Gaussian plus, with probability p, `offset` (a second mode).
    Bimodal {
        sigma: f64,
        p: f64,
        offset: f64,
    },
    /// AR(1) Gaussian: slow bursts spanning several readings.
    Ar1 {
        sigma: f64,
        rho: f64,
    },
    /// In flight (32 × 4 KiB) + 20% second mode (+48 KiB) + 2% spikes up to 200 KiB.
    Realistic,
}

struct Sampler {
    rng: StdRng,
    ar: f64,
}

impl Sampler {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            ar: 0.0,
        }
    }

    fn gauss(&mut self) -> f64 {
        let u1: f64 = self.rng.r#gen::<f64>().max(1e-12);
        let u2: f64 = self.rng.r#gen();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn sample(&mut self, noise: Noise) -> f64 {
        match noise {
            Noise::None => 0.0,
            Noise::Gauss(s) => s * self.gauss(),
            Noise::Uniform(a) => self.rng.gen_range(-a..=a),
            Noise::InFlight { conc, each } => {
                (0..conc).filter(|_| self.rng.gen_bool(0.5)).count() as f64 * each
            }
            Noise::Spiky { sigma, p, max } => {
                let spike = if self.rng.gen_bool(p) {
                    self.rng.gen_range(0.0..=max)
                } else {
                    0.0
                };
                sigma * self.gauss() + spike
            }
            Noise::Bimodal { sigma, p, offset } => {
                sigma * self.gauss() + if self.rng.gen_bool(p) { offset } else { 0.0 }
            }
            Noise::Ar1 { sigma, rho } => {
                self.ar = rho * self.ar + (1.0 - rho * rho).sqrt() * sigma * self.gauss();
                self.ar
            }
            Noise::Realistic => {
                let inflight = self.sample(Noise::InFlight {
                    conc: 32,
                    each: 4.0 * KIB,
                }) + 2.0 * KIB * self.gauss();
                let mode = if self.rng.gen_bool(0.2) {
                    48.0 * KIB
                } else {
                    0.0
                };
                let spike = if self.rng.gen_bool(0.02) {
                    self.rng.gen_range(0.0..=200.0 * KIB)
                } else {
                    0.0
                };
                inflight + mode + spike
            }
        }
    }
}

/// A reading every `every` requests up to `requests`, live = BASE + trend(requests) + noise.
fn series(
    requests: u64,
    every: u64,
    trend: impl Fn(f64) -> f64,
    noise: Noise,
    seed: u64,
) -> Vec<Point> {
    let mut s = Sampler::new(seed);
    (1..=requests / every)
        .map(|i| {
            let x = (i * every) as f64;
            let live = (BASE + trend(x) + s.sample(noise)).max(0.0);
            Point {
                requests: i * every,
                live: live as u64,
                rss: None,
                quiescent: false,
                round: 0,
            }
        })
        .collect()
}

/// A warm-up ramp of `bytes` that is 98% done at `end` requests.
fn ramp(bytes: f64, end: f64) -> impl Fn(f64) -> f64 {
    move |x| bytes * (1.0 - (-4.0 * x / end).exp())
}

const SHAPES: [Noise; 8] = [
    Noise::Gauss(20.0 * KIB),
    Noise::Uniform(100.0 * KIB),
    Noise::InFlight {
        conc: 64,
        each: 3.0 * KIB,
    },
    Noise::Spiky {
        sigma: 10.0 * KIB,
        p: 0.05,
        max: 200.0 * KIB,
    },
    Noise::Bimodal {
        sigma: 8.0 * KIB,
        p: 0.3,
        offset: 64.0 * KIB,
    },
    Noise::Ar1 {
        sigma: 30.0 * KIB,
        rho: 0.8,
    },
    Noise::Realistic,
    Noise::None,
];

fn judge_default(points: &[Point]) -> Verdict {
    judge(points, &Params::default())
}

fn within(slope: f64, truth: f64) -> bool {
    (slope - truth).abs() <= (0.1 * truth).max(2.0)
}

/// xs, ys, then the expected slope, intercept, interval low and high.
type TsCase = (Vec<f64>, Vec<f64>, f64, f64, f64, f64);

#[test]
fn theil_sen_matches_hand_computed_values() {
    // (xs, ys, slope, intercept, lo, hi)
    let line: Vec<f64> = (0..50).map(f64::from).collect();
    let doubled: Vec<f64> = line.iter().map(|x| 2.0 * x + 1.0).collect();
    let mut outlier: Vec<f64> = (0..=10).map(|x| 3.0 * f64::from(x)).collect();
    outlier[5] = 1000.0;
    let cases: Vec<TsCase> = vec![
        // Slopes 2, 1/2, 4/3, -1, 1, 3: median (1 + 4/3)/2 = 7/6; offsets -1/6, 2/3, -3/2, 1/3:
        // median 1/12. Four points are too few for a 95% interval: it spans every slope.
        (
            vec![1.0, 2.0, 3.0, 4.0],
            vec![1.0, 3.0, 2.0, 5.0],
            7.0 / 6.0,
            1.0 / 12.0,
            -1.0,
            3.0,
        ),
        // Slopes 2, 5, 8: median 5; offsets 0, -3, 0: median 0.
        (
            vec![0.0, 1.0, 2.0],
            vec![0.0, 2.0, 10.0],
            5.0,
            0.0,
            2.0,
            8.0,
        ),
        // Equal x is skipped: slopes 2 and -2, median 0; offsets 0, 4, 2: median 2.
        (
            vec![1.0, 1.0, 2.0],
            vec![0.0, 4.0, 2.0],
            0.0,
            2.0,
            -2.0,
            2.0,
        ),
        // A perfect line: every slope is 2, so is the interval.
        (line.clone(), doubled, 2.0, 1.0, 2.0, 2.0),
        // One wild reading moves 10 of 66 slopes: the median stays 3.
        (
            (0..=10).map(f64::from).collect(),
            outlier,
            3.0,
            0.0,
            3.0,
            3.0,
        ),
        // 45 slopes, residual signs alternate (rho clamps to 0): Var S = 10·9·25/18 = 125,
        // C = 1.96·√125 = 21.9, M1 = round(11.54) = 12, M2 = round(33.46) = 33, so the 12th and
        // 34th ordered slopes: 1/2 and 10/7.
        (
            (0..10).map(f64::from).collect(),
            vec![0.0, 3.0, 1.0, 5.0, 2.0, 7.0, 4.0, 9.0, 6.0, 11.0],
            1.0,
            1.0,
            0.5,
            10.0 / 7.0,
        ),
    ];
    for (i, (xs, ys, slope, intercept, lo, hi)) in cases.iter().enumerate() {
        let fit = theil_sen(xs, ys, 1.96).expect("distinct x");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(
            close(fit.slope, *slope),
            "case {i}: slope {} != {slope}",
            fit.slope
        );
        assert!(
            close(fit.intercept, *intercept),
            "case {i}: intercept {} != {intercept}",
            fit.intercept
        );
        assert!(
            close(fit.lo, *lo) && close(fit.hi, *hi),
            "case {i}: CI {}..{} != {lo}..{hi}",
            fit.lo,
            fit.hi
        );
    }
    assert_eq!(
        theil_sen(&[1.0, 1.0], &[0.0, 5.0], 1.96),
        None,
        "no distinct x"
    );
    assert_eq!(theil_sen(&[], &[], 1.96), None);
}

#[test]
fn median_and_sign_autocorrelation() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [3.0]), Some(3.0));
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(
        median(&mut [f64::NAN, 1.0, 2.0]),
        Some(2.0),
        "NaN sorts last, no panic"
    );
    // Always the same side: p = 1, rho = 1; alternating: p = 0, rho = -1; ++--++--: p = 4/7.
    let rho = |r: &[f64]| sign_autocorrelation(r);
    assert!((rho(&[1.0, 2.0, 1.0, 3.0]) - 1.0).abs() < 1e-12);
    assert!((rho(&[1.0, -1.0, 1.0, -1.0]) + 1.0).abs() < 1e-12);
    let p = 4.0 / 7.0;
    let expect = (std::f64::consts::PI * (p - 0.5)).sin();
    assert!((rho(&[1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0]) - expect).abs() < 1e-12);
}

#[test]
fn interval_covers_the_true_slope_on_clean_data() {
    // 500 readings, 100 B/request, Gaussian noise of 20 KiB: the 95% interval should miss
    // about 1 in 20; allow 4 misses in 40.
    let covered = (0..40)
        .filter(|seed| {
            let pts = series(5_000, 10, |x| 100.0 * x, Noise::Gauss(20.0 * KIB), *seed);
            let xs: Vec<f64> = pts.iter().map(|p| p.requests as f64).collect();
            let ys: Vec<f64> = pts.iter().map(|p| p.live as f64).collect();
            let fit = theil_sen(&xs, &ys, 1.96).expect("fit");
            fit.lo <= 100.0 && 100.0 <= fit.hi
        })
        .count();
    assert!(covered >= 36, "covered {covered}/40");
}

#[test]
fn flat_series_are_stable_under_every_noise_shape() {
    for (i, noise) in SHAPES.iter().enumerate() {
        for seed in 0..4 {
            let v = judge_default(&series(10_000, 10, |_| 0.0, *noise, seed));
            assert_eq!(
                v.class,
                Class::Stable,
                "shape {i} {noise:?} seed {seed}: {v}"
            );
            let s = v.slope.expect("slope");
            assert!(
                s.hi <= 16.0 && s.lo <= 0.0 + 1.0,
                "shape {i} seed {seed}: {s}"
            );
            assert_eq!(v.points_used, 901, "readings at 1,000..=10,000");
            assert_eq!(v.warmup_excluded, 99, "readings at 10..=990");
        }
    }
}

#[test]
fn without_injection_never_leak() {
    // Every noise shape, with and without a warm-up ramp, short and long runs.
    let mut judged = 0;
    for noise in SHAPES {
        for (bytes, end) in [(0.0, 1.0), (64.0 * KIB, 500.0), (2.0 * MIB, 1_000.0)] {
            for (requests, every) in [(3_000, 10), (10_000, 10)] {
                for seed in 0..3 {
                    let w = ramp(bytes, end * requests as f64 / 10_000.0);
                    let v = judge_default(&series(requests, every, w, noise, seed));
                    assert_ne!(
                        v.class,
                        Class::Leak,
                        "{noise:?} ramp {bytes} {requests} seed {seed}: {v}"
                    );
                    judged += 1;
                }
            }
        }
    }
    assert_eq!(judged, 8 * 3 * 2 * 3);
}

#[test]
fn injected_leaks_are_caught_within_tolerance() {
    // 10k requests, a reading every 10, a 512 KiB warm-up ramp over the first 8%: leak, and
    // the slope within ±10% of B (±2 B at 16).
    for b in [16.0, 64.0, 256.0, 1024.0, 4096.0] {
        for noise in SHAPES {
            for seed in 0..2 {
                let w = ramp(512.0 * KIB, 800.0);
                let v = judge_default(&series(10_000, 10, |x| w(x) + b * x, noise, seed));
                let s = v.slope.expect("slope");
                assert_eq!(v.class, Class::Leak, "B {b} {noise:?} seed {seed}: {v}");
                assert!(
                    within(s.bytes_per_request, b),
                    "B {b} {noise:?} seed {seed}: {s}"
                );
                assert!(
                    s.lo <= b * 1.1 && s.hi >= b * 0.9,
                    "B {b} {noise:?} seed {seed}: {s}"
                );
                assert_eq!(s.per_million, (s.bytes_per_request * 1e6).round() as i64);
            }
        }
    }
}

#[test]
fn warm_up_ramp_then_flat_is_bounded() {
    // (ramp bytes, 98% done at request)
    for (bytes, end) in [
        (256.0 * KIB, 500.0),
        (512.0 * KIB, 1_000.0),
        (2.0 * MIB, 800.0),
    ] {
        for noise in [
            Noise::Realistic,
            Noise::Spiky {
                sigma: 10.0 * KIB,
                p: 0.05,
                max: 200.0 * KIB,
            },
        ] {
            for seed in 0..3 {
                let v = judge_default(&series(10_000, 10, ramp(bytes, end), noise, seed));
                assert_eq!(
                    v.class,
                    Class::Bounded,
                    "ramp {bytes} {noise:?} seed {seed}: {v}"
                );
                let grew = v.warmup_growth.expect("warm-up growth") as f64;
                // The first readings are already part-way up the ramp.
                assert!(
                    grew > 0.5 * bytes && grew < 1.25 * bytes,
                    "ramp {bytes}: grew {grew}"
                );
            }
        }
    }
}

#[test]
fn capped_cache_is_bounded() {
    // (bytes/request while filling, full at request)
    for (b, full) in [
        (256.0, 4_000.0),
        (1024.0, 3_000.0),
        (64.0, 5_000.0),
        (4096.0, 4_000.0),
    ] {
        for seed in 0..3 {
            let w = ramp(256.0 * KIB, 800.0);
            let v = judge_default(&series(
                10_000,
                10,
                |x| w(x) + b * x.min(full),
                Noise::Realistic,
                seed,
            ));
            assert_eq!(
                v.class,
                Class::Bounded,
                "B {b} full at {full} seed {seed}: {v}"
            );
            let late = v.late_slope.expect("late slope");
            assert!(late.bytes_per_request.abs() < 2.0, "B {b}: {late}");
        }
    }
}

#[test]
fn sawtooth_is_not_a_leak() {
    // (bytes/request, cleared every N requests): a buffer that fills and is cleared.
    for (b, period) in [
        (64.0, 1_000.0),
        (256.0, 500.0),
        (1024.0, 2_000.0),
        (16.0, 3_000.0),
    ] {
        for seed in 0..3 {
            let v = judge_default(&series(
                10_000,
                10,
                |x| b * (x % period),
                Noise::Realistic,
                seed,
            ));
            assert_ne!(
                v.class,
                Class::Leak,
                "B {b} period {period} seed {seed}: {v}"
            );
        }
    }
}

#[test]
fn one_off_steps_are_not_leaks() {
    // (step at request, expected class)
    let cases = [
        (3_000.0, Some(Class::Bounded)),
        (5_000.0, Some(Class::Bounded)),
        (8_000.0, Some(Class::Inconclusive)),
        (9_500.0, None),
    ];
    for (at, want) in cases {
        for seed in 0..3 {
            let v = judge_default(&series(
                10_000,
                10,
                |x| if x > at { 256.0 * KIB } else { 0.0 },
                Noise::Realistic,
                seed,
            ));
            assert_ne!(v.class, Class::Leak, "step at {at} seed {seed}: {v}");
            if let Some(want) = want {
                assert_eq!(v.class, want, "step at {at} seed {seed}: {v}");
            }
        }
    }
}

#[test]
fn short_runs_are_inconclusive_and_say_what_to_run() {
    // (requests, every, readings after warm-up)
    for (requests, every, used) in [(200, 10, 15), (340, 10, 29), (50, 10, 0), (0, 10, 0)] {
        let v = judge_default(&series(
            requests,
            every,
            |x| 1024.0 * x,
            Noise::Realistic,
            1,
        ));
        assert_eq!(v.class, Class::Inconclusive, "{requests}: {v}");
        assert_eq!(v.points_used, used, "{requests}: {v}");
        assert!(
            v.reason.starts_with(&format!("only {used} readings")),
            "{v}"
        );
        assert!(v.reason.contains("run ≥"), "{v}");
    }
    let v = judge_default(&[]);
    assert_eq!(
        (v.class, v.slope, v.retained_vs_baseline),
        (Class::Inconclusive, None, None)
    );
}

#[test]
fn too_noisy_is_inconclusive() {
    for seed in 0..3 {
        let v = judge_default(&series(
            1_500,
            10,
            |_| 0.0,
            Noise::Uniform(400.0 * KIB),
            seed,
        ));
        assert_eq!(v.class, Class::Inconclusive, "seed {seed}: {v}");
        assert!(
            v.reason.contains("too uncertain") && v.reason.contains("run ≥"),
            "{v}"
        );
    }
}

/// Adds RSS: `base + rate × requests` rounded down to 4 KiB pages, plus page-sized jitter.
fn with_rss(mut pts: Vec<Point>, rate: f64, seed: u64) -> Vec<Point> {
    let mut rng = StdRng::seed_from_u64(seed);
    for p in &mut pts {
        let pages =
            ((30.0 * MIB + rate * p.requests as f64) / 4096.0).floor() as u64 + rng.gen_range(0..4);
        p.rss = Some(pages * 4096);
    }
    pts
}

#[test]
fn rss_growth_with_flat_live_is_rss_only() {
    // (live bytes/request, rss bytes/request, class)
    let cases = [
        (0.0, 64.0, Class::RssOnly),
        (0.0, 512.0, Class::RssOnly),
        (0.0, 0.0, Class::Stable),
        (0.0, 1.0, Class::Stable),
        (256.0, 512.0, Class::Leak),
    ];
    for (live, rss, want) in cases {
        for seed in 0..2 {
            let pts = with_rss(
                series(10_000, 10, |x| live * x, Noise::Realistic, seed),
                rss,
                seed,
            );
            let v = judge_default(&pts);
            assert_eq!(v.class, want, "live {live} rss {rss} seed {seed}: {v}");
            let r = v.rss_slope.expect("rss slope");
            assert!(
                (r.bytes_per_request - rss).abs() <= (0.1 * rss).max(2.0),
                "rss {rss}: {r}"
            );
        }
    }
    // Bounded live heap with growing RSS is also rss-only.
    let pts = with_rss(
        series(10_000, 10, ramp(1.0 * MIB, 800.0), Noise::Realistic, 3),
        128.0,
        3,
    );
    assert_eq!(judge_default(&pts).class, Class::RssOnly);
}

#[test]
fn staircase_and_retained_vs_baseline_come_from_quiescent_readings() {
    // Three rounds of 1,000 requests; busy readings hold 50 KiB in flight on top of a base
    // that retains 10 KiB more at each round's end. Round 1 has two quiescent readings
    // (linger): the last counts. Round 3 has none.
    let kib = |k: u64| k * 1024;
    let base = 4 * 1024 * 1024;
    let mut pts = Vec::new();
    for round in 0..4u32 {
        for i in 1..=100u64 {
            let requests = u64::from(round) * 1_000 + i * 10;
            pts.push(Point {
                requests,
                live: base + kib(50),
                rss: None,
                quiescent: false,
                round,
            });
        }
        if round < 3 {
            let requests = u64::from(round + 1) * 1_000;
            let retained = base + kib(10) * u64::from(round + 1);
            if round == 1 {
                pts.push(Point {
                    requests,
                    live: retained + kib(7),
                    rss: None,
                    quiescent: true,
                    round,
                });
            }
            pts.push(Point {
                requests,
                live: retained,
                rss: None,
                quiescent: true,
                round,
            });
        }
    }
    let v = judge_default(&pts);
    assert_eq!(v.baseline, Some((base + kib(50)) as i64));
    let step = |k: i64| k * 1024;
    assert_eq!(
        v.staircase,
        vec![step(10 - 50), step(20 - 50), step(30 - 50)]
    );
    assert_eq!(v.retained_vs_baseline, Some(step(30 - 50)));
    // Quiescent readings stay out of the fit: the busy series is perfectly flat.
    let s = v.slope.expect("slope");
    assert_eq!((s.bytes_per_request, s.lo, s.hi), (0.0, 0.0, 0.0));
    assert_eq!(v.class, Class::Stable, "{v}");
    assert_eq!(v.points_used, 361, "busy readings at 400..=4,000");
}

#[test]
fn large_series_are_binned_and_judged_the_same() {
    // 2,000 and 5,000 readings: the pairwise step is capped at 1,000 fitted points.
    for (every, readings) in [(5, 2_000), (2, 5_000)] {
        let leak = judge_default(&series(10_000, every, |x| 256.0 * x, Noise::Realistic, 4));
        assert_eq!(leak.class, Class::Leak, "{leak}");
        assert!(
            within(leak.slope.expect("slope").bytes_per_request, 256.0),
            "{leak}"
        );
        assert_eq!(leak.points_used + leak.warmup_excluded, readings);
        let flat = judge_default(&series(10_000, every, |_| 0.0, Noise::Realistic, 4));
        assert_eq!(flat.class, Class::Stable, "{flat}");
    }
    let (bx, by) = bin(&[0.0, 1.0, 2.0, 3.0, 4.0], &[5.0, 1.0, 9.0, 2.0, 8.0], 2);
    assert_eq!((bx, by), (vec![1.0, 3.5], vec![5.0, 5.0]));
}

#[test]
fn reading_order_does_not_matter() {
    let pts = series(10_000, 10, |x| 64.0 * x, Noise::Realistic, 9);
    let mut shuffled = pts.clone();
    shuffled.reverse();
    shuffled.swap(3, 700);
    assert_eq!(judge_default(&pts), judge_default(&shuffled));
}

#[test]
fn class_and_verdict_serialize_as_documented() {
    let names: Vec<String> = [
        Class::Stable,
        Class::Bounded,
        Class::Leak,
        Class::RssOnly,
        Class::Inconclusive,
    ]
    .iter()
    .map(|c| {
        let json = serde_json::to_string(c).expect("json");
        assert_eq!(json, format!("\"{c}\""));
        c.to_string()
    })
    .collect();
    assert_eq!(
        names,
        ["stable", "bounded", "leak", "rss-only", "inconclusive"]
    );
    let v = judge_default(&series(
        5_000,
        10,
        |x| 1024.0 * x,
        Noise::Gauss(8.0 * KIB),
        0,
    ));
    let json = serde_json::to_value(&v).expect("json");
    assert_eq!(json["class"], "leak");
    assert!(
        json["slope"]["bytes_per_request"].is_number() && json["slope"]["per_million"].is_i64()
    );
    let back: Verdict = serde_json::from_value(json).expect("round trip");
    assert_eq!(back.class, v.class);
    assert_eq!(v.to_string(), v.reason);
}

#[test]
fn slopes_and_suggested_lengths_format_for_people() {
    assert_eq!(round_up_nice(3_371.0), 3_400);
    let s = Slope {
        bytes_per_request: 1024.0,
        lo: 1010.0,
        hi: 1038.0,
        per_million: 1_024_000_000,
    };
    assert_eq!(s.to_string(), "1,024 B/request (95% CI 1,010–1,038)");
}

#[test]
fn a_ramp_past_the_cut_extends_the_warm_up() {
    // A 2 MiB ramp 98% done at 15% of the run biases a 10% cut by ~15% at 16 B/request; the
    // cut moves on in 5% steps until the halves agree.
    for (b, seed) in [(16.0, 0), (16.0, 1), (64.0, 2), (0.0, 3)] {
        let w = ramp(2.0 * MIB, 1_500.0);
        let v = judge_default(&series(
            10_000,
            10,
            |x| w(x) + b * x,
            Noise::Realistic,
            seed,
        ));
        assert!(
            v.warmup_excluded >= 149,
            "B {b}: cut {} readings",
            v.warmup_excluded
        );
        if b > 0.0 {
            assert_eq!(v.class, Class::Leak, "B {b}: {v}");
            assert!(
                within(v.slope.expect("slope").bytes_per_request, b),
                "B {b}: {v}"
            );
        } else {
            assert_eq!(v.class, Class::Bounded, "{v}");
        }
    }
}

#[test]
fn growth_within_the_noise_is_inconclusive_not_leak() {
    // 16 B/request over 9,000 requests is 144 KiB, under the noise of a uniform ±200 KiB:
    // a significant slope, but not enough growth to call.
    let v = judge_default(&series(
        10_000,
        10,
        |x| 16.0 * x,
        Noise::Uniform(200.0 * KIB),
        100,
    ));
    assert_eq!(v.class, Class::Inconclusive, "{v}");
    assert!(v.reason.contains("within the noise"), "{v}");
}

#[test]
fn strongly_autocorrelated_noise_is_not_a_leak() {
    // Bursts spanning ~20 readings: the interval widens by up to 6.2×.
    for seed in 0..6 {
        let noise = Noise::Ar1 {
            sigma: 40.0 * KIB,
            rho: 0.95,
        };
        let v = judge_default(&series(10_000, 10, |_| 0.0, noise, seed));
        assert_ne!(v.class, Class::Leak, "seed {seed}: {v}");
    }
}

#[test]
fn a_series_read_only_at_rest_is_judged_on_what_it_has() {
    // Another process sampled between batches: every reading quiescent.
    let mut pts = series(10_000, 100, |x| 512.0 * x, Noise::Gauss(4.0 * KIB), 5);
    pts.iter_mut().for_each(|p| p.quiescent = true);
    let v = judge_default(&pts);
    assert_eq!(v.class, Class::Leak, "{v}");
    assert!(
        within(v.slope.expect("slope").bytes_per_request, 512.0),
        "{v}"
    );
    assert_eq!(v.points_used, 91);
}

#[test]
fn few_readings_never_make_a_clean_series_a_leak() {
    // Every noise shape, flat or with a warm-up ramp (one running past the 10% cut), 6 to 29
    // readings after warm-up, a reading every 10 or 100 requests.
    let ramps = [
        (0.0, 1.0),
        (64.0 * KIB, 500.0),
        (2.0 * MIB, 1_000.0),
        (2.0 * MIB, 1_500.0),
    ];
    let mut classes = std::collections::BTreeMap::new();
    for noise in SHAPES {
        for (bytes, end) in ramps {
            for used in 6..=29u64 {
                for every in [10u64, 100] {
                    for seed in 0..3 {
                        let requests = every * (used + 5);
                        let w = ramp(bytes, end * requests as f64 / 10_000.0);
                        let v = judge_default(&series(requests, every, w, noise, seed));
                        // A ramp past the cut can move it on (a few readings fewer).
                        assert!(v.points_used <= used as usize, "{v}");
                        assert_ne!(
                            v.class,
                            Class::Leak,
                            "{noise:?} ramp {bytes} {used} readings every {every} seed {seed}: {v}"
                        );
                        *classes.entry(v.class.as_str()).or_insert(0) += 1;
                    }
                }
            }
        }
    }
    eprintln!("clean series with 6–29 readings: {classes:?}");
    assert_eq!(classes.values().sum::<i32>(), 8 * 4 * 24 * 2 * 3);
    // Where the slope is tightly bounded near zero, few readings decide that too.
    assert!(
        classes.get("stable").copied().unwrap_or(0) > 100,
        "{classes:?}"
    );
}

#[test]
fn few_readings_decide_an_overwhelming_leak_and_never_call_a_leak_stable() {
    // 8 KiB per request, 15 readings after warm-up (200 requests), low noise: leak, ±25%.
    // In flight, spiky, none.
    let low = [SHAPES[2], SHAPES[3], SHAPES[7]];
    for noise in low {
        for seed in 0..4 {
            let v = judge_default(&series(200, 10, |x| 8192.0 * x, noise, seed));
            assert_eq!(v.class, Class::Leak, "{noise:?} seed {seed}: {v}");
            let s = v.slope.expect("slope").bytes_per_request;
            assert!((s - 8192.0).abs() <= 0.25 * 8192.0, "{noise:?}: {v}");
            assert!(v.reason.contains("on only 15 readings"), "{v}");
        }
    }
    // Any leak, any noise, few readings: leak at its rate, or inconclusive; never stable.
    let mut leaks = 0;
    for b in [16.0, 256.0, 1024.0, 8192.0, 65536.0] {
        for noise in SHAPES {
            for used in [6u64, 10, 15, 29] {
                for seed in 0..2 {
                    let v = judge_default(&series(10 * (used + 5), 10, |x| b * x, noise, seed));
                    match v.class {
                        Class::Leak => {
                            leaks += 1;
                            let s = v.slope.expect("slope").bytes_per_request;
                            assert!((s - b).abs() <= 0.25 * b, "B {b} {noise:?}: {v}");
                        }
                        Class::Inconclusive => {
                            assert!(v.reason.contains("run ≥"), "{v}");
                        }
                        _ => panic!("B {b} {noise:?} {used} readings seed {seed}: {v}"),
                    }
                }
            }
        }
    }
    eprintln!("planted leaks with 6–29 readings called leak: {leaks} of 320");
}

/// The early stop simulated on `pts` as if they arrived one by one: the first settled verdict,
/// and every look that would have settled on `leak` had the run gone on after it.
fn simulate_looks(pts: &[Point]) -> (Option<Settled>, Vec<u64>) {
    let params = Params::default();
    let mut stop = EarlyStop::new();
    let mut first = None;
    let mut leaks = Vec::new();
    for i in 0..pts.len() {
        if !stop.due(pts[i].requests) {
            continue;
        }
        if let Some(s) = stop.look(&pts[..=i], &params) {
            if s.verdict.class == Class::Leak {
                leaks.push(s.requests);
            }
            first.get_or_insert(s);
        }
    }
    (first, leaks)
}

#[test]
fn the_early_stop_never_settles_a_clean_series_as_a_leak() {
    // Every noise shape and ramp of `without_injection_never_leak` (plus a ramp past the cut),
    // short and long: the ramps end within the whole run's 10–15%, so early looks see them
    // part-way. Looks go on after a settled verdict, so any pair of looks agreeing on `leak`
    // anywhere in the run is counted.
    let mut settled = std::collections::BTreeMap::new();
    let mut false_leaks = Vec::new();
    for noise in SHAPES {
        for (bytes, end) in [
            (0.0, 1.0),
            (64.0 * KIB, 500.0),
            (2.0 * MIB, 1_000.0),
            (2.0 * MIB, 1_500.0),
        ] {
            for (requests, every) in [(1_000u64, 10), (3_000, 10), (10_000, 20)] {
                for seed in 0..3 {
                    let w = ramp(bytes, end * requests as f64 / 10_000.0);
                    let (first, leaks) = simulate_looks(&series(requests, every, w, noise, seed));
                    let class = first.map_or("not settled", |s| s.verdict.class.as_str());
                    *settled.entry(class).or_insert(0) += 1;
                    if !leaks.is_empty() {
                        false_leaks.push(format!("{noise:?} ramp {bytes} {requests} seed {seed}"));
                    }
                }
            }
        }
    }
    eprintln!("clean series under the early stop: {settled:?}");
    assert_eq!(settled.values().sum::<i32>(), 8 * 4 * 3 * 3);
    assert!(false_leaks.is_empty(), "{false_leaks:#?}");
}

#[test]
fn the_early_stop_settles_planted_leaks_at_their_rate() {
    // The leaks of `injected_leaks_are_caught_within_tolerance` (a 512 KiB warm-up ramp over
    // the first 800 requests), run up to 20,000 requests: each settles as `leak` within ±25%,
    // or runs to the end and is judged there; none settles as anything else.
    let mut report = Vec::new();
    for b in [16.0, 64.0, 256.0, 1024.0, 4096.0] {
        let mut at = Vec::new();
        for noise in SHAPES {
            for seed in 0..2 {
                let w = ramp(512.0 * KIB, 800.0);
                let pts = series(20_000, 20, |x| w(x) + b * x, noise, seed);
                let (first, _) = simulate_looks(&pts);
                let (v, requests) = match first {
                    Some(s) => (s.verdict, s.requests),
                    None => (judge_default(&pts), 20_000),
                };
                assert_eq!(v.class, Class::Leak, "B {b} {noise:?} seed {seed}: {v}");
                let s = v.slope.expect("slope").bytes_per_request;
                assert!(
                    (s - b).abs() <= (0.25 * b).max(2.0),
                    "B {b} {noise:?} seed {seed} at {requests}: {v}"
                );
                at.push(requests);
            }
        }
        at.sort_unstable();
        let stopped = at.iter().filter(|r| **r < 20_000).count();
        report.push(format!(
            "{b} B/request: median {} requests, {stopped}/16 stopped early, {at:?}",
            at[at.len() / 2]
        ));
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn a_flat_series_shorter_than_its_resolution_is_inconclusive_not_stable() {
    // RSS-like: flat (no noise), a reading every 10 requests. 8 KiB of resolution at the 16 B
    // ceiling needs 512 requests after warm-up.
    let params = Params {
        resolution: 8.0 * KIB,
        ..Params::default()
    };
    let short = judge(&series(400, 10, |_| 0.0, Noise::None, 1), &params);
    assert_eq!(short.class, Class::Inconclusive, "{short}");
    assert!(
        short.reason.contains("moves in steps of about 8 KiB"),
        "{short}"
    );
    assert!(short.reason.contains("run ≥"), "{short}");
    let long = judge(&series(3_000, 10, |_| 0.0, Noise::None, 1), &params);
    assert_eq!(long.class, Class::Stable, "{long}");
    // The counting allocator's series (resolution 0) is judged as before.
    let exact = judge_default(&series(400, 10, |_| 0.0, Noise::None, 1));
    assert_eq!(exact.class, Class::Stable, "{exact}");
}
