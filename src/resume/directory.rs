//! The daemon-wide half of resuming (SPEC §2.1, §6.5): which worker runs each resumable stream,
//! and a way to pass a client to that worker. A `resume` handoff may reach any worker; the
//! stream it names lives on one of them, which alone may touch it.
//!
//! Each worker joins with a mailbox (its channel and waker, wrapped by the reactor) and gets
//! its index; it enters its streams when they become resumable and removes them when they are
//! gone. Lookups and changes take a lock for one map operation; nothing else waits on it, and
//! it is used only while `resume_window_ms` is on.

use std::collections::HashMap;
use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::id::StreamId;
use crate::http::CustomHeaders;

/// A client whose handoff asks to resume a stream another worker runs, on its way there, with
/// what that worker needs to answer it.
pub struct Handover {
    /// The client's socket, deregistered from the worker that received it.
    pub client: OwnedFd,
    /// The handoff's connection id and when its Apache connection was accepted.
    pub conn: u64,
    pub accepted_at: Instant,
    /// The handoff's `user_id`: it must be the stream's.
    pub user_id: i64,
    pub stream: StreamId,
    /// The last event the client has.
    pub seen: u64,
    /// The handoff's `response_headers` that passed the filter.
    pub headers: Option<Box<CustomHeaders>>,
    /// The backend the receiving worker named the connection with (for its log line, should
    /// it be answered 204).
    pub backend: &'static str,
}

/// Delivers a handover to one worker and wakes it; gives it back when that worker is gone.
pub type Mailbox = Box<dyn Fn(Handover) -> Result<(), Handover> + Send + Sync>;

#[derive(Default)]
pub struct Directory {
    owners: Mutex<HashMap<StreamId, usize>>,
    mailboxes: Mutex<Vec<Mailbox>>,
}

impl Directory {
    /// A worker joins; returns its index, which names it in [`Directory::insert`].
    pub fn join(&self, mailbox: Mailbox) -> usize {
        let mut mailboxes = lock(&self.mailboxes);
        mailboxes.push(mailbox);
        mailboxes.len() - 1
    }

    /// Worker `worker` runs stream `id`.
    pub fn insert(&self, id: StreamId, worker: usize) {
        lock(&self.owners).insert(id, worker);
    }

    /// Stream `id` is gone.
    pub fn remove(&self, id: &StreamId) {
        lock(&self.owners).remove(id);
    }

    /// The worker running stream `id`, if any does.
    pub fn owner(&self, id: &StreamId) -> Option<usize> {
        lock(&self.owners).get(id).copied()
    }

    /// Streams entered, over every worker.
    pub fn len(&self) -> usize {
        lock(&self.owners).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Passes `handover` to worker `worker`; gives it back when there is no such worker or it
    /// no longer listens.
    pub fn send(&self, worker: usize, handover: Handover) -> Result<(), Handover> {
        match lock(&self.mailboxes).get(worker) {
            Some(mailbox) => mailbox(handover),
            None => Err(handover),
        }
    }
}

impl fmt::Debug for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Directory")
            .field("streams", &self.len())
            .field("workers", &lock(&self.mailboxes).len())
            .finish()
    }
}

/// A panic elsewhere cannot leave a map half changed: each change is one call.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SocketType;
    use crate::sys::socket;
    use std::sync::mpsc;

    fn handover(seen: u64) -> Handover {
        let (client, _) = socket::unix_pair(SocketType::Stream).unwrap();
        Handover {
            client,
            conn: 7,
            accepted_at: Instant::now(),
            user_id: 42,
            stream: StreamId::from_bytes([1; 16]),
            seen,
            headers: None,
            backend: "mock",
        }
    }

    #[test]
    fn a_handover_reaches_the_worker_that_runs_the_stream() {
        let directory = Directory::default();
        let (first, _first_inbox) = mpsc::channel::<Handover>();
        let (second, second_inbox) = mpsc::channel::<Handover>();
        assert_eq!(
            directory.join(Box::new(move |h| first.send(h).map_err(|e| e.0))),
            0
        );
        assert_eq!(
            directory.join(Box::new(move |h| second.send(h).map_err(|e| e.0))),
            1
        );
        let id = StreamId::from_bytes([1; 16]);
        assert_eq!(directory.owner(&id), None);
        directory.insert(id, 1);
        assert_eq!(directory.owner(&id), Some(1));
        assert!(directory.send(1, handover(3)).is_ok());
        assert_eq!(second_inbox.try_recv().unwrap().seen, 3);
        directory.remove(&id);
        assert!(directory.is_empty());
    }

    #[test]
    fn a_worker_that_is_gone_gives_the_client_back() {
        let directory = Directory::default();
        let (sender, inbox) = mpsc::channel::<Handover>();
        directory.join(Box::new(move |h| sender.send(h).map_err(|e| e.0)));
        drop(inbox);
        assert_eq!(
            directory.send(0, handover(4)).map_err(|h| h.seen).err(),
            Some(4)
        );
        assert_eq!(
            directory.send(5, handover(5)).map_err(|h| h.seen).err(),
            Some(5)
        );
    }
}
