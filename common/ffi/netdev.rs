// SPDX-License-Identifier: GPL-2.0

//! The netdevice notifier: being told when interfaces appear, vanish or are renamed.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::{bindings, error::to_result, prelude::*};

/// Tells a module that the set or the names of network interfaces changed somewhere.
pub(crate) trait InterfacesChanged {
    /// Called after an interface appeared, disappeared or was renamed (default: nothing); may
    /// sleep. RTNL is held, so the implementation may take the configuration lock but nothing
    /// that waits for RTNL.
    fn interfaces_changed() {}

    /// Called when an interface is about to go away (its notifier's `NETDEV_UNREGISTER`),
    /// before `interfaces_changed`: a module that holds its packets lets go of them here.
    /// Same context as `interfaces_changed`.
    fn interface_unregistering() {}
}

/// A static netdevice notifier for one module.
pub(crate) struct NetdevNotifier {
    raw: UnsafeCell<bindings::notifier_block>,
    /// Set by the first `register`; a second one (which would rewrite what the kernel
    /// reads) fails with `EBUSY`. Statics are fresh at every module load.
    claimed: AtomicBool,
}

// SAFETY: Written only by `register` before the kernel sees it; afterwards only the kernel's
// notifier chain touches it, under RTNL.
unsafe impl Sync for NetdevNotifier {}

impl NetdevNotifier {
    /// An unregistered notifier.
    pub(crate) const fn new() -> Self {
        Self {
            // SAFETY: All-zero is a valid, empty `notifier_block`.
            raw: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            claimed: AtomicBool::new(false),
        }
    }

    /// Calls `C::interfaces_changed` on every interface registration, unregistration and
    /// rename, starting with one call per existing interface.
    pub(crate) fn register<C: InterfacesChanged>(&'static self) -> Result<NetdevRegistration> {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        // SAFETY: Only the one call that claimed it gets here, before the kernel can see it,
        // so nothing reads or writes it concurrently.
        unsafe { (*self.raw.get()).notifier_call = Some(netdev_event_trampoline::<C>) };
        // SAFETY: The notifier block is 'static and initialised.
        to_result(unsafe { bindings::register_netdevice_notifier(self.raw.get()) })?;
        Ok(NetdevRegistration(self.raw.get()))
    }
}

/// A registered netdevice notifier; dropping unregisters it.
pub(crate) struct NetdevRegistration(*mut bindings::notifier_block);

// SAFETY: Points to a 'static `NetdevNotifier`.
unsafe impl Send for NetdevRegistration {}
// SAFETY: As above.
unsafe impl Sync for NetdevRegistration {}

impl Drop for NetdevRegistration {
    fn drop(&mut self) {
        // SAFETY: Registered by `NetdevNotifier::register`; waits for running callbacks (RTNL).
        unsafe { bindings::unregister_netdevice_notifier(self.0) };
    }
}

/// The notifier callback; only the event type is used, never the device.
///
/// # Safety
///
/// Called by the netdevice notifier chain, under RTNL, in process context.
unsafe extern "C" fn netdev_event_trampoline<C: InterfacesChanged>(
    _nb: *mut bindings::notifier_block,
    event: c_ulong,
    _info: *mut c_void,
) -> c_int {
    let relevant = [
        bindings::netdev_cmd_NETDEV_REGISTER,
        bindings::netdev_cmd_NETDEV_UNREGISTER,
        bindings::netdev_cmd_NETDEV_CHANGENAME,
    ];
    if c_ulong::try_from(bindings::netdev_cmd_NETDEV_UNREGISTER) == Ok(event) {
        C::interface_unregistering();
    }
    if relevant
        .iter()
        .any(|&cmd| c_ulong::try_from(cmd) == Ok(event))
    {
        C::interfaces_changed();
    }
    bindings::NOTIFY_DONE as c_int
}
