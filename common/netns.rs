// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace state: a fixed table searched without locks on the datagram path.
//!
//! Configuration belongs to the namespace whose task wrote it (interface names only mean
//! something inside one namespace). A namespace gets a slot on its first configuration write
//! and loses it when the namespace exits.

use kernel::prelude::*;
use kernel::sync::atomic::{Acquire, Atomic, Relaxed, Release};

use crate::ffi::NetId;
use crate::parse::Invalid;

/// How many namespaces can hold MPUDP configuration at once.
pub(crate) const MAX_NAMESPACES: usize = 16;

/// State kept for one namespace; all of it is atomics so the hooks read it without locks.
pub(crate) trait NsState {
    /// The state of a namespace that never configured anything.
    const FRESH: Self;
    /// Returns to [`NsState::FRESH`] (with the module's current defaults).
    fn reset(&self);
}

/// A slot's owner while its namespace's state waits out a grace period (no namespace lives at
/// this address).
const RELEASING: usize = usize::MAX;

struct Slot<S> {
    /// [`NetId::key`] of the owning namespace; 0 when the slot is free, [`RELEASING`] between
    /// its namespace's exit and the end of the following grace period.
    owner: Atomic<usize>,
    state: S,
}

/// The table of per-namespace state.
pub(crate) struct NetnsTable<S: NsState> {
    slots: [Slot<S>; MAX_NAMESPACES],
    /// The state shown to a namespace that has no slot.
    fresh: S,
}

impl<S: NsState> NetnsTable<S> {
    /// An empty table.
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const {
                Slot {
                    owner: Atomic::new(0),
                    state: S::FRESH,
                }
            }; MAX_NAMESPACES],
            fresh: S::FRESH,
        }
    }

    /// The state of `net`, if it has any. Lock-free; the datagram path uses this.
    pub(crate) fn find(&self, net: NetId) -> Option<&S> {
        let key = net.key();
        if key == 0 {
            // 0 marks a free slot; no namespace has it.
            return None;
        }
        self.slots
            .iter()
            .find(|slot| slot.owner.load(Acquire) == key)
            .map(|slot| &slot.state)
    }

    /// The state of `net` for reading by sysfs: its own, or the defaults.
    pub(crate) fn view(&self, net: NetId) -> &S {
        self.find(net).unwrap_or(&self.fresh)
    }

    /// Takes the module's defaults (module parameters) into the state shown to namespaces
    /// without configuration; call once in module init, before any sysfs file exists.
    pub(crate) fn init_defaults(&self) {
        self.fresh.reset();
    }

    /// The state of `net`, claiming a slot if it has none (`ENOSPC` when all are taken).
    /// The caller holds the configuration lock, so two writers never claim for one namespace.
    pub(crate) fn claim(&self, net: NetId) -> Result<&S> {
        if net.key() == 0 {
            return Err(EINVAL);
        }
        if let Some(state) = self.find(net) {
            return Ok(state);
        }
        let slot = self
            .slots
            .iter()
            .find(|slot| slot.owner.load(Relaxed) == 0)
            .ok_or(ENOSPC)?;
        slot.state.reset();
        // Publish the owner after the reset, so that a hook that finds it sees fresh state.
        slot.owner.store(net.key(), Release);
        Ok(&slot.state)
    }

    /// Calls `f` with every namespace that holds state, and its state.
    pub(crate) fn for_each(&self, mut f: impl FnMut(NetId, &S)) {
        for slot in &self.slots {
            let key = slot.owner.load(Acquire);
            if key != 0 && key != RELEASING {
                f(NetId::from_key(key), &slot.state);
            }
        }
    }

    /// Calls `f` with every state in the table, claimed or not, and the defaults' (module
    /// init and unload: setting up and tearing down what each state holds).
    pub(crate) fn for_every_state(&'static self, mut f: impl FnMut(&'static S)) {
        for slot in &self.slots {
            f(&slot.state);
        }
        f(&self.fresh);
    }

    /// Forgets `net` (it is exiting). The slot can be claimed again only after a grace
    /// period, so that a hook still reading the old state (hooks run under RCU) never sees
    /// it reset for another namespace; `teardown` runs on the state after that grace period,
    /// when no hook can reach it any more. Process context; the caller holds the
    /// configuration lock, so releases and claims never interleave.
    pub(crate) fn release(&self, net: NetId, mut teardown: impl FnMut(&S)) {
        let key = net.key();
        let mut released = false;
        for slot in &self.slots {
            if slot.owner.load(Relaxed) == key {
                slot.owner.store(RELEASING, Release);
                released = true;
            }
        }
        if released {
            kernel::sync::rcu::synchronize_rcu();
            for slot in &self.slots {
                if slot.owner.load(Relaxed) == RELEASING {
                    teardown(&slot.state);
                    slot.owner.store(0, Release);
                }
            }
        }
    }
}

/// Datagram and byte counters of one path, in one direction. They only grow.
pub(crate) struct PathCounters {
    pub(crate) datagrams: Atomic<u64>,
    pub(crate) bytes: Atomic<u64>,
}

impl PathCounters {
    /// Zeroed counters.
    pub(crate) const fn new() -> Self {
        Self {
            datagrams: Atomic::new(0),
            bytes: Atomic::new(0),
        }
    }

    /// Counts one datagram of `len` payload bytes.
    pub(crate) fn count(&self, len: usize) {
        self.datagrams.add(1u64, Relaxed);
        self.bytes.add(len as u64, Relaxed);
    }

    /// Zeroes the counters (only when a namespace's slot is recycled).
    pub(crate) fn reset(&self) {
        self.datagrams.store(0, Relaxed);
        self.bytes.store(0, Relaxed);
    }
}

/// Lets through at most a burst of log lines per interval, so that a flood of bad writes
/// cannot flood the kernel log.
pub(crate) struct LogLimit {
    window_start_ns: Atomic<u64>,
    in_window: Atomic<u32>,
}

impl LogLimit {
    const BURST: u32 = 10;
    const INTERVAL_NS: u64 = 5_000_000_000;

    /// A limiter with nothing logged yet.
    pub(crate) const fn new() -> Self {
        Self {
            window_start_ns: Atomic::new(0),
            in_window: Atomic::new(0),
        }
    }

    /// Logs (within the limit) why a write of `input` to file `path` was rejected, and returns
    /// the errno for it.
    pub(crate) fn reject(&self, path: &str, input: &[u8], why: Invalid) -> Error {
        if self.allow() {
            pr_warn!(
                "{}: rejected write of {} bytes: {}; value kept\n",
                path,
                input.len(),
                why.reason()
            );
        }
        EINVAL
    }

    /// Whether one more line may be logged now.
    pub(crate) fn allow(&self) -> bool {
        let now = crate::ffi::now_ns();
        let start = self.window_start_ns.load(Relaxed);
        if now.wrapping_sub(start) > Self::INTERVAL_NS {
            self.window_start_ns.store(now, Relaxed);
            self.in_window.store(0, Relaxed);
        }
        self.in_window.fetch_add(1u32, Relaxed) < Self::BURST
    }
}
