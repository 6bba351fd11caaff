//! Several reactors in one daemon (SPEC §6.5): one thread each, shared-nothing but for
//! [`Shared`](crate::stats::Shared). The first worker, the leader, is the daemon's face: it
//! handles the signals, serves the metrics (summed over every worker), reloads, upgrades, talks
//! to systemd and sweeps `data_dir`; it tells the others, the followers, what concerns them
//! through a channel and their waker.
//!
//! | the leader                              | tells each follower | the follower                      |
//! |-----------------------------------------|---------------------|-----------------------------------|
//! | begins the drain (signal, upgrade)      | `Drain`             | stops accepting; streams finish   |
//! | ends every connection (second signal)   | `EndAll`            | the same                          |
//! | applied a reload                        | `Reload`            | applies its own backends and settings |
//! | checks the watchdog                     | `Poke`              | turns its loop once               |
//!
//! Every worker registers the one handoff listener with `EPOLLEXCLUSIVE` and accepts from it;
//! a connection stays on the worker that accepted it. The leader's loop ends once every
//! worker's connections are done (their count is shared); a follower's ends once its own are,
//! and it wakes the leader to look.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use mio::Waker;

use super::reload::WorkerLoad;
use super::Reactor;

/// What the leader tells a follower.
pub enum Control {
    Drain,
    EndAll,
    Reload(Box<WorkerLoad>),
    /// Turn the loop: the watchdog pings only while every loop turns.
    Poke,
}

/// The leader's handle on one follower.
#[derive(Clone)]
pub struct Follower {
    control: Sender<Control>,
    waker: Arc<Waker>,
}

impl Follower {
    pub fn new(control: Sender<Control>, waker: Arc<Waker>) -> Follower {
        Follower { control, waker }
    }

    /// A follower that has exited no longer listens: nothing is lost, it has nothing to do.
    fn tell(&self, control: Control) {
        if self.control.send(control).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// Which part a reactor plays.
pub(super) enum Role {
    /// The only worker, or the first of several: `followers` are the others.
    Leading { followers: Vec<Follower> },
    Following {
        control: Receiver<Control>,
        /// Woken when this worker's loop ends, so that the leader sees the daemon is done.
        leader: Arc<Waker>,
    },
}

impl Default for Role {
    fn default() -> Role {
        Role::Leading {
            followers: Vec::new(),
        }
    }
}

/// The loop's turns, counted for the leader's watchdog check.
pub(super) struct Turns {
    own: Arc<AtomicU64>,
    /// Every worker's turns at the leader's last watchdog check.
    seen: Option<Vec<u64>>,
}

impl Turns {
    pub(super) fn new(own: Arc<AtomicU64>) -> Turns {
        Turns { own, seen: None }
    }

    pub(super) fn turned(&self) {
        self.own.fetch_add(1, Ordering::Relaxed);
    }
}

impl Reactor {
    /// Makes this reactor the leader of `followers`.
    pub fn lead(&mut self, followers: Vec<Follower>) {
        self.role = Role::Leading { followers };
    }

    /// Makes this reactor a follower: it takes its orders from `control` and wakes `leader`
    /// when its loop ends.
    pub fn follow(&mut self, control: Receiver<Control>, leader: Arc<Waker>) {
        self.role = Role::Following { control, leader };
    }

    pub(super) fn is_follower(&self) -> bool {
        matches!(self.role, Role::Following { .. })
    }

    /// Tells every follower (the leader only; nothing for the others).
    pub(super) fn tell_followers(&self, control: impl Fn() -> Control) {
        if let Role::Leading { followers } = &self.role {
            for follower in followers {
                follower.tell(control());
            }
        }
    }

    /// The leader's reload reached a follower: its load is handed over once per follower, in
    /// order.
    pub(super) fn send_reloads(&self, loads: Vec<WorkerLoad>) {
        if let Role::Leading { followers } = &self.role {
            for (follower, load) in followers.iter().zip(loads) {
                follower.tell(Control::Reload(Box::new(load)));
            }
        }
    }

    /// How many followers the leader has (the reload thread builds one load each).
    pub(super) fn follower_count(&self) -> usize {
        match &self.role {
            Role::Leading { followers } => followers.len(),
            Role::Following { .. } => 0,
        }
    }

    /// A follower's waker fired: carries out what the leader said.
    pub(super) fn take_control(&mut self, now: Instant) {
        loop {
            let Role::Following { control, .. } = &self.role else {
                return;
            };
            let order = match control.try_recv() {
                Ok(order) => order,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            };
            match order {
                Control::Drain => self.begin_drain(now),
                Control::EndAll => self.end_all(now),
                Control::Reload(load) => {
                    if let Err(message) = self.apply_worker_load(*load) {
                        log::error!(
                            error = message.as_str();
                            "a worker could not apply the reload; it keeps its running settings"
                        );
                    }
                }
                Control::Poke => {}
            }
        }
    }

    /// The loop is done: a follower tells the leader to look at the count it shares.
    pub(super) fn finished(&self) {
        if let Role::Following { leader, .. } = &self.role {
            let _ = leader.wake();
        }
    }

    /// The watchdog may ping when every worker's loop has turned since the last check (the
    /// first check: always). Followers are poked so that an idle loop turns before the next.
    pub(super) fn every_loop_turned(&mut self) -> bool {
        let now = self.tally.shared().turns();
        let turned = match &self.turns.seen {
            None => true,
            Some(seen) => seen.len() != now.len() || seen.iter().zip(&now).all(|(a, b)| b > a),
        };
        self.turns.seen = Some(now);
        self.tell_followers(|| Control::Poke);
        turned
    }
}
