// SPDX-License-Identifier: GPL-2.0

//! Per-namespace operations: being told when a network namespace goes away.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::{bindings, error::to_result, prelude::*};

use super::NetId;

/// Tells a module that a network namespace is going away, so that it forgets its state.
pub(crate) trait NetExit {
    /// Called once per namespace, after its last socket is gone; may sleep.
    fn net_exit(net: NetId);
}

/// A static `pernet_operations` for one module.
pub(crate) struct PernetOps {
    raw: UnsafeCell<bindings::pernet_operations>,
    /// Set by the first `register`; a second one (which would rewrite what the kernel
    /// reads) fails with `EBUSY`. Statics are fresh at every module load.
    claimed: AtomicBool,
}

// SAFETY: Written only by `register` before the kernel sees it; afterwards only the kernel's
// pernet code touches it, under its own lock.
unsafe impl Sync for PernetOps {}

impl PernetOps {
    /// Unregistered operations.
    pub(crate) const fn new() -> Self {
        Self {
            // SAFETY: All-zero is a valid, empty `pernet_operations`.
            raw: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            claimed: AtomicBool::new(false),
        }
    }

    /// Calls `E::net_exit` for every namespace that exits from now on, and for every namespace
    /// when the registration is dropped.
    pub(crate) fn register<E: NetExit>(&'static self) -> Result<PernetRegistration> {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        // SAFETY: Only the one call that claimed it gets here, before the kernel can see it,
        // so nothing reads or writes it concurrently.
        unsafe { (*self.raw.get()).exit = Some(net_exit_trampoline::<E>) };
        // SAFETY: The operations are 'static and initialised.
        to_result(unsafe { bindings::register_pernet_subsys(self.raw.get()) })?;
        Ok(PernetRegistration(self.raw.get()))
    }
}

/// Registered pernet operations; dropping unregisters them.
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

/// The `exit` callback of the module's pernet operations.
///
/// # Safety
///
/// `net` is a namespace being dismantled (called by the kernel's pernet code).
unsafe extern "C" fn net_exit_trampoline<E: NetExit>(net: *mut bindings::net) {
    E::net_exit(NetId::from_raw(net));
}
