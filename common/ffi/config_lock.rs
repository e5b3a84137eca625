// SPDX-License-Identifier: GPL-2.0

//! The lock that serialises configuration writes.

use kernel::prelude::*;

kernel::sync::global_lock! {
    // SAFETY: `init_config_lock` runs in module init, before any sysfs file exists.
    pub(crate) unsafe(uninit) static CONFIG_LOCK: Mutex<()> = ();
}

/// Prepares [`config_lock`]; call once in module init, before registering sysfs files.
pub(crate) fn init_config_lock() {
    // SAFETY: Called once, from module init, before any user of the lock exists.
    unsafe { CONFIG_LOCK.init() };
}

/// Serialises configuration writes (process context only; never taken on the datagram path).
pub(crate) fn config_lock() -> kernel::sync::lock::GlobalGuard<CONFIG_LOCK> {
    CONFIG_LOCK.lock()
}

/// The held configuration lock; functions that change shared registrations take it as proof.
pub(crate) type ConfigGuard = kernel::sync::lock::GlobalGuard<CONFIG_LOCK>;
