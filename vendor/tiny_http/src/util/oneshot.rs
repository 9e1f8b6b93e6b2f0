//! PATCH (leakprobe, PATCHES.md #9): a one-value channel for handing the connection's reader
//! and writer from one request to the next. It replaces `std::sync::mpsc::channel`, which
//! allocated two cache-aligned blocks per channel (two channels per request) for a value
//! that is sent once; this one is a single `Arc` with a mutex and a condvar.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

enum State<T> {
    Empty,
    Full(T),
    /// Sent and received, or the sender went away without sending.
    Done,
}

struct Shared<T> {
    state: Mutex<Slot<T>>,
    ready: Condvar,
}

/// The state, and whether the receiver waits on the condvar (only then is it notified:
/// a notification is a `futex` system call even when nobody waits).
struct Slot<T> {
    state: State<T>,
    waiting: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves `state` in and wakes the receiver if it waits.
    fn set(&self, mut slot: MutexGuard<'_, Slot<T>>, state: State<T>) {
        slot.state = state;
        let waiting = slot.waiting;
        drop(slot);
        if waiting {
            self.ready.notify_one();
        }
    }
}

pub struct Sender<T>(Arc<Shared<T>>);

pub struct Receiver<T>(Arc<Shared<T>>);

/// Returned by `recv` when the sender went away without sending (as `mpsc::RecvError`).
#[derive(Debug)]
pub struct RecvError;

pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(Slot {
            state: State::Empty,
            waiting: false,
        }),
        ready: Condvar::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Sends the value; it is dropped if the receiver is gone.
    pub fn send(&self, value: T) -> Result<(), T> {
        let slot = self.0.lock();
        if let State::Empty = slot.state {
            self.0.set(slot, State::Full(value));
            Ok(())
        } else {
            Err(value)
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let slot = self.0.lock();
        if let State::Empty = slot.state {
            self.0.set(slot, State::Done);
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the value.
    pub fn recv(&self) -> Result<T, RecvError> {
        let mut slot = self.0.lock();
        loop {
            match std::mem::replace(&mut slot.state, State::Done) {
                State::Full(value) => return Ok(value),
                State::Done => return Err(RecvError),
                State::Empty => {
                    slot.state = State::Empty;
                    slot.waiting = true;
                    slot = self.0.ready.wait(slot).unwrap_or_else(|e| e.into_inner());
                    slot.waiting = false;
                }
            }
        }
    }

    /// The value if it was sent already; never waits.
    pub fn try_recv(&self) -> Result<T, RecvError> {
        let mut slot = self.0.lock();
        match std::mem::replace(&mut slot.state, State::Done) {
            State::Full(value) => Ok(value),
            other => {
                slot.state = other;
                Err(RecvError)
            }
        }
    }
}
