//! The elastic worker pool: one thread per job in progress, reused when idle, spawned only
//! when no idle one exists, retired after lingering idle; never more than `max` busy (jobs
//! run here and slots held by [`Pool::claim`] together). Knows nothing of HTTP.
//!
//! Claiming is exact: an idle worker is taken out of the idle list under its mutex before
//! it is handed a job, and a worker whose idle wait timed out retires only if it can still
//! remove itself from that list under the same mutex; otherwise a job is already on its way
//! to it. (tiny_http 0.12's own pool guessed from a counter instead, and queued work behind
//! threads that were not idle: see vendor/tiny_http/PATCHES.md.) Any number of threads may
//! hand out jobs at once: the busy bound is raised with a compare-and-swap.
//!
//! A job reaches its worker through the worker's own one-job slot (a mutex and a condvar):
//! handing it over costs one futex wake, and an idle worker sleeps without spinning.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

enum Message<J> {
    Run(J),
    Exit,
}

/// One worker's mailbox: at most one message, put by whoever claimed the worker.
struct Slot<J> {
    message: Mutex<Option<Message<J>>>,
    ready: Condvar,
}

impl<J> Slot<J> {
    fn new() -> Self {
        Slot {
            message: Mutex::new(None),
            ready: Condvar::new(),
        }
    }

    fn put(&self, message: Message<J>) {
        *lock(&self.message) = Some(message);
        self.ready.notify_one();
    }

    /// The next message, waiting at most `timeout` (`None`: as long as it takes).
    fn take(&self, timeout: Option<Duration>) -> Option<Message<J>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut message = lock(&self.message);
        loop {
            if let Some(m) = message.take() {
                return Some(m);
            }
            message = match deadline {
                None => self.ready.wait(message).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    match self.ready.wait_timeout(message, left) {
                        Ok((m, _)) => m,
                        Err(e) => e.into_inner().0,
                    }
                }
            };
        }
    }
}

struct Idle<J> {
    id: u64,
    slot: Arc<Slot<J>>,
}

struct Shared<J> {
    handler: Box<dyn Fn(J) + Send + Sync>,
    /// Idle workers, most recently idle last (reused first: the others may retire).
    idle: Mutex<Vec<Idle<J>>>,
    busy: AtomicUsize,
    peak_busy: AtomicUsize,
    threads: AtomicUsize,
    /// Busy slots held through [`Pool::claim`] (threads outside the pool, serving).
    claimed: AtomicUsize,
    next_id: AtomicU64,
    closed: AtomicBool,
    max: usize,
    linger: Duration,
    name: String,
}

/// Why a job was handed back instead of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max` jobs are already running.
    Full,
    /// No thread could be spawned (the OS refused), or the pool is closed.
    Unavailable,
}

/// A handle on the pool; clones share it.
pub(crate) struct Pool<J: Send + 'static> {
    shared: Arc<Shared<J>>,
}

impl<J: Send + 'static> Clone for Pool<J> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
        }
    }
}

/// One busy slot held by a thread outside the pool (see [`Pool::claim`]); dropping it
/// frees the slot.
pub(crate) struct Claim<'a, J: Send + 'static> {
    pool: &'a Pool<J>,
}

impl<J: Send + 'static> Drop for Claim<'_, J> {
    fn drop(&mut self) {
        let s = &self.pool.shared;
        s.claimed.fetch_sub(1, Relaxed);
        s.busy.fetch_sub(1, Relaxed);
    }
}

impl<J: Send + 'static> Pool<J> {
    /// A pool running `handler` on each job, at most `max` at once; idle threads exit after
    /// `linger`. No thread is started until the first job.
    pub(crate) fn new(
        name: &str,
        max: usize,
        linger: Duration,
        handler: impl Fn(J) + Send + Sync + 'static,
    ) -> Self {
        Pool {
            shared: Arc::new(Shared {
                handler: Box::new(handler),
                idle: Mutex::new(Vec::new()),
                busy: AtomicUsize::new(0),
                peak_busy: AtomicUsize::new(0),
                threads: AtomicUsize::new(0),
                claimed: AtomicUsize::new(0),
                next_id: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                max,
                linger,
                name: name.to_owned(),
            }),
        }
    }

    /// Raises `busy` by one unless the pool is closed or `max` are busy.
    fn reserve(&self) -> Result<(), Refused> {
        let s = &self.shared;
        if s.closed.load(Relaxed) {
            return Err(Refused::Unavailable);
        }
        let before = s
            .busy
            .fetch_update(Relaxed, Relaxed, |b| (b < s.max).then_some(b + 1))
            .map_err(|_| Refused::Full)?;
        s.peak_busy.fetch_max(before + 1, Relaxed);
        Ok(())
    }

    /// Takes one busy slot for work the caller does on its own thread (counted in
    /// [`Pool::busy`] and bounded by `max` like a job), or says why not.
    pub(crate) fn claim(&self) -> Result<Claim<'_, J>, Refused> {
        self.reserve()?;
        self.shared.claimed.fetch_add(1, Relaxed);
        Ok(Claim { pool: self })
    }

    /// Runs `job` on an idle worker or a new one, or hands it back with the reason.
    pub(crate) fn try_run(&self, job: J) -> Result<(), (J, Refused)> {
        if let Err(why) = self.reserve() {
            return Err((job, why));
        }
        self.hand_over(job).map_err(|job| {
            self.shared.busy.fetch_sub(1, Relaxed);
            (job, Refused::Unavailable)
        })
    }

    /// Runs `job` on a worker in the busy slot `claim` holds (the slot moves with it), or
    /// hands both back when no thread could be spawned.
    pub(crate) fn run_claimed<'a>(
        &'a self,
        claim: Claim<'a, J>,
        job: J,
    ) -> Result<(), (J, Claim<'a, J>)> {
        match self.hand_over(job) {
            Ok(()) => {
                self.shared.claimed.fetch_sub(1, Relaxed);
                std::mem::forget(claim);
                Ok(())
            }
            Err(job) => Err((job, claim)),
        }
    }

    /// Gives `job`, already counted in `busy`, to an idle worker or a new one.
    fn hand_over(&self, job: J) -> Result<(), J> {
        let claimed = lock(&self.shared.idle).pop();
        match claimed {
            // The worker left the idle list under the lock, so it cannot retire: it takes
            // this message from its slot.
            Some(worker) => {
                worker.slot.put(Message::Run(job));
                Ok(())
            }
            None => self.spawn(job),
        }
    }

    fn spawn(&self, job: J) -> Result<(), J> {
        let s = &self.shared;
        let id = s.next_id.fetch_add(1, Relaxed);
        let shared = self.shared.clone();
        // The job waits in the new worker's slot, so a refused spawn can hand it back.
        let slot = Arc::new(Slot::new());
        slot.put(Message::Run(job));
        let worker_slot = slot.clone();
        s.threads.fetch_add(1, Relaxed);
        let spawned = thread::Builder::new()
            .name(format!("{}-{id}", s.name))
            .spawn(move || worker(shared, id, worker_slot));
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                s.threads.fetch_sub(1, Relaxed);
                log::warn!("cannot spawn a worker thread: {e}");
                match slot.take(Some(Duration::ZERO)) {
                    Some(Message::Run(job)) => Err(job),
                    // The closure (and its slot clone) is gone: the job is still here.
                    _ => unreachable!("the job was put before the spawn"),
                }
            }
        }
    }

    /// Jobs running now, plus slots held through [`Pool::claim`].
    pub(crate) fn busy(&self) -> usize {
        self.shared.busy.load(Relaxed)
    }

    /// Most jobs ever running at once.
    pub(crate) fn peak_busy(&self) -> usize {
        self.shared.peak_busy.load(Relaxed)
    }

    /// Worker threads alive (busy or idle).
    pub(crate) fn threads(&self) -> usize {
        self.shared.threads.load(Relaxed)
    }

    /// Busy slots held through [`Pool::claim`] right now.
    pub(crate) fn claimed(&self) -> usize {
        self.shared.claimed.load(Relaxed)
    }

    /// Refuses new jobs and lets idle workers exit; busy ones exit after their job.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Relaxed);
        let idle = std::mem::take(&mut *lock(&self.shared.idle));
        for worker in idle {
            worker.slot.put(Message::Exit);
        }
    }
}

fn worker<J: Send + 'static>(shared: Arc<Shared<J>>, id: u64, slot: Arc<Slot<J>>) {
    // Decrements `threads` however this thread ends, panics included.
    struct Alive<'a>(&'a AtomicUsize);
    impl Drop for Alive<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Relaxed);
        }
    }
    let _alive = Alive(&shared.threads);

    // The first job was put in the slot before this thread started.
    let mut next = slot.take(None);
    loop {
        let job = match next.take() {
            Some(Message::Run(job)) => job,
            Some(Message::Exit) | None => return,
        };
        // A panicking handler must not wedge `busy`: catch, count down, go on.
        let handler = &shared.handler;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(job))).is_err() {
            log::error!("a request handler panicked; its worker goes on");
        }
        shared.busy.fetch_sub(1, Relaxed);

        {
            let mut idle = lock(&shared.idle);
            if shared.closed.load(Relaxed) {
                return;
            }
            idle.push(Idle {
                id,
                slot: slot.clone(),
            });
        }
        next = match slot.take(Some(shared.linger)) {
            Some(message) => Some(message),
            None => {
                let mut idle = lock(&shared.idle);
                if let Some(i) = idle.iter().position(|w| w.id == id) {
                    idle.swap_remove(i);
                    return;
                }
                drop(idle);
                // Claimed between the timeout and the lock: the job is on its way.
                slot.take(None)
            }
        };
    }
}

/// Locks, ignoring poisoning: the idle list stays consistent (every holder only pushes,
/// pops or removes whole entries), and so does a slot (one `Option`).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn runs_jobs_concurrently_up_to_max_then_refuses() {
        let (release_tx, release_rx) = crossbeam_channel::unbounded::<()>();
        let pool = Pool::new("t", 3, Duration::from_secs(5), move |_: u32| {
            let _ = release_rx.recv();
        });
        for i in 0..3 {
            assert!(pool.try_run(i).is_ok());
        }
        assert_eq!(pool.busy(), 3);
        assert_eq!(pool.try_run(9).err().map(|e| e.1), Some(Refused::Full));
        for _ in 0..3 {
            release_tx.send(()).expect("release");
        }
        wait_until("all idle", || pool.busy() == 0);
        assert_eq!(pool.peak_busy(), 3);
        pool.close();
    }

    #[test]
    fn idle_workers_are_reused_not_respawned() {
        let (done_tx, done_rx) = mpsc::channel::<thread::ThreadId>();
        let done_tx = Mutex::new(done_tx);
        let pool = Pool::new("t", 8, Duration::from_secs(5), move |_: u32| {
            let _ = lock(&done_tx).send(thread::current().id());
        });
        let mut ids = std::collections::HashSet::new();
        for i in 0..50 {
            pool.try_run(i).expect("run");
            ids.insert(done_rx.recv().expect("done"));
            wait_until("idle again", || {
                pool.busy() == 0 && !lock(&pool.shared.idle).is_empty()
            });
        }
        assert_eq!(ids.len(), 1, "one thread serves sequential jobs");
        pool.close();
    }

    #[test]
    fn idle_workers_retire_and_the_pool_still_works() {
        let pool = Pool::new("t", 8, Duration::from_millis(20), |_: u32| {});
        for i in 0..4 {
            pool.try_run(i).expect("run");
        }
        wait_until("retired", || pool.threads() == 0);
        pool.try_run(5).expect("run after retiring");
        wait_until("done", || pool.busy() == 0);
        pool.close();
        wait_until("closed", || pool.threads() == 0);
        assert_eq!(
            pool.try_run(6).err().map(|e| e.1),
            Some(Refused::Unavailable)
        );
    }

    #[test]
    fn bursts_racing_retirement_lose_no_job() {
        // Linger as short as the gaps between bursts, so claims race retirements.
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<u32>();
        let pool = Pool::new("t", 64, Duration::from_millis(1), move |j: u32| {
            let _ = done_tx.send(j);
        });
        let mut sent = 0;
        for round in 0..200u32 {
            for k in 0..8 {
                if pool.try_run(round * 8 + k).is_ok() {
                    sent += 1;
                }
            }
            thread::sleep(Duration::from_micros(500 + u64::from(round % 7) * 200));
        }
        let mut got = 0;
        while got < sent {
            done_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("every accepted job runs");
            got += 1;
        }
        wait_until("idle", || pool.busy() == 0);
        pool.close();
    }

    #[test]
    fn claims_count_as_busy_and_share_the_bound_with_jobs() {
        let (release_tx, release_rx) = crossbeam_channel::unbounded::<()>();
        let pool = Pool::new("t", 2, Duration::from_secs(5), move |_: u32| {
            let _ = release_rx.recv();
        });
        let claim = pool.claim().expect("one slot");
        assert_eq!((pool.busy(), pool.claimed(), pool.threads()), (1, 1, 0));
        pool.try_run(1).expect("the second slot");
        assert_eq!(pool.try_run(2).err().map(|e| e.1), Some(Refused::Full));
        assert_eq!(pool.claim().err(), Some(Refused::Full));
        drop(claim);
        assert_eq!((pool.busy(), pool.claimed()), (1, 0));
        release_tx.send(()).expect("release");
        wait_until("idle", || pool.busy() == 0);
        assert_eq!(pool.peak_busy(), 2);
        pool.close();
    }

    #[test]
    fn a_claimed_slot_moves_with_its_job_to_a_worker() {
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<u32>();
        let pool = Pool::new("t", 1, Duration::from_secs(5), move |j: u32| {
            let _ = done_tx.send(j);
        });
        let claim = pool.claim().expect("slot");
        assert!(pool.run_claimed(claim, 7).is_ok());
        assert_eq!(
            done_rx.recv_timeout(Duration::from_secs(10)).expect("ran"),
            7
        );
        wait_until("slot freed once", || pool.busy() == 0);
        assert_eq!((pool.claimed(), pool.peak_busy()), (0, 1));
        pool.claim().expect("the slot is free again");
        pool.close();
    }

    #[test]
    fn a_panicking_job_frees_its_slot() {
        let pool = Pool::new("t", 1, Duration::from_secs(5), |j: u32| {
            assert!(j != 0, "job 0 panics on purpose");
        });
        pool.try_run(0).expect("run");
        wait_until("slot freed", || pool.busy() == 0);
        pool.try_run(1).expect("slot reusable");
        wait_until("done", || pool.busy() == 0);
        pool.close();
    }
}
