// SPDX-License-Identifier: GPL-2.0

//! The raw kernel interfaces MPUDP uses, one file per kernel subsystem under `common/ffi/`,
//! each wrapped in safe functions and types; this file only gathers them.
//!
//! With `udp_hooks.rs` (the patch's hooks), these are the only files of each MPUDP module that
//! touch `kernel::bindings`. Their shared contracts:
//! - A [`NetId`] is compared, never dereferenced, except by the lookups in `net.rs` while the
//!   namespace is known to be alive (inside a hook for that namespace, in the task that
//!   lives in it, or in a timer of the namespace's that its exit cancels first).
//! - Sysfs callbacks run in process context; removing a group waits for running callbacks.
//! - Timers fire in softirq context; a namespace's timers are cancelled (and waited for)
//!   before the namespace's state is released, so they may do the lookups above.

#![allow(
    unused_imports,
    reason = "each module uses a subset of these re-exports"
)]

#[path = "ffi/clock.rs"]
mod clock;
#[path = "ffi/config_lock.rs"]
mod config_lock;
#[path = "ffi/hrtimer.rs"]
mod hrtimer;
#[path = "ffi/net.rs"]
mod net;
#[path = "ffi/netdev.rs"]
mod netdev;
#[path = "ffi/pernet.rs"]
mod pernet;
#[path = "ffi/random.rs"]
mod random;
#[path = "ffi/rcu.rs"]
mod rcu;
#[path = "ffi/spinlock.rs"]
mod spinlock;
#[path = "ffi/sysfs.rs"]
mod sysfs;

pub(crate) use clock::*;
pub(crate) use config_lock::*;
pub(crate) use hrtimer::*;
pub(crate) use net::*;
pub(crate) use netdev::*;
pub(crate) use pernet::*;
pub(crate) use random::*;
pub(crate) use rcu::*;
pub(crate) use spinlock::*;
pub(crate) use sysfs::*;
