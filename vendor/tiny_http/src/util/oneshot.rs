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
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Sender<T>(Arc<Shared<T>>);

pub struct Receiver<T>(Arc<Shared<T>>);

/// Returned by `recv` when the sender went away without sending (as `mpsc::RecvError`).
#[derive(Debug)]
pub struct RecvError;

pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::Empty),
        ready: Condvar::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Sends the value; it is dropped if the receiver is gone.
    pub fn send(&self, value: T) -> Result<(), T> {
        let mut state = self.0.lock();
        if let State::Empty = *state {
            *state = State::Full(value);
            drop(state);
            self.0.ready.notify_one();
            Ok(())
        } else {
            Err(value)
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        if let State::Empty = *state {
            *state = State::Done;
            drop(state);
            self.0.ready.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the value.
    pub fn recv(&self) -> Result<T, RecvError> {
        let mut state = self.0.lock();
        loop {
            match std::mem::replace(&mut *state, State::Done) {
                State::Full(value) => return Ok(value),
                State::Done => return Err(RecvError),
                State::Empty => {
                    *state = State::Empty;
                    state = self.0.ready.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    /// The value if it was sent already; never waits.
    pub fn try_recv(&self) -> Result<T, RecvError> {
        let mut state = self.0.lock();
        match std::mem::replace(&mut *state, State::Done) {
            State::Full(value) => Ok(value),
            other => {
                *state = other;
                Err(RecvError)
            }
        }
    }
}
