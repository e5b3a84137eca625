// SPDX-License-Identifier: GPL-2.0

//! The raw kernel interfaces MPUDP uses, each wrapped in a safe function or type.
//!
//! This is the only file of each MPUDP module that touches `kernel::bindings`. Its contracts:
//! - The UDP hooks (from `udp-hook.patch`) are called under `rcu_read_lock()` with valid,
//!   non-NULL pointers that live for the duration of the call; unregistering waits for every
//!   running call to return.
//! - A [`NetId`] is compared, never dereferenced, except by the lookups here while the
//!   namespace is known to be alive (inside a hook for that namespace, in the task that
//!   lives in it, or in the namespace's worker thread).
//! - Sysfs callbacks run in process context; removing a group waits for running callbacks.
//! - Worker threads run in process context; a namespace's worker is stopped (and waited for)
//!   before the namespace exits, so a worker may do the lookups above for its namespace.

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use kernel::{bindings, error::to_result, prelude::*, sync::rcu};

use crate::parse::{IfName, Ipv4};

/// The identity of a network namespace.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetId(*const bindings::net);

// SAFETY: A `NetId` is an address used as a key; it is only dereferenced under the contract in
// the file comment, which does not depend on the thread.
unsafe impl Send for NetId {}
// SAFETY: As above; the type has no interior mutability.
unsafe impl Sync for NetId {}

impl NetId {
    /// The key under which per-namespace state is stored; never 0 for a real namespace.
    pub(crate) fn key(self) -> usize {
        self.0 as usize
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
    pub(crate) fn ifindex(self, name: &IfName) -> Option<i32> {
        let _rcu = rcu::read_lock();
        // SAFETY: The namespace is alive (file contract), the RCU read lock is held, and `name`
        // is NUL-terminated (`IfName` keeps its last byte NUL).
        let dev =
            unsafe { bindings::dev_get_by_name_rcu(self.0.cast_mut(), name.0.as_ptr().cast()) };
        // SAFETY: `dev` is non-NULL and cannot be freed before the RCU read lock is dropped.
        (!dev.is_null()).then(|| unsafe { (*dev).ifindex })
    }

    /// The source address to use on interface `ifindex` towards `dst`, if the interface exists,
    /// is up with carrier, and has an IPv4 address of its own. Per-datagram path: no allocation, no lock.
    pub(crate) fn usable_source(self, ifindex: i32, dst: Ipv4) -> Option<Ipv4> {
        let _rcu = rcu::read_lock();
        // SAFETY: The namespace is alive (file contract) and the RCU read lock is held.
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

/// Monotonic time in nanoseconds, safe in any context.
pub(crate) fn now_ns() -> u64 {
    // SAFETY: `ktime_get_mono_fast_ns` has no preconditions and is NMI-safe.
    unsafe { bindings::ktime_get_mono_fast_ns() }
}

/// One outgoing datagram, as the send hook sees it; the hook may change the `&mut` fields.
pub(crate) struct Outgoing<'a> {
    pub(crate) net: NetId,
    pub(crate) daddr: &'a mut u32,
    pub(crate) dport: u16,
    pub(crate) saddr: &'a mut u32,
    pub(crate) sport: u16,
    pub(crate) oif: &'a mut i32,
    pub(crate) len: usize,
}

/// One received datagram, as the receive hook sees it; the hook may change `saddr`.
pub(crate) struct Incoming<'a> {
    pub(crate) net: NetId,
    pub(crate) saddr: &'a mut u32,
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) len: usize,
}

/// A module's send-side policy; runs in softirq or process context under RCU.
pub(crate) trait SendHook {
    /// Returns whether it changed the datagram's path. Ports are in host byte order.
    fn steer(datagram: Outgoing<'_>) -> bool;
}

/// A module's receive-side policy; runs in process context under RCU.
pub(crate) trait RecvHook {
    /// May rewrite the reported source address. Ports are in host byte order.
    fn report(datagram: Incoming<'_>);
}

/// Called by the patched `udp_sendmsg` for every IPv4 datagram while `H` is registered.
///
/// # Safety
///
/// The pointers are valid, exclusive and non-NULL for the duration of the call, and the call
/// runs under `rcu_read_lock()` (the contract of `udp_mpath_send_hook_t`).
unsafe extern "C" fn send_trampoline<H: SendHook>(
    net: *const bindings::net,
    daddr: *mut u32,
    dport: u16,
    saddr: *mut u32,
    sport: u16,
    oif: *mut c_int,
    len: usize,
) -> bool {
    H::steer(Outgoing {
        net: NetId(net),
        // SAFETY: The patch passes valid, exclusive, non-NULL pointers for the call's duration.
        daddr: unsafe { &mut *daddr },
        dport: u16::from_be(dport),
        // SAFETY: As above.
        saddr: unsafe { &mut *saddr },
        sport: u16::from_be(sport),
        // SAFETY: As above.
        oif: unsafe { &mut *oif },
        len,
    })
}

/// Called by the patched `udp_recvmsg` for every IPv4 datagram while `H` is registered.
///
/// # Safety
///
/// As for [`send_trampoline`] (the contract of `udp_mpath_recv_hook_t`).
unsafe extern "C" fn recv_trampoline<H: RecvHook>(
    net: *const bindings::net,
    saddr: *mut u32,
    sport: u16,
    dport: u16,
    _iif: c_int,
    len: usize,
) {
    H::report(Incoming {
        net: NetId(net),
        // SAFETY: The patch passes a valid, exclusive, non-NULL pointer for the call's duration.
        saddr: unsafe { &mut *saddr },
        sport: u16::from_be(sport),
        dport: u16::from_be(dport),
        len,
    })
}

/// The send hook while registered; dropping it unregisters and waits for running calls.
pub(crate) struct SendHookRegistration<H: SendHook>(PhantomData<H>);

impl<H: SendHook> SendHookRegistration<H> {
    /// Registers `H`; `EBUSY` if another module holds the send hook.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: The trampoline matches the hook type and stays valid until `drop` returns,
        // which is before the module's code is freed.
        to_result(unsafe { bindings::udp_mpath_register_send(Some(send_trampoline::<H>)) })?;
        Ok(Self(PhantomData))
    }
}

impl<H: SendHook> Drop for SendHookRegistration<H> {
    fn drop(&mut self) {
        // SAFETY: Registered in `new`; this waits until no CPU runs the trampoline.
        unsafe { bindings::udp_mpath_unregister_send(Some(send_trampoline::<H>)) };
    }
}

/// The receive hook while registered; dropping it unregisters and waits for running calls.
pub(crate) struct RecvHookRegistration<H: RecvHook>(PhantomData<H>);

impl<H: RecvHook> RecvHookRegistration<H> {
    /// Registers `H`; `EBUSY` if another module holds the receive hook.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: As for the send hook.
        to_result(unsafe { bindings::udp_mpath_register_recv(Some(recv_trampoline::<H>)) })?;
        Ok(Self(PhantomData))
    }
}

impl<H: RecvHook> Drop for RecvHookRegistration<H> {
    fn drop(&mut self) {
        // SAFETY: Registered in `new`; this waits until no CPU runs the trampoline.
        unsafe { bindings::udp_mpath_unregister_recv(Some(recv_trampoline::<H>)) };
    }
}

/// Writes `show` output into the page sysfs hands out, refusing to overflow it.
pub(crate) struct PageWriter<'a> {
    page: &'a mut [u8],
    len: usize,
}

impl fmt::Write for PageWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.page
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// What a module's sysfs files do; runs in process context and may sleep.
pub(crate) trait SysfsFiles {
    /// Prints file `name`'s value, ending in a newline.
    fn show(name: &CStr, out: &mut PageWriter<'_>) -> Result;
    /// Parses and applies a write to file `name`; on error the old value stays.
    fn store(name: &CStr, input: &[u8]) -> Result;
}

/// Most files a group can hold.
const MAX_FILES: usize = 16;

/// A file's name and whether root may write it (mode 0644) or only read it (0444).
pub(crate) struct File {
    pub(crate) name: &'static CStr,
    pub(crate) writable: bool,
}

/// A static group of files in `/sys/kernel/mpudp` (or a named subdirectory of it).
pub(crate) struct SysfsGroup {
    name: Option<&'static CStr>,
    files: &'static [File],
    attrs: UnsafeCell<[bindings::kobj_attribute; MAX_FILES]>,
    attr_ptrs: UnsafeCell<[*mut bindings::attribute; MAX_FILES + 1]>,
    group: UnsafeCell<bindings::attribute_group>,
}

// SAFETY: The cells are written only by `register`, before sysfs can see them, and only read
// afterwards (by sysfs).
unsafe impl Sync for SysfsGroup {}

impl SysfsGroup {
    /// A group of `files` (at most 16), in subdirectory `name` or directly in the directory.
    pub(crate) const fn new(name: Option<&'static CStr>, files: &'static [File]) -> Self {
        assert!(files.len() <= MAX_FILES);
        Self {
            name,
            files,
            // SAFETY: All-zero is a valid value for these C structs (NULL pointers, no callbacks).
            attrs: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            attr_ptrs: UnsafeCell::new([core::ptr::null_mut(); MAX_FILES + 1]),
            // SAFETY: As above.
            group: UnsafeCell::new(unsafe { core::mem::zeroed() }),
        }
    }

    /// Creates the files; they disappear when the returned registration is dropped.
    pub(crate) fn register<F: SysfsFiles>(&'static self) -> Result<SysfsRegistration> {
        // SAFETY: `udp_mpath_kobj` is set once at boot by the patch (late initcall) and never
        // changed.
        let dir = unsafe { bindings::udp_mpath_kobj };
        if dir.is_null() {
            pr_err!("/sys/kernel/mpudp is missing: is the kernel built with udp-hook.patch?\n");
            return Err(ENODEV);
        }
        self.register_on::<F>(dir)
    }

    /// Creates the files in `parent` (a directory made by [`SysfsDir::create`]), which must
    /// outlive the returned registration.
    pub(crate) fn register_in<F: SysfsFiles>(
        &'static self,
        parent: &SysfsDir,
    ) -> Result<SysfsRegistration> {
        self.register_on::<F>(parent.0)
    }

    fn register_on<F: SysfsFiles>(
        &'static self,
        dir: *mut bindings::kobject,
    ) -> Result<SysfsRegistration> {
        // SAFETY: Nothing else touches the cells until `sysfs_create_group` publishes them, and
        // a group is registered at most once per module load.
        let (attrs, ptrs, group) = unsafe {
            (
                &mut *self.attrs.get(),
                &mut *self.attr_ptrs.get(),
                &mut *self.group.get(),
            )
        };
        for (i, file) in self.files.iter().enumerate() {
            attrs[i].attr.name = file.name.as_char_ptr();
            attrs[i].attr.mode = if file.writable { 0o644 } else { 0o444 };
            attrs[i].__bindgen_anon_1.show = Some(show_trampoline::<F>);
            if file.writable {
                attrs[i].__bindgen_anon_2.store = Some(store_trampoline::<F>);
            }
            ptrs[i] = &raw mut attrs[i].attr;
        }
        group.name = self
            .name
            .map_or(core::ptr::null(), |name| name.as_char_ptr());
        group.__bindgen_anon_2.attrs = ptrs.as_mut_ptr();
        // SAFETY: `dir` is a live kobject and the group is 'static and fully initialised.
        to_result(unsafe { bindings::sysfs_create_group(dir, self.group.get()) })?;
        Ok(SysfsRegistration {
            dir,
            group: self.group.get(),
        })
    }
}

/// Created sysfs files; dropping removes them and waits for running callbacks.
pub(crate) struct SysfsRegistration {
    dir: *mut bindings::kobject,
    group: *const bindings::attribute_group,
}

// SAFETY: The pointers refer to a boot-time kobject and a 'static group.
unsafe impl Send for SysfsRegistration {}
// SAFETY: As above; the type has no methods that use them except `drop`.
unsafe impl Sync for SysfsRegistration {}

impl Drop for SysfsRegistration {
    fn drop(&mut self) {
        // SAFETY: The group was created on `dir` by `register`.
        unsafe { bindings::sysfs_remove_group(self.dir, self.group) };
    }
}

/// The `show` callback of every MPUDP sysfs file.
///
/// # Safety
///
/// `attr` is one of the attributes registered by [`SysfsGroup::register`] and `buf` is the
/// page sysfs provides for `show`.
unsafe extern "C" fn show_trampoline<F: SysfsFiles>(
    _kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs passes one of our attributes, whose name is a 'static C string.
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name) };
    // SAFETY: sysfs hands `show` a zeroed, exclusive buffer of one page.
    let page =
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) };
    let mut out = PageWriter { page, len: 0 };
    match F::show(name, &mut out) {
        Ok(()) => out.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// The `store` callback of every writable MPUDP sysfs file.
///
/// # Safety
///
/// `attr` is one of the attributes registered by [`SysfsGroup::register`] and `buf` holds
/// `count` readable bytes.
unsafe extern "C" fn store_trampoline<F: SysfsFiles>(
    _kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: sysfs passes one of our attributes, whose name is a 'static C string.
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name) };
    // SAFETY: sysfs passes `count` readable bytes that stay valid for the call.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    match F::store(name, input) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// Tells a module that a network namespace is going away, so that it forgets its state.
pub(crate) trait NetExit {
    /// Called once per namespace, after its last socket is gone; may sleep.
    fn net_exit(net: NetId);
}

/// A static `pernet_operations` for one module.
pub(crate) struct PernetOps(UnsafeCell<bindings::pernet_operations>);

// SAFETY: Written only by `register` before the kernel sees it; afterwards only the kernel's
// pernet code touches it, under its own lock.
unsafe impl Sync for PernetOps {}

impl PernetOps {
    /// Unregistered operations.
    pub(crate) const fn new() -> Self {
        // SAFETY: All-zero is a valid, empty `pernet_operations`.
        Self(UnsafeCell::new(unsafe { core::mem::zeroed() }))
    }

    /// Calls `E::net_exit` for every namespace that exits from now on, and for every namespace
    /// when the registration is dropped.
    pub(crate) fn register<E: NetExit>(&'static self) -> Result<PernetRegistration> {
        // SAFETY: Not yet registered, so the kernel does not read it concurrently.
        unsafe { (*self.0.get()).exit = Some(net_exit_trampoline::<E>) };
        // SAFETY: The operations are 'static and initialised.
        to_result(unsafe { bindings::register_pernet_subsys(self.0.get()) })?;
        Ok(PernetRegistration(self.0.get()))
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
    E::net_exit(NetId(net));
}

/// Tells a module that the set or the names of network interfaces changed somewhere.
pub(crate) trait InterfacesChanged {
    /// Called after an interface appeared, disappeared or was renamed; may sleep. RTNL is held,
    /// so the implementation may take the configuration lock but nothing that waits for RTNL.
    fn interfaces_changed();
}

/// A static netdevice notifier for one module.
pub(crate) struct NetdevNotifier(UnsafeCell<bindings::notifier_block>);

// SAFETY: Written only by `register` before the kernel sees it; afterwards only the kernel's
// notifier chain touches it, under RTNL.
unsafe impl Sync for NetdevNotifier {}

impl NetdevNotifier {
    /// An unregistered notifier.
    pub(crate) const fn new() -> Self {
        // SAFETY: All-zero is a valid, empty `notifier_block`.
        Self(UnsafeCell::new(unsafe { core::mem::zeroed() }))
    }

    /// Calls `C::interfaces_changed` on every interface registration, unregistration and
    /// rename, starting with one call per existing interface.
    pub(crate) fn register<C: InterfacesChanged>(&'static self) -> Result<NetdevRegistration> {
        // SAFETY: Not yet registered, so the kernel does not read it concurrently.
        unsafe { (*self.0.get()).notifier_call = Some(netdev_event_trampoline::<C>) };
        // SAFETY: The notifier block is 'static and initialised.
        to_result(unsafe { bindings::register_netdevice_notifier(self.0.get()) })?;
        Ok(NetdevRegistration(self.0.get()))
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
    if relevant
        .iter()
        .any(|&cmd| c_ulong::try_from(cmd) == Ok(event))
    {
        C::interfaces_changed();
    }
    bindings::NOTIFY_DONE as c_int
}

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

/// Sleeps for about `ms` milliseconds (at least one tick), or less if the thread is stopped.
pub(crate) fn sleep_ms(ms: u32) {
    // SAFETY: Called only from worker threads, which may sleep.
    unsafe { bindings::msleep_interruptible(ms) };
}

/// The longest a worker thread waits on its socket before it looks at the clock and at
/// `kthread_stop` again, µs (rounded up to a scheduler tick). A datagram ends the wait at once.
const SOCKET_WAIT_US: i64 = 2000;

/// Whether the calling worker thread has been told to stop.
pub(crate) fn should_stop() -> bool {
    // SAFETY: Called only from worker threads (kernel threads started by `Worker::start`).
    unsafe { bindings::kthread_should_stop() }
}

/// One datagram read by [`ProbeSocket::recv`].
pub(crate) struct Received {
    /// Payload length (more than the buffer means the datagram was truncated).
    pub(crate) len: usize,
    /// Sender's address and port (host byte order for the port).
    pub(crate) from: Ipv4,
    pub(crate) from_port: u16,
    /// The local address it was sent to, and the interface it arrived on.
    pub(crate) local: Ipv4,
    pub(crate) ifindex: i32,
    /// When it was queued on the socket, by [`now_ns`]'s clock (see [`Arrivals`]).
    pub(crate) arrived_ns: u64,
}

/// Control-message space for IP_PKTINFO (`CMSG_SPACE(sizeof(struct in_pktinfo))`).
#[repr(C, align(8))]
#[derive(Default)]
struct PktinfoCmsg {
    hdr: bindings::cmsghdr,
    info: bindings::in_pktinfo,
    pad: u32,
}

/// Arrival stamps kept per probe socket; more datagrams than this waiting at once (a flood)
/// overwrite the oldest stamps.
const ARRIVAL_SLOTS: u32 = 8;

/// The arrival times of the datagrams queued on one probe socket, in queueing order.
///
/// [`stamp_arrival`] (the socket's `sk_data_ready`, in softirq) stamps each datagram as it is
/// queued; the reader takes one stamp per datagram it reads, and forgets the rest once the
/// socket is empty, so that a datagram the stack dropped between the two cannot shift the
/// stamps for longer than one read. The kernel's receive timestamps (`SO_TIMESTAMPNS`) would
/// do this, at the price of a host-wide static key switched at every socket open and close
/// (README, "Static keys under TCG"); stamping when the thread reads adds its wake-up time
/// (about 1 ms per end under TCG).
struct Arrivals {
    /// Stamps reserved by the callback, and taken by the one reader; both wrap.
    written: AtomicU32,
    taken: AtomicU32,
    slots: [AtomicU64; ARRIVAL_SLOTS as usize],
    /// The socket's own `sk_data_ready`, which wakes the reader.
    wake: unsafe extern "C" fn(*mut bindings::sock),
}

impl Arrivals {
    /// The stamp of the oldest datagram not yet read, if it was stamped.
    fn take(&self) -> Option<u64> {
        let taken = self.taken.load(Ordering::Relaxed);
        let written = self.written.load(Ordering::Acquire);
        if taken == written {
            return None;
        }
        // After a flood, the oldest stamps left were overwritten: go on from the oldest kept.
        let next = if written.wrapping_sub(taken) > ARRIVAL_SLOTS {
            written.wrapping_sub(ARRIVAL_SLOTS)
        } else {
            taken
        };
        self.taken.store(next.wrapping_add(1), Ordering::Relaxed);
        let slot = &self.slots[(next % ARRIVAL_SLOTS) as usize];
        Some(slot.load(Ordering::Acquire))
    }

    /// Forgets the stamps of datagrams that were never read (the socket is empty).
    fn resync(&self) {
        let written = self.written.load(Ordering::Acquire);
        self.taken.store(written, Ordering::Relaxed);
    }
}

/// `sk_data_ready` of probe sockets: stamps the arrival of the datagram just queued, then
/// wakes the reader as the socket's own callback does.
///
/// # Safety
///
/// `sk` is a [`ProbeSocket`]'s sock: its `sk_user_data` points to the socket's [`Arrivals`],
/// which live until a grace period after the socket is released.
unsafe extern "C" fn stamp_arrival(sk: *mut bindings::sock) {
    // SAFETY: See the function's contract; the pointer was set before the socket was bound.
    let arrivals = unsafe { &*(*sk).sk_user_data.cast::<Arrivals>() };
    let at = now_ns();
    let i = arrivals.written.fetch_add(1, Ordering::AcqRel);
    arrivals.slots[(i % ARRIVAL_SLOTS) as usize].store(at, Ordering::Release);
    // SAFETY: The socket's own callback, called as the stack would have called it.
    unsafe { (arrivals.wake)(sk) };
}

/// A kernel UDP socket in one namespace, for MPUDP's probe datagrams. Its user may sleep.
///
/// Contract: the namespace outlives the socket (its owner drops it from the namespace's exit
/// callback at the latest).
pub(crate) struct ProbeSocket {
    sock: *mut bindings::socket,
    /// Pointed to by the sock's `sk_user_data`; dropped after the socket (see `drop`).
    arrivals: KBox<Arrivals>,
}

// SAFETY: The socket layer serialises calls on one socket; the pointer is owned.
unsafe impl Send for ProbeSocket {}
// SAFETY: As above.
unsafe impl Sync for ProbeSocket {}

impl ProbeSocket {
    /// A socket in `net` bound to `port` on every address (0: an ephemeral port), reporting
    /// each datagram's local address and interface.
    ///
    /// It asks for no receive timestamps: `SO_TIMESTAMPNS` would enable the host-wide
    /// `netstamp_needed_key`, and so re-patch kernel text on the receive path of every packet,
    /// each time a socket opens or closes (see README, "Static keys under TCG").
    pub(crate) fn open(net: NetId, port: u16) -> Result<Self> {
        let mut sock: *mut bindings::socket = core::ptr::null_mut();
        // SAFETY: `net` is alive (the caller is a sysfs write from a task in it) and `sock`
        // is a valid out-pointer.
        to_result(unsafe {
            bindings::sock_create_kern(
                net.0.cast_mut(),
                bindings::AF_INET as c_int,
                bindings::sock_type_SOCK_DGRAM as c_int,
                bindings::IPPROTO_UDP as c_int,
                &mut sock,
            )
        })?;
        // SAFETY: `sock` was just created, so `sk` is set and not yet bound: no datagram
        // can reach its callbacks, and nothing else uses `sk_user_data`.
        let sk = unsafe { (*sock).sk };
        // SAFETY: As above; a new socket has its protocol's default callback.
        let Some(wake) = (unsafe { (*sk).sk_data_ready }) else {
            // SAFETY: Created above and not used by anyone else.
            unsafe { bindings::sock_release(sock) };
            return Err(EINVAL);
        };
        let arrivals = match KBox::new(
            Arrivals {
                written: AtomicU32::new(0),
                taken: AtomicU32::new(0),
                slots: [const { AtomicU64::new(0) }; ARRIVAL_SLOTS as usize],
                wake,
            },
            GFP_KERNEL,
        ) {
            Ok(arrivals) => arrivals,
            Err(e) => {
                // SAFETY: As above.
                unsafe { bindings::sock_release(sock) };
                return Err(e.into());
            }
        };
        // SAFETY: Not yet bound (see above); `arrivals` lives until a grace period after the
        // socket is released (`drop`), as `stamp_arrival` requires.
        unsafe {
            (*sk).sk_user_data = (&raw const *arrivals).cast_mut().cast();
            (*sk).sk_data_ready = Some(stamp_arrival);
        }
        // From here on, dropping `this` releases the socket.
        let this = Self { sock, arrivals };
        let mut addr = bindings::sockaddr_in {
            sin_family: bindings::AF_INET as u16,
            sin_port: port.to_be(),
            ..Default::default()
        };
        // SAFETY: `sock` is a live socket; `addr` is a valid `sockaddr_in` of the given size.
        to_result(unsafe {
            bindings::kernel_bind(
                sock,
                (&raw mut addr).cast(),
                core::mem::size_of::<bindings::sockaddr_in>() as c_int,
            )
        })?;
        // Blocking reads return after at most this long with `EAGAIN`.
        let wait = bindings::__kernel_sock_timeval {
            tv_sec: 0,
            tv_usec: SOCKET_WAIT_US,
        };
        let mut optval = bindings::sockptr_t::default();
        optval.__bindgen_anon_1.kernel = (&raw const wait).cast_mut().cast();
        optval.set_is_kernel(true);
        // SAFETY: `sock` is live; `optval` points to a kernel timeval that outlives the call.
        to_result(unsafe {
            bindings::sock_setsockopt(
                sock,
                bindings::SOL_SOCKET as c_int,
                bindings::SO_RCVTIMEO_NEW as c_int,
                optval,
                core::mem::size_of::<bindings::__kernel_sock_timeval>() as c_uint,
            )
        })?;
        // SAFETY: `sock` is live and `sk` is set for a created socket.
        unsafe { bindings::ip_sock_set_pktinfo((*sock).sk) };
        Ok(this)
    }

    /// Sends `data` to `to:port` without blocking. With `via = Some((ifindex, source))` the
    /// datagram leaves through that interface from that address (IP_PKTINFO); with `None` the
    /// routing table decides, as for any datagram.
    pub(crate) fn send(
        &self,
        to: Ipv4,
        port: u16,
        via: Option<(i32, Ipv4)>,
        data: &[u8],
    ) -> Result {
        let mut addr = bindings::sockaddr_in {
            sin_family: bindings::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: bindings::in_addr { s_addr: to.0 },
            ..Default::default()
        };
        let mut cmsg = PktinfoCmsg::default();
        let mut msg = bindings::msghdr {
            msg_name: (&raw mut addr).cast(),
            msg_namelen: core::mem::size_of::<bindings::sockaddr_in>() as c_int,
            msg_flags: bindings::MSG_DONTWAIT,
            ..Default::default()
        };
        if let Some((ifindex, source)) = via {
            cmsg.hdr.cmsg_len = core::mem::size_of::<bindings::cmsghdr>()
                + core::mem::size_of::<bindings::in_pktinfo>();
            cmsg.hdr.cmsg_level = bindings::SOL_IP as c_int;
            cmsg.hdr.cmsg_type = bindings::IP_PKTINFO as c_int;
            cmsg.info.ipi_ifindex = ifindex;
            cmsg.info.ipi_spec_dst.s_addr = source.0;
            msg.__bindgen_anon_1.msg_control = (&raw mut cmsg).cast();
            msg.msg_controllen = core::mem::size_of::<PktinfoCmsg>();
        }
        let mut vec = bindings::kvec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        // SAFETY: The socket is live; `msg` (a kernel msghdr: `msg_control_is_user` is false),
        // `addr`, `cmsg` and `vec` are valid for the call, and the data is only read.
        let sent =
            unsafe { bindings::kernel_sendmsg(self.sock, &mut msg, &mut vec, 1, data.len()) };
        to_result(sent.min(0))
    }

    /// Waits up to a scheduler tick for a datagram, then hands it and every other one waiting
    /// to `f` (its payload, at most `buf`'s length, and how it arrived). Sleeps: worker threads
    /// only.
    pub(crate) fn wait_and_drain(&self, buf: &mut [u8], mut f: impl FnMut(&[u8], &Received)) {
        let mut wait = true;
        while let Ok(rx) = self.recv(buf, wait) {
            wait = false;
            if let Some(data) = buf.get(..rx.len) {
                f(data, &rx);
            }
        }
        self.arrivals.resync();
    }

    /// Reads one datagram into `buf`; `EAGAIN` when none came (at once unless `wait`, else
    /// after the socket's receive timeout).
    fn recv(&self, buf: &mut [u8], wait: bool) -> Result<Received> {
        let mut addr = bindings::sockaddr_in::default();
        // Room for IP_PKTINFO (32 bytes).
        let mut control = [0u64; 8];
        let control_len = core::mem::size_of_val(&control);
        let mut msg = bindings::msghdr {
            msg_name: (&raw mut addr).cast(),
            msg_namelen: core::mem::size_of::<bindings::sockaddr_in>() as c_int,
            msg_controllen: control_len,
            ..Default::default()
        };
        msg.__bindgen_anon_1.msg_control = control.as_mut_ptr().cast();
        let mut vec = bindings::kvec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let flags = if wait {
            0
        } else {
            bindings::MSG_DONTWAIT as c_int
        };
        // SAFETY: The socket is live; `msg` is a kernel msghdr whose name, control buffer and
        // `vec` are valid and writable for the call.
        let got =
            unsafe { bindings::kernel_recvmsg(self.sock, &mut msg, &mut vec, 1, buf.len(), flags) };
        to_result(got.min(0))?;
        let arrived_ns = self.arrivals.take().unwrap_or_else(now_ns);
        let mut received = Received {
            len: usize::try_from(got).unwrap_or(0),
            from: Ipv4(addr.sin_addr.s_addr),
            from_port: u16::from_be(addr.sin_port),
            local: Ipv4(0),
            ifindex: 0,
            arrived_ns,
        };
        if msg.msg_flags & bindings::MSG_TRUNC != 0 {
            received.len = buf.len() + 1;
        }
        // The kernel advanced past what it wrote and shrank the length to match.
        let used = control_len.saturating_sub(msg.msg_controllen);
        // SAFETY: `control` is a plain byte buffer of `control_len` bytes.
        let bytes =
            unsafe { core::slice::from_raw_parts(control.as_ptr().cast::<u8>(), control_len) };
        parse_cmsgs(bytes.get(..used).unwrap_or(&[]), &mut received);
        Ok(received)
    }
}

/// Reads IP_PKTINFO from the control messages the kernel wrote.
fn parse_cmsgs(mut bytes: &[u8], out: &mut Received) {
    let header = core::mem::size_of::<bindings::cmsghdr>();
    while bytes.len() >= header {
        // SAFETY: At least a header's worth of bytes; read unaligned, any bit pattern is valid.
        let hdr = unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<bindings::cmsghdr>()) };
        let len = hdr.cmsg_len;
        let Some(data) = bytes.get(header..len) else {
            return;
        };
        let is = |level: u32, kind: u32| {
            c_int::try_from(level) == Ok(hdr.cmsg_level)
                && c_int::try_from(kind) == Ok(hdr.cmsg_type)
        };
        if is(bindings::SOL_IP, bindings::IP_PKTINFO)
            && data.len() >= core::mem::size_of::<bindings::in_pktinfo>()
        {
            // SAFETY: Enough bytes for the struct; any bit pattern is valid.
            let info =
                unsafe { core::ptr::read_unaligned(data.as_ptr().cast::<bindings::in_pktinfo>()) };
            out.local = Ipv4(info.ipi_addr.s_addr);
            out.ifindex = info.ipi_ifindex;
        }
        // Control messages are padded to 8 bytes.
        let next = len.saturating_add(7) & !7;
        bytes = bytes.get(next.max(header)..).unwrap_or(&[]);
    }
}

impl Drop for ProbeSocket {
    fn drop(&mut self) {
        // SAFETY: Created by `sock_create_kern` in `open`; no thread uses it any more (its
        // worker is stopped before the socket is dropped).
        unsafe { bindings::sock_release(self.sock) };
        // A softirq that found the socket before it was closed may still be running its
        // `stamp_arrival`; `arrivals` is freed (after this) only once it has returned.
        // SAFETY: A probe socket is dropped in process context, which may sleep: by the
        // configuration write or module exit that stops its worker, or by a namespace's exit
        // callback.
        unsafe { bindings::synchronize_net() };
    }
}

/// What a worker thread does.
pub(crate) trait WorkerBody: Send + Sync + 'static {
    /// Runs in a kernel thread (process context, may sleep) and returns once
    /// [`should_stop`] is true.
    fn run(&self);
}

/// A running kernel thread and the data it works on; dropping stops the thread and waits for
/// it, then drops the data.
pub(crate) struct Worker<T: WorkerBody> {
    task: *mut bindings::task_struct,
    body: KBox<T>,
}

// SAFETY: The task pointer is only used to stop the thread; `T` is `Send + Sync`.
unsafe impl<T: WorkerBody> Send for Worker<T> {}

impl<T: WorkerBody> Worker<T> {
    /// Starts a thread named `name` running `body.run()`.
    pub(crate) fn start(name: &'static CStr, body: KBox<T>) -> Result<Self> {
        let data: *const T = &*body;
        // SAFETY: `worker_main::<T>` matches the thread function type; `data` stays valid until
        // the thread has exited (`drop` stops it before `body` is freed); the name format is a
        // literal "%s" with one C string argument.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(worker_main::<T>),
                data.cast_mut().cast(),
                bindings::NUMA_NO_NODE,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        let task = kernel::error::from_err_ptr(task)?;
        // SAFETY: `task` is a newly created, not yet started kernel thread.
        unsafe { bindings::wake_up_process(task) };
        Ok(Self { task, body })
    }
}

impl<T: WorkerBody> Drop for Worker<T> {
    fn drop(&mut self) {
        // SAFETY: The thread was created by `start` and cannot have exited on its own:
        // `worker_main` returns only after `kthread_should_stop()`. This waits for its exit.
        unsafe { bindings::kthread_stop(self.task) };
    }
}

/// The function every worker thread runs.
///
/// # Safety
///
/// `data` is the `T` given to [`Worker::start`], valid until the thread exits.
unsafe extern "C" fn worker_main<T: WorkerBody>(data: *mut c_void) -> c_int {
    // SAFETY: See the function's contract.
    let body = unsafe { &*data.cast_const().cast::<T>() };
    body.run();
    // `kthread_stop` needs the thread to still exist when it is called.
    while !should_stop() {
        sleep_ms(10);
    }
    0
}

/// A namespace's worker, in a [`Workers`] table.
type WorkerSlot<T> = Option<(NetId, Worker<T>)>;

/// One module's worker threads, at most one per namespace; changed only under the
/// configuration lock.
pub(crate) struct Workers<T: WorkerBody>(UnsafeCell<[WorkerSlot<T>; crate::netns::MAX_NAMESPACES]>);

// SAFETY: The cell is only accessed by methods that require the configuration lock's guard.
unsafe impl<T: WorkerBody> Sync for Workers<T> {}

impl<T: WorkerBody> Workers<T> {
    /// No workers.
    pub(crate) const fn new() -> Self {
        Self(UnsafeCell::new(
            [const { None }; crate::netns::MAX_NAMESPACES],
        ))
    }

    /// The table, exclusively: the caller holds the configuration lock (`_config`).
    #[allow(clippy::mut_from_ref, reason = "exclusive by the configuration lock")]
    fn table(&self, _config: &ConfigGuard) -> &mut [WorkerSlot<T>] {
        // SAFETY: Every caller holds the configuration lock, so no other reference exists.
        unsafe { &mut *self.0.get() }
    }

    /// Whether `net` has a worker.
    pub(crate) fn running(&self, config: &ConfigGuard, net: NetId) -> bool {
        self.table(config)
            .iter()
            .flatten()
            .any(|(owner, _)| *owner == net)
    }

    /// Starts `body` as `net`'s worker, after stopping the one it had.
    pub(crate) fn start(
        &self,
        config: &ConfigGuard,
        net: NetId,
        name: &'static CStr,
        body: KBox<T>,
    ) -> Result {
        self.stop(config, net);
        let slot = self
            .table(config)
            .iter_mut()
            .find(|slot| slot.is_none())
            .ok_or(ENOSPC)?;
        *slot = Some((net, Worker::start(name, body)?));
        Ok(())
    }

    /// Stops `net`'s worker, if it has one, and waits for it.
    pub(crate) fn stop(&self, config: &ConfigGuard, net: NetId) {
        for slot in self.table(config).iter_mut() {
            if slot.as_ref().is_some_and(|(owner, _)| *owner == net) {
                *slot = None;
            }
        }
    }

    /// Stops every worker.
    pub(crate) fn stop_all(&self, config: &ConfigGuard) {
        for slot in self.table(config).iter_mut() {
            *slot = None;
        }
    }
}

/// A directory under `/sys/kernel/mpudp`; removed when dropped (after its groups).
pub(crate) struct SysfsDir(*mut bindings::kobject);

// SAFETY: A kobject pointer, used only to add and remove groups and to drop it.
unsafe impl Send for SysfsDir {}
// SAFETY: As above.
unsafe impl Sync for SysfsDir {}

impl SysfsDir {
    /// Creates `/sys/kernel/mpudp/NAME`.
    pub(crate) fn create(name: &'static CStr) -> Result<Self> {
        // SAFETY: Set once at boot by the patch and never changed.
        let parent = unsafe { bindings::udp_mpath_kobj };
        if parent.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: `name` is a 'static C string and `parent` a live kobject.
        let dir = unsafe { bindings::kobject_create_and_add(name.as_char_ptr(), parent) };
        if dir.is_null() {
            return Err(ENOMEM);
        }
        Ok(Self(dir))
    }
}

impl Drop for SysfsDir {
    fn drop(&mut self) {
        // SAFETY: Created by `kobject_create_and_add`; this drops its only reference.
        unsafe { bindings::kobject_put(self.0) };
    }
}
