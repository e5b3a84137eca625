// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace state, allocated on a namespace's first configuration write and
//! found from the namespace itself (`net_generic`): no table, no scan, no limit on how many
//! namespaces use MPUDP.
//!
//! Configuration belongs to the namespace whose task wrote it (interface names only mean
//! something inside one namespace). A namespace that never wrote costs one zeroed machine
//! word; one that did owns its state until it exits, or the module unloads.
//!
//! Lifetime: the state is published in the namespace's slot (Release) only once fully set
//! up, and read from it (Acquire) under RCU. At exit the slot is cleared first (pre-exit),
//! and the state is torn down and freed only after the kernel's grace period between the two
//! exit steps, once the namespace's interfaces are gone; until then the configuration lock's
//! registry of states still lets the netdevice notifier reach it.

use core::cell::UnsafeCell;
use core::pin::Pin;

use kernel::alloc::{KVBox, KVec};
use kernel::prelude::*;
use kernel::sync::atomic::{Acquire, Atomic, Relaxed, Release};

use crate::ffi::{ConfigGuard, NetId, PernetOps, PernetRegistration};
use crate::parse::Invalid;

/// State kept for one namespace.
pub(crate) trait NsState: Send + Sync + Sized {
    /// A state before [`NsState::set_up`].
    const FRESH: Self;

    /// Sets up, in place, the locks and timers the state holds, and publishes its first
    /// configuration, with the module's defaults (module parameters) and what each namespace
    /// chooses anew (its session token). Process context.
    ///
    /// # Safety
    ///
    /// Called once, before the state is reachable by anyone else; the state never moves
    /// afterwards, and [`NsState::tear_down`] runs before it is freed, also when this fails.
    unsafe fn set_up(&self) -> Result;

    /// First exit step of namespace `net`, while hooks may still reach the state and the
    /// namespace is still whole (its interfaces up): stop what sends in it, or send what
    /// must go before it does. Process context, configuration lock held.
    fn quiesce(&self, _net: NetId) {}

    /// Last exit step: no hook or timer reaches the state any more once this returns, and
    /// what it holds is let go of. Process context.
    fn tear_down(&self);
}

/// Every namespace's state of one module: its pernet slot, and the registry that owns the
/// states.
pub(crate) struct NetnsStates<S: NsState> {
    pernet: PernetOps,
    /// The states, with the namespace each belongs to; touched only with the configuration
    /// lock held ([`ConfigGuard`]).
    registry: UnsafeCell<KVec<(NetId, Pin<KVBox<S>>)>>,
    /// What a namespace without state reads.
    defaults: S,
}

// SAFETY: `registry` is only reached through methods that take the configuration lock's guard;
// the states themselves are `Sync`.
unsafe impl<S: NsState> Sync for NetnsStates<S> {}

impl<S: NsState> NetnsStates<S> {
    /// No state yet; [`NetnsStates::register`] makes the slots.
    pub(crate) const fn new() -> Self {
        Self {
            pernet: PernetOps::new(),
            registry: UnsafeCell::new(KVec::new()),
            defaults: S::FRESH,
        }
    }

    /// Gives every namespace a slot, and sets up the state shown to namespaces without one.
    /// Module init, before any hook, file or notifier can look a state up. `E` calls
    /// [`NetnsStates::pre_exit`] and [`NetnsStates::exit`].
    pub(crate) fn register<E: crate::ffi::NetExit>(&'static self) -> Result<NetnsRegistration<S>> {
        let defaults = Defaults(&self.defaults);
        // SAFETY: Once (the module's init), before sysfs can read it; a static never moves,
        // and `Defaults` tears it down at unload, also if this fails.
        unsafe { self.defaults.set_up() }?;
        Ok(NetnsRegistration {
            _pernet: self.pernet.register::<E>()?,
            _defaults: defaults,
        })
    }

    /// The state of `net`, if it has any. Lock-free: the datagram path uses this.
    ///
    /// # Safety
    ///
    /// The module's registration is alive and the namespace is alive, for `'a`, and the
    /// caller is inside an RCU read-side critical section for `'a`, or is a task of the
    /// namespace (a state is freed only after its namespace's exit and a grace period).
    pub(crate) unsafe fn find<'a>(&self, net: NetId) -> Option<&'a S> {
        // SAFETY: The caller's contract.
        let slot = unsafe { self.pernet.slot(net) }?;
        let state = slot.load(Acquire) as *const S;
        // SAFETY: A non-zero slot points to a state that `claim` set up before publishing it
        // (Release, paired with the Acquire above) and that is freed only after the slot is
        // cleared and a grace period has passed, or the namespace has exited (the caller's
        // contract rules out both for `'a`).
        unsafe { state.as_ref() }
    }

    /// The state of `net` for sysfs: its own, or the defaults.
    ///
    /// # Safety
    ///
    /// As [`NetnsStates::find`]; a sysfs callback of a task in `net` qualifies (the files go
    /// before the registration does).
    pub(crate) unsafe fn view<'a>(&'a self, net: NetId) -> &'a S {
        // SAFETY: The caller's contract.
        unsafe { self.find(net) }.unwrap_or(&self.defaults)
    }

    /// The state of `net`, allocated and set up on its first configuration write (`ENOMEM`
    /// when memory is short).
    ///
    /// # Safety
    ///
    /// As [`NetnsStates::find`] (the writer is a task of `net`).
    pub(crate) unsafe fn claim<'a>(&'a self, net: NetId, config: &'a ConfigGuard) -> Result<&'a S> {
        // SAFETY: The caller's contract.
        let slot = unsafe { self.pernet.slot(net) }.ok_or(ENODEV)?;
        // SAFETY: As above; the configuration lock serialises claims, so none can publish
        // between this look-up and the store below.
        if let Some(state) = unsafe { self.find(net) } {
            return Ok(state);
        }
        // SAFETY: Only `for_each` and `pre_exit` hold shared references to the registry, and
        // neither is running (their callers never write configuration, nor exit a namespace).
        let registry = unsafe { self.registry_mut(config) };
        // Room first, so that the state, once set up, can always be handed to the registry.
        registry.reserve(1, GFP_KERNEL)?;
        // Built in place: the receiver's state (its reorder buffer) is far larger than a
        // kernel stack, so it must never exist as a temporary.
        let mut uninit = KVBox::<S>::new_uninit(GFP_KERNEL)?;
        // SAFETY: `as_mut_ptr` is valid for a write of one `S`; a constant written through a
        // pointer is copied straight into place.
        unsafe { uninit.as_mut_ptr().write(S::FRESH) };
        // SAFETY: Initialised by the write above.
        let state = KVBox::into_pin(unsafe { uninit.assume_init() });
        // SAFETY: Once, before anyone else can reach it (it is published below); pinned in its
        // allocation, which the registry owns until `exit` tears it down and frees it.
        if let Err(e) = unsafe { state.set_up() } {
            // Never published: torn down and freed here.
            state.tear_down();
            return Err(e);
        }
        let published: *const S = &*state;
        if registry.push_within_capacity((net, state)).is_err() {
            // Not reached: room was reserved above.
            return Err(ENOMEM);
        }
        slot.store(published as usize, Release);
        // SAFETY: Just published; owned by the registry until `exit`, which the caller's
        // contract puts after `'a`.
        Ok(unsafe { &*published })
    }

    /// Calls `f` with every namespace that holds state, and its state (including a namespace
    /// between its two exit steps, whose interfaces are still going away).
    pub(crate) fn for_each(&self, config: &ConfigGuard, mut f: impl FnMut(NetId, &S)) {
        for (net, state) in self.registry(config).iter() {
            f(*net, state);
        }
    }

    /// First exit step of `net`: hooks can no longer find its state (after the grace period
    /// that the kernel lets pass before [`NetnsStates::exit`]).
    pub(crate) fn pre_exit(&self, net: NetId, config: &ConfigGuard) {
        let Some(state) = self.registry(config).iter().find(|(n, _)| *n == net) else {
            return;
        };
        state.1.quiesce(net);
        // SAFETY: The namespace is alive until its exit steps are done, and the registration
        // is alive while the kernel runs them.
        if let Some(slot) = unsafe { self.pernet.slot(net) } {
            slot.store(0, Relaxed);
        }
    }

    /// Last exit step of `net`: its state is torn down and freed.
    pub(crate) fn exit(&self, net: NetId, config: &ConfigGuard) {
        // SAFETY: As in `claim`.
        let registry = unsafe { self.registry_mut(config) };
        let Some(i) = registry.iter().position(|(n, _)| *n == net) else {
            return;
        };
        if let Ok((_, state)) = registry.remove(i) {
            state.tear_down();
            drop(state);
        }
        if registry.is_empty() {
            // The last state is gone (module unload ends here): its memory too.
            *registry = KVec::new();
        }
    }

    /// The registry, for reading.
    fn registry<'a>(&'a self, _config: &'a ConfigGuard) -> &'a KVec<(NetId, Pin<KVBox<S>>)> {
        // SAFETY: The configuration lock is held for `'a` (the guard), so no other CPU writes
        // the registry; this CPU writes it only through `registry_mut`, whose callers ensure
        // that no reference from here is live then.
        unsafe { &*self.registry.get() }
    }

    /// The registry, for changing.
    ///
    /// # Safety
    ///
    /// No other reference to the registry (from [`NetnsStates::registry`] or this) is live
    /// while the returned one is: the callers are `claim` and `exit`, which never run inside
    /// `for_each` or `pre_exit`.
    #[expect(
        clippy::mut_from_ref,
        reason = "the configuration lock's guard and the caller's contract make it exclusive"
    )]
    unsafe fn registry_mut<'a>(
        &'a self,
        _config: &'a ConfigGuard,
    ) -> &'a mut KVec<(NetId, Pin<KVBox<S>>)> {
        // SAFETY: The configuration lock is held for `'a` (the guard), and the caller's
        // contract rules out other references on this CPU.
        unsafe { &mut *self.registry.get() }
    }
}

/// The namespace states' registration: dropping it (module unload, once the hooks, files and
/// notifier are gone) runs both exit steps for every namespace, so frees every state, then
/// tears down the defaults.
pub(crate) struct NetnsRegistration<S: NsState + 'static> {
    _pernet: PernetRegistration,
    _defaults: Defaults<S>,
}

/// The state shown to namespaces without one; torn down when dropped.
struct Defaults<S: NsState + 'static>(&'static S);

impl<S: NsState> Drop for Defaults<S> {
    fn drop(&mut self) {
        self.0.tear_down();
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

    /// What the top-level counter file `name` of the first two paths shows, `name` without
    /// its direction's `tx_` or `rx_`: `primary_datagrams`, `primary_bytes`,
    /// `secondary_datagrams`, `secondary_bytes` (every path's are in `paths/*/`); `None` for
    /// another name.
    pub(crate) fn file_value(paths: &[Self], name: &[u8]) -> Option<u64> {
        let (path, counter) = name.split_at(name.iter().position(|&b| b == b'_')?);
        let path = paths.get(match path {
            b"primary" => 0,
            b"secondary" => 1,
            _ => return None,
        })?;
        match counter {
            b"_datagrams" => Some(path.datagrams.load(Relaxed)),
            b"_bytes" => Some(path.bytes.load(Relaxed)),
            _ => None,
        }
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
