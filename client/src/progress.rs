//! The single run's progress bar on stderr (a run with a known end: `--requests` or
//! `--duration`), and the one place log lines pass through so they never tear it. Shown only
//! on a terminal; knows nothing of what is measured, and is not measured: every allocation of
//! the bar (its state, each redraw's text) happens inside [`heapmeter::uncounted`], so a run
//! reads the same heap with the bar as without.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// The bar, while one is shown.
static BAR: Mutex<Option<Shown>> = Mutex::new(None);

struct Shown {
    bar: ProgressBar,
    /// `Some(start)` for a bar over `--duration` (its position is seconds, not requests).
    timed: Option<Instant>,
}

/// A run's known end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Requests(u64),
    Duration(Duration),
}

impl End {
    /// The end a run with these flags has: `requests` (all rounds) first, else `duration`.
    pub fn of(requests: Option<u64>, duration: Option<Duration>) -> Option<End> {
        match (requests, duration) {
            (Some(n), _) => Some(End::Requests(n)),
            (None, Some(d)) => Some(End::Duration(d)),
            (None, None) => None,
        }
    }
}

/// Shows a bar for a run ending at `end`, if stderr is a terminal and `quiet` is off; a no-op
/// otherwise (a pipe, a file, `compare`'s children, CI).
pub fn start(end: Option<End>, quiet: bool) {
    let Some(end) = end else {
        return;
    };
    if quiet || !std::io::stderr().is_terminal() {
        return;
    }
    heapmeter::uncounted(|| show(end, ProgressDrawTarget::stderr_with_hz(4)));
}

/// Shows the bar for a run ending at `end` drawn to `sink`, terminal or not, redrawn up to
/// `hz` times a second: what a test (which has no terminal) uses to draw the bar for real.
/// `sink` gets each piece of text the bar writes.
pub fn start_drawing_to(end: End, sink: fn(&str), hz: u8) {
    heapmeter::uncounted(|| {
        show(
            end,
            ProgressDrawTarget::term_like_with_hz(Box::new(Sink(sink)), hz),
        )
    });
}

/// A terminal that hands the bar's text to a function (cursor moves are dropped).
#[derive(Debug)]
struct Sink(fn(&str));

impl TermLike for Sink {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        (self.0)(s);
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        (self.0)(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Builds and shows the bar; inside an uncounted scope, as is everything that touches it.
fn show(end: End, target: ProgressDrawTarget) {
    let (len, template, timed) = match end {
        End::Requests(n) => (
            n,
            "[{bar:30}] {human_pos}/{human_len} requests  ETA {eta}",
            None,
        ),
        End::Duration(d) => (
            d.as_secs().max(1),
            "[{bar:30}] {pos}/{len} s  {msg}  ETA {eta}",
            Some(Instant::now()),
        ),
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    if let Ok(mut shown) = BAR.lock() {
        *shown = Some(Shown { bar, timed });
    }
}

/// Moves the bar to `requests` served (a bar over `--duration` to the time elapsed, with the
/// count as its message), redrawing it when due. Cheap when no bar is shown.
pub fn set(requests: u64) {
    let Ok(shown) = BAR.try_lock() else {
        return;
    };
    let Some(s) = shown.as_ref() else {
        return;
    };
    heapmeter::uncounted(|| match s.timed {
        None => s.bar.set_position(requests),
        Some(t0) => {
            s.bar.set_position(t0.elapsed().as_secs());
            s.bar.set_message(format!("{requests} requests"));
        }
    });
}

/// Removes the bar (the run is over: the summary follows).
pub fn finish() {
    heapmeter::uncounted(|| {
        let taken = BAR.lock().ok().and_then(|mut shown| shown.take());
        if let Some(s) = taken {
            s.bar.finish_and_clear();
        }
    });
}

/// Runs `f` (a write to stderr) with the bar, if any, cleared and redrawn after: the logger
/// writes every line through here. The clearing and redrawing are the bar's, uncounted; `f`
/// is the caller's, counted as it is without a bar (the logger's buffers live in the counted
/// heap either way).
pub fn suspend(f: impl FnOnce()) {
    match BAR.lock() {
        Ok(shown) => match shown.as_ref() {
            Some(s) => heapmeter::uncounted(|| s.bar.suspend(|| heapmeter::counted(f))),
            None => f(),
        },
        Err(_) => f(),
    }
}
