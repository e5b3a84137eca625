// SPDX-License-Identifier: GPL-2.0

//! Per-namespace operations: one pointer-sized slot in every network namespace
//! (`net_generic`), and being told when a namespace goes away.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::{bindings, error::to_result, prelude::*, sync::atomic::Atomic, sync::rcu};

use super::NetId;

/// Tells a module that a network namespace is going away, in two steps with an RCU grace
/// period between them. Both run in process context and may sleep; neither holds RTNL.
pub(crate) trait NetExit {
    /// First step, while hooks may still be running for the namespace: the module makes its
    /// state unreachable from them.
    fn net_pre_exit(net: NetId);
    /// Second step, after the grace period (no hook still sees the state) and after the
    /// namespace's interfaces are unregistered: the module frees its state.
    fn net_exit(net: NetId);
}

/// A static `pernet_operations` for one module, with a slot of one machine word in every
/// namespace.
pub(crate) struct PernetOps {
    raw: UnsafeCell<bindings::pernet_operations>,
    /// The `net_generic` index the kernel assigns at registration.
    id: UnsafeCell<c_uint>,
    /// Set by the first `register`; a second one (which would rewrite what the kernel
    /// reads) fails with `EBUSY`. Statics are fresh at every module load.
    claimed: AtomicBool,
}

// SAFETY: `raw` is written only by `register` before the kernel sees it, `id` only by the
// kernel inside `register_pernet_subsys`; afterwards both are only read.
unsafe impl Sync for PernetOps {}

impl PernetOps {
    /// Unregistered operations.
    pub(crate) const fn new() -> Self {
        Self {
            // SAFETY: All-zero is a valid, empty `pernet_operations`.
            raw: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            id: UnsafeCell::new(0),
            claimed: AtomicBool::new(false),
        }
    }

    /// Gives every namespace, present and future, a zeroed slot ([`PernetOps::slot`]), and
    /// calls `E`'s steps for every namespace that exits from now on, and for every namespace
    /// when the registration is dropped.
    pub(crate) fn register<E: NetExit>(&'static self) -> Result<PernetRegistration> {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        // SAFETY: Only the one call that claimed it gets here, before the kernel can see it,
        // so nothing reads or writes it concurrently.
        unsafe {
            let raw = &mut *self.raw.get();
            raw.id = self.id.get();
            raw.size = core::mem::size_of::<usize>();
            raw.pre_exit = Some(net_pre_exit_trampoline::<E>);
            raw.exit = Some(net_exit_trampoline::<E>);
        }
        // SAFETY: The operations are 'static and initialised.
        to_result(unsafe { bindings::register_pernet_subsys(self.raw.get()) })?;
        Ok(PernetRegistration(self.raw.get()))
    }

    /// The slot of namespace `net`: zero until the module stores in it, for as long as the
    /// namespace lives. Takes no lock but RCU's; safe in softirq.
    ///
    /// # Safety
    ///
    /// The operations are registered (the [`PernetRegistration`] is alive) and the namespace
    /// is alive, both for `'a`.
    pub(crate) unsafe fn slot<'a>(&self, net: NetId) -> Option<&'a Atomic<usize>> {
        // SAFETY: Written by the kernel during `register`, which happened before (the caller's
        // contract), and never again.
        let id = unsafe { *self.id.get() } as usize;
        let _rcu = rcu::read_lock();
        // `net_generic()` is a static inline: `rcu_dereference(net->gen)->ptr[id]`.
        // SAFETY: The namespace is alive (the caller's contract); `gen` is replaced only under
        // RCU, whose read lock is held, and the array it points to holds at least `id + 1`
        // pointers once the operations are registered.
        let data = unsafe {
            let generic = core::ptr::read_volatile(&raw const (*net.as_ptr()).gen_);
            // `ptr` is a flexible array at the start of the union that is the whole (here opaque)
            // struct.
            *generic.cast::<*mut c_void>().add(id)
        };
        // SAFETY: `data` is the kernel's zeroed, word-aligned allocation of `size` bytes for
        // this namespace, freed only after the namespace's exit steps, or when the operations
        // are unregistered (neither before `'a`: the caller's contract). The module accesses it
        // only atomically.
        (!data.is_null()).then(|| unsafe { Atomic::from_ptr(data.cast::<usize>()) })
    }
}

/// Registered pernet operations; dropping unregisters them, which runs both exit steps for
/// every namespace.
pub(crate) struct PernetRegistration(*mut bindings::pernet_operations);

// SAFETY: Points to a 'static `PernetOps`.
unsafe impl Send for PernetRegistration {}
// SAFETY: As above.
unsafe impl Sync for PernetRegistration {}

impl Drop for PernetRegistration {
    fn drop(&mut self) {
        // SAFETY: Registered by `PernetOps::register`.
        unsafe { bindings::unregister_pernet_subsys(self.0) };
    }
}

/// The `pre_exit` callback of the module's pernet operations.
///
/// # Safety
///
/// `net` is a namespace being dismantled (called by the kernel's pernet code).
unsafe extern "C" fn net_pre_exit_trampoline<E: NetExit>(net: *mut bindings::net) {
    E::net_pre_exit(NetId::from_raw(net));
}

/// The `exit` callback of the module's pernet operations.
///
/// # Safety
///
/// `net` is a namespace being dismantled (called by the kernel's pernet code).
unsafe extern "C" fn net_exit_trampoline<E: NetExit>(net: *mut bindings::net) {
    E::net_exit(NetId::from_raw(net));
}
