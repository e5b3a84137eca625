// SPDX-License-Identifier: GPL-2.0

//! Network namespace identity, and the interface and address lookups done in one.

use kernel::{bindings, prelude::*, sync::rcu};

use crate::parse::{IfName, Ipv4};

/// The identity of a network namespace: an address compared as a key. Making one is safe;
/// the lookups that dereference it are `unsafe fn`s whose callers vouch that the namespace
/// is alive (inside a hook for it, in a task that lives in it, in its worker thread, or
/// under the configuration lock while it holds state, which its exit removes under that
/// lock).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetId(*const bindings::net);

// SAFETY: A `NetId` is an address used as a key; it is only dereferenced by the `unsafe fn`
// lookups below, whose contract does not depend on the thread.
unsafe impl Send for NetId {}
// SAFETY: As above; the type has no interior mutability.
unsafe impl Sync for NetId {}

impl NetId {
    /// The key under which per-namespace state is stored; never 0 for a real namespace.
    pub(crate) fn key(self) -> usize {
        self.0 as usize
    }

    /// The identity of the namespace `net` points to (compared, never dereferenced here).
    pub(crate) fn from_raw(net: *const bindings::net) -> NetId {
        NetId(net)
    }

    /// The namespace's address, for kernel calls that take one (only while it is known to be
    /// alive: see the contracts in `ffi.rs`).
    pub(crate) fn as_ptr(self) -> *mut bindings::net {
        self.0.cast_mut()
    }

    /// The inverse of [`NetId::key`].
    pub(crate) fn from_key(key: usize) -> NetId {
        NetId(key as *const bindings::net)
    }

    /// The namespace of the calling task (the writer or reader of a sysfs file).
    ///
    /// Found through `kobj_ns_grab_current()` rather than `current->nsproxy`: bindgen's layout
    /// of `task_struct` does not match the compiler's (measured), while `struct net` does.
    pub(crate) fn current() -> Result<NetId> {
        let ns_type = bindings::kobj_ns_type_KOBJ_NS_TYPE_NET;
        // SAFETY: No preconditions; returns a counted reference to the caller's namespace.
        let ns = unsafe { bindings::kobj_ns_grab_current(ns_type) };
        if ns.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: For the network type, `ns` is the `ns` member of a `struct net`.
        let net = unsafe { kernel::container_of!(ns, bindings::net, ns) };
        // SAFETY: Drops the reference taken above; the calling task keeps the namespace alive
        // for as long as the caller uses it (a sysfs callback).
        unsafe { bindings::kobj_ns_drop(ns_type, ns) };
        Ok(NetId(net))
    }

    /// Looks up an interface by name in this namespace; `None` if there is none.
    ///
    /// # Safety
    ///
    /// The namespace is alive for the duration of the call (see [`NetId`]).
    pub(crate) unsafe fn ifindex(self, name: &IfName) -> Option<i32> {
        let _rcu = rcu::read_lock();
        // SAFETY: The namespace is alive (the caller's contract), the RCU read lock is held,
        // and `name` is NUL-terminated (`IfName` keeps its last byte NUL).
        let dev =
            unsafe { bindings::dev_get_by_name_rcu(self.0.cast_mut(), name.0.as_ptr().cast()) };
        // SAFETY: `dev` is non-NULL and cannot be freed before the RCU read lock is dropped.
        (!dev.is_null()).then(|| unsafe { (*dev).ifindex })
    }

    /// Whether `addr` is an IPv4 address configured on an interface of this namespace (not a
    /// broadcast, multicast or foreign address). Takes no lock; safe in softirq.
    ///
    /// # Safety
    ///
    /// The namespace is alive for the duration of the call (see [`NetId`]).
    pub(crate) unsafe fn is_local_address(self, addr: Ipv4) -> bool {
        let _rcu = rcu::read_lock();
        // SAFETY: The namespace is alive (the caller's contract) and the RCU read lock is held, as
        // `devref = false` requires; the result is only compared with NULL.
        let dev = unsafe { bindings::__ip_dev_find(self.0.cast_mut(), addr.0, false) };
        !dev.is_null()
    }

    /// The source address to use on interface `ifindex` towards `dst`, if the interface exists,
    /// is up with carrier, and has an IPv4 address of its own. Per-datagram path: no allocation, no lock.
    ///
    /// # Safety
    ///
    /// The namespace is alive for the duration of the call (see [`NetId`]).
    pub(crate) unsafe fn usable_source(self, ifindex: i32, dst: Ipv4) -> Option<Ipv4> {
        let _rcu = rcu::read_lock();
        // SAFETY: The namespace is alive (the caller's contract) and the RCU read lock is held.
        let dev = unsafe { bindings::dev_get_by_index_rcu(self.0.cast_mut(), ifindex) };
        if dev.is_null() {
            return None;
        }
        let needed = bindings::net_device_flags_IFF_UP | bindings::net_device_flags_IFF_RUNNING;
        // SAFETY: `dev` is valid until the RCU read lock is dropped; `netif_get_flags` only reads.
        if unsafe { bindings::netif_get_flags(dev) } & needed != needed {
            return None;
        }
        // SAFETY: As above; `inet_select_addr` takes its own RCU read lock and does not sleep.
        let src = unsafe {
            bindings::inet_select_addr(dev, dst.0, bindings::rt_scope_t_RT_SCOPE_UNIVERSE as c_int)
        };
        if src == 0 {
            return None;
        }
        // `inet_select_addr` falls back to other interfaces' addresses; only the interface's
        // own address keeps the datagram on this path.
        // SAFETY: The namespace is alive and the RCU read lock is held, as `devref = false`
        // requires.
        let owner = unsafe { bindings::__ip_dev_find(self.0.cast_mut(), src, false) };
        (owner == dev).then_some(Ipv4(src))
    }
}
