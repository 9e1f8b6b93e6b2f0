//! The verdict: from a run's memory series, is there a leak, and how many bytes per request?
//! Pure functions over plain data (no I/O, no clock): table-tested on synthetic series.
//!
//! # What it answers
//!
//! Given readings of a process's live heap taken every K completed requests ([`Point`]),
//! [`judge`] says whether memory grows without bound as requests keep coming, and by how many
//! bytes per request. It knows nothing about HTTP: any loop that counts iterations and reads its
//! heap (a Node.js loop, a queue consumer) can be judged the same way.
//!
//! # The classes
//!
//! | class | meaning | what to do |
//! |---|---|---|
//! | `stable` | after warm-up the live heap does not grow: the slope's 95% interval is below 16 B/request and no growth stands out of the noise | nothing |
//! | `bounded` | the heap grew — in warm-up (pools, buffers, lazy statics) or after it (a cache filling up) — then levelled off | check the plateau is a size you accept |
//! | `leak` | the heap grows steadily through the whole run, in both halves, at a rate clearly above zero | find what is retained per request; the slope says how much |
//! | `rss-only` | live heap is stable or bounded, but the resident set keeps growing | the allocator keeps freed pages (fragmentation, arenas); not a leak in the code under test |
//! | `inconclusive` | too few readings, or too noisy, or a shape that could be either (growth only late in the run, growth that comes and goes) | the reason says what to run instead |
//!
//! # Reading the numbers
//!
//! - **slope**: bytes of live heap per completed request, the Theil–Sen estimate (median of the
//!   slopes between every pair of readings), with a 95% interval `lo`–`hi` from Sen's
//!   Kendall-tau rank method. `per_million` is the slope times 10⁶: what a million more requests
//!   would add.
//! - **early/late slope**: the same estimate on the first and second half of the readings after
//!   warm-up. A leak has `late ≈ early ≈ slope`; a filling cache has `late ≈ 0`.
//! - **baseline**: the live heap at the end of warm-up (median of the first readings after it,
//!   requests in flight included).
//! - **retained after idle**: the last quiescent reading (no request in flight) minus the
//!   baseline. Because the baseline includes what in-flight requests hold, a healthy client at
//!   high concurrency reads slightly *negative* here; a leak reads about `slope × requests`.
//! - **staircase**: the same difference at the end of each `--rounds` round (one entry per round
//!   that has a quiescent reading). A leak climbs one step per round; a pool or cache is flat
//!   after the first.
//! - **noise**: the robust standard deviation (1.4826 × MAD) of the readings around the fitted
//!   line: about what requests in flight add and remove.
//! - **warm-up growth**: the baseline minus the first readings: what pools and buffers took.
//! - **points used / warm-up excluded**: busy readings the slope was fitted on, and readings cut
//!   as warm-up (more than 10% of them when the warm-up was extended, see below).
//!
//! # How the decision is made
//!
//! Every threshold is a field of [`Params`]; the defaults below are what the tool uses.
//!
//! 1. **Warm-up.** Readings before 10% of the run's requests, and at least the first 5 readings,
//!    are excluded: pools, buffers and lazy statics fill up there. If the early half of what is
//!    left still climbs *significantly* faster than the late half (early interval entirely above
//!    the late one: a ramp running past the cut), the cut moves on by 5% of the run, up to 30%.
//!    A lingering ramp would otherwise inflate a small leak's slope (a 2 MiB ramp 98% done at
//!    15% reads 16 B/request as 18–19); moving the cut can only turn a plateau into a flat tail,
//!    never a flat series into growth. Quiescent readings are left out of the slope (they lack
//!    the in-flight bytes every other reading carries, so they would bias the fit); they feed
//!    `retained` and the staircase. Fewer than 30 busy readings after warm-up: rule 1b.
//!
//!    **1b. Few readings** (6–29 after warm-up: a fast or short run read on a clock). The same
//!    shapes decide, under a stricter bar, and only where the evidence is overwhelming:
//!    - `leak` when the series is a leak at the usual 95% *and* again with every interval at
//!      99.9% (`few_z` 3.29: the overall slope above the floor, both halves above zero) with the
//!      growth over the window at least 10 noise deviations (`few_growth_sigmas`, not 1), and
//!      the overall 99.9% interval no wider than half the slope (`few_max_relative_width`: the
//!      rate known within about ±25%, the tolerance a user can act on). With 6–8 readings a
//!      half has 3–4, and a 99.9% Sen interval on so few spans every pairwise slope: both halves
//!      must rise between *every* pair of their readings. A noise deviation estimated from a
//!      handful of residuals can be small by luck; the interval-width rule does not rest on it.
//!    - `stable` (or `bounded`, by the warm-up rule of 4) when the series is flat at 95% and
//!      the 99.9% interval's upper bound is still at most 16 B/request: no leak of the smallest
//!      calibrated size, even at 99.9%. `rss-only` when RSS meets the `leak` bar above.
//!    - Anything else: `inconclusive`, saying what to run, as before. A 1 KiB/request leak under
//!      realistic noise with 15 or 29 readings stays there (its halves cannot be told apart at
//!      99.9%); an 8 KiB/request one with 15 readings under in-flight or spiky noise is decided.
//!
//!    Under 6 readings: `inconclusive`. Pinned in `tests.rs` on 4,608 clean series (8 noise
//!    shapes × 4 warm-up ramps × 6–29 readings × a reading every 10 or 100 requests × 3 seeds):
//!    0 `leak`, 585 `stable`, 227 `bounded`; planted leaks of 16 B–64 KiB/request at 6–29
//!    readings are `leak` within ±25% or `inconclusive`, never `stable`.
//! 2. **Slope and interval.** Theil–Sen is unbiased for any independent noise (the difference of
//!    two independent draws from one distribution is symmetric) and shrugs off up to 29% wild
//!    readings, so in-flight spikes and bimodal noise do not move it. Sen's interval assumes
//!    independent readings; readings taken close together are not (a burst of slow requests spans
//!    several), so the interval is widened by `sqrt((1+ρ)/(1−ρ))`, the usual AR(1) variance
//!    inflation for trend tests, with ρ the lag-1 correlation of the residuals estimated from
//!    their signs (`ρ = sin(π(p − ½))`, p = share of consecutive residuals on the same side,
//!    which spikes cannot inflate), clamped to `[0, 0.95]` (at most 6.2× wider). A series that
//!    is not a straight line (a plateau, a step, a sawtooth) leaves correlated residuals, so its
//!    interval widens too: the model's doubt becomes the verdict's doubt.
//! 3. **Significant growth** needs the interval's lower bound above 1 B/request (under 1 MB per
//!    million requests is not worth a red build) *and* the growth over the window (slope ×
//!    requests) at least one noise deviation. The second rule keeps a tight interval from
//!    deciding alone when the total growth is still inside the noise; that case is
//!    `inconclusive` with the run length that would lift it out.
//! 4. **No significant growth:** `stable` when the interval's upper bound is at most 16 B/request
//!    — the smallest leak the calibration sweep injects, so `stable` means "no leak of that
//!    size" — or `bounded` if warm-up grew the heap by at least 64 KiB and 3 noise deviations
//!    (a first reading is already part-way up the ramp, so `warmup_growth` reads low). An upper
//!    bound above 16 B/request: `inconclusive`, the interval still admits a leak.
//! 5. **Significant growth:** the halves decide.
//!    - Late slope's upper bound below half of the larger of the overall and the early slope:
//!      growth levelled off, `bounded`. (The early slope matters for a step early in the window,
//!      which drags the overall slope down but not the early one.)
//!    - Early half not significantly growing but the late half is: a one-off step or a leak that
//!      began late, `inconclusive`.
//!    - Both halves significantly above zero, the late slope at least half the overall, and the
//!      heap's *level* agreeing — Tukey's resistant line (median of the last third minus median
//!      of the first, over their distance) at least half the slope: `leak`. The level check
//!      catches growth that is released again (a buffer cleared every N requests), where the
//!      pairwise slopes lean up although nothing stays.
//!    - Anything else: `inconclusive`.
//!    - Except: a steady climb with exactly one large drop (a one-off release) is judged again
//!      with the drop added back, and is `leak` if that is (`one_release_set_aside`).
//!
//!    `leak` needs the overall interval, both halves, their ratio and the level to agree. A false
//!    leak is worse than a slow verdict, so ambiguity resolves to `inconclusive`, and the reason
//!    says how much longer to run.
//! 6. **RSS.** If live heap is `stable` or `bounded` and RSS passes the same leak test with a
//!    4 B/request floor (a 4 KiB page per thousand requests), the class is `rss-only`.
//!
//! Above 1,000 readings the fit bins consecutive readings (mean requests, median live), so the
//! O(n²) pairwise step stays near half a million slopes (a few MB, computed with `rayon`).
//!
//! # Resolution
//!
//! The slope's standard error is about `noise × 3.5 / (requests × √readings)`. At 10,000
//! requests and 1,000 readings with ±20 KiB noise that is ~0.25 B/request, so 16 B/request is
//! measured within ±1; with ±150 KiB noise 16 B/request adds up to less than the noise and the
//! verdict asks for a longer run instead of guessing. Accuracy on synthetic series, pinned by the
//! tests in `verdict/tests.rs`: with 10,000 requests, a reading every 10, a 512 KiB warm-up and
//! eight noise shapes (Gaussian, uniform ±100 KiB, 64 requests in flight, spikes to 200 KiB,
//! bimodal, AR(1) bursts, a realistic mix, none), leaks of 16, 64, 256, 1,024 and 4,096 B/request
//! are `leak` within ±10% (±2 B at 16), and flat series are never `leak`.
//!
//! # Stopping early
//!
//! [`EarlyStop`] says when a run may stop before `--requests`/`--duration` because the verdict
//! is settled either way. Looking again and again and stopping at the first `leak` would inflate
//! false leaks (optional stopping), and a look long before the end sees more of the program's
//! warm-up than the run's 10%; so:
//! - **Looks** only at `1,000 × 2^(k/4)` requests (1,000, 1,189, 1,414, 1,682, 2,000, …):
//!   about 13 looks per decade, however often readings come, and none before 1,000 requests,
//!   so the earliest settle is at 1,189 (real programs warm up in straight lines over their
//!   first hundreds of requests as often as in curves).
//! - At a look the readings are judged at 95% **and** at 99% ([`LOOK_Z`]); the look may stop
//!   only on a class both give.
//! - **Settled** when two looks in a row may stop on the same class.
//! - `leak` also needs the rate not to have moved: the previous look's slope inside this look's
//!   99% interval (or within 5% of it), and no slowdown inside the window: the late half's 99%
//!   interval at most half the slope wide, and the early half's rate not above it by more than
//!   5%. A warm-up ramp seen part-way grows ever more slowly (its halves read 0.6–0.92 of each
//!   other where it mimics a leak); a leak does not.
//! - `bounded` and `rss-only` also need the late half's 99% upper bound at most 16 B/request:
//!   a small leak behind a long warm-up must not stop as a plateau.
//!
//! Pinned in `tests.rs`, looks simulated reading by reading: on 288 clean series (8 noise
//! shapes × 4 ramps × 1,000/3,000/10,000 requests × 3 seeds), with looks going on after a
//! settled verdict, **0** pairs of looks settle on `leak` (88 settle `stable`, 46 `bounded`,
//! the rest run to the end). Planted leaks (16–4,096 B/request under a 512 KiB warm-up, up to
//! 20,000 requests, a reading every 20) all settle as `leak` within ±25% or run to the end and
//! are judged `leak` there (74 of 80 settle early); median requests to the verdict: 16 B →
//! 11,320; 64 B → 8,000; 256 B → 8,000; 1 KiB → 4,000; 4 KiB → 2,840 (2,000 while looks
//! began at 125 requests). The price of safety is
//! that a leak under a warm-up settles only once the window has left the warm-up behind.
//!
//! # Example
//!
//! ```
//! use leak_client::verdict::{judge, Class, Params, Point};
//!
//! // 8 B retained per request, a reading every 10 requests, a little jitter.
//! let points: Vec<Point> = (1..=1_000u64)
//!     .map(|i| Point {
//!         requests: i * 10,
//!         live: (1 << 20) + i * 80 + (i * 7919 % 13) * 256,
//!         rss: None,
//!         quiescent: false,
//!         round: 0,
//!     })
//!     .collect();
//! let verdict = judge(&points, &Params::default());
//! assert_eq!(verdict.class, Class::Leak);
//! println!("{verdict}"); // live heap grew 8.0 B/request (95% CI …) steadily through the run …
//! ```

// This file is the manual. Layered inside, lowest first: `stats.rs` the robust statistics,
// `types.rs` the data, `reasons.rs` the sentences, `policy.rs` the decision (`judge`),
// `early_stop.rs` when a run may stop early; `tests.rs` the table tests.
mod early_stop;
mod policy;
mod reasons;
mod stats;
#[cfg(test)]
mod tests;
mod types;

pub use early_stop::{EarlyStop, LOOK_Z, Settled, SettledAt, look_params};
pub use policy::{MIN_RELEASE, judge};
pub use types::{Class, Params, Point, Slope, Verdict};
