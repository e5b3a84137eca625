// SPDX-License-Identifier: GPL-2.0

//! The UDP hooks of `udp-hook.patch`, as safe traits a module implements and registrations
//! it holds.
//!
//! Contracts of the patch: a hook is called under `rcu_read_lock()` with valid, non-NULL
//! pointers that live for the duration of the call; unregistering waits until no CPU runs
//! the hook. The receive hook runs in softirq context, before the socket lookup.

use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::{bindings, error::to_result, prelude::*};

use crate::ffi::NetId;
use crate::parse::Ipv4;

/// The most bytes a send hook may put before a datagram's payload.
pub(crate) const HEADER_MAX: usize = bindings::UDP_MPATH_HDR_MAX as usize;
/// The UDP header's length: an arriving skb's payload starts this far into its data.
const UDP_HEADER: usize = 8;

/// The longest datagram [`xmit`] sends.
pub(crate) const XMIT_MAX: usize = bindings::UDP_MPATH_XMIT_MAX as usize;

/// Sends `payload` (at most [`XMIT_MAX`] bytes) from `from` to `to`, as
/// one IPv4 UDP datagram of no socket, routed as the steer hook routes the tunnel's own: a
/// source address of 0 and an `oif` of 0 let routing pick. Ports in host byte order. Any
/// context; does not sleep. `Ok` once the IP layer has it (it may still be lost, as any).
///
/// # Safety
///
/// The namespace `net` is alive for the duration of the call (see [`NetId`]).
pub(crate) unsafe fn xmit(
    net: NetId,
    from: (Ipv4, u16),
    to: (Ipv4, u16),
    oif: i32,
    payload: &[u8],
) -> Result {
    let len = u32::try_from(payload.len()).map_err(|_| EMSGSIZE)?;
    // SAFETY: The namespace is alive (the caller's contract), and `payload` is readable for
    // `len` bytes; `udp_mpath_xmit` copies it before returning and does not sleep.
    to_result(unsafe {
        bindings::udp_mpath_xmit(
            net.as_ptr(),
            from.0 .0,
            from.1.to_be(),
            to.0 .0,
            to.1.to_be(),
            oif,
            payload.as_ptr().cast(),
            len,
        )
    })
}

/// One outgoing datagram before routing, as the steer hook sees it; the hook may change the
/// `&mut` fields.
pub(crate) struct Outgoing<'a> {
    pub(crate) net: NetId,
    pub(crate) daddr: &'a mut u32,
    pub(crate) dport: u16,
    pub(crate) saddr: &'a mut u32,
    pub(crate) sport: u16,
    pub(crate) oif: &'a mut i32,
    pub(crate) len: usize,
    /// The path the hook chose, for [`SendHook::header`]; `None` (the default) for a
    /// datagram that is not the module's, which then gets no header.
    pub(crate) path: Option<u8>,
}

/// A routed datagram that may get a header, as the header hook sees it.
pub(crate) struct Routed<'a> {
    pub(crate) net: NetId,
    /// The path the steer hook chose.
    pub(crate) path: u8,
    /// Its payload's length.
    pub(crate) len: usize,
    /// How many bytes fit before the route's MTU (or the largest datagram) is exceeded.
    pub(crate) room: usize,
    /// Where the header goes.
    pub(crate) header: &'a mut [u8; HEADER_MAX],
}

/// A datagram that got a header, built, just before it is sent, as the built hook sees it
/// (read-only).
pub(crate) struct Built<'a> {
    pub(crate) net: NetId,
    /// The path the steer hook chose.
    pub(crate) path: u8,
    /// The header the header hook wrote.
    pub(crate) header: &'a [u8; HEADER_MAX],
    /// The length of its payload after the header.
    pub(crate) len: usize,
    skb: *const bindings::sk_buff,
    offset: u32,
    _call: PhantomData<&'a bindings::sk_buff>,
}

impl Built<'_> {
    /// Copies the first `out.len()` bytes of the payload after the header into `out`
    /// (`EFAULT` if it is shorter).
    pub(crate) fn copy_payload(&self, out: &mut [u8]) -> Result {
        let at = i32::try_from(self.offset).map_err(|_| EINVAL)?;
        let len = i32::try_from(out.len()).map_err(|_| EINVAL)?;
        // SAFETY: `skb` is the built datagram handed to this hook call, alive and unchanged
        // for it (the patch's contract); `skb_copy_bits` only reads it, checks the range
        // against its length, and writes `len` bytes to `out`, which has room for them.
        to_result(unsafe { bindings::skb_copy_bits(self.skb, at, out.as_mut_ptr().cast(), len) })
    }
}

/// A module's send-side policy; runs in softirq or process context under RCU.
pub(crate) trait SendHook {
    /// Chooses the datagram's path before it is routed; returns whether it changed it. Ports
    /// are in host byte order.
    fn steer(datagram: &mut Outgoing<'_>) -> bool;

    /// Writes the header of a datagram that [`SendHook::steer`] gave a path, once it is
    /// routed; returns its length (at most `room`; 0 for none). Not called for corked, GSO or
    /// zerocopy sends.
    fn header(datagram: Routed<'_>) -> usize;

    /// Sees a datagram that [`SendHook::header`] gave a header, once it is built, just before
    /// it is sent. Nothing by default.
    fn built(_datagram: &Built<'_>) {}
}

/// Called by the patched `udp_sendmsg` for a datagram that got a header, built, while `H` is
/// registered.
///
/// # Safety
///
/// `tx` and `skb` are valid and non-NULL for the duration of the call, `skb` is not changed
/// during it, its payload after the header is the `len` bytes at `offset`, and the call runs
/// under `rcu_read_lock()` (the contract of `udp_mpath_send_ops.built`).
unsafe extern "C" fn built_trampoline<H: SendHook>(
    net: *const bindings::net,
    tx: *const bindings::udp_mpath_tx,
    skb: *const bindings::sk_buff,
    offset: c_uint,
    len: c_uint,
) {
    // SAFETY: The patch passes a valid, non-NULL pointer for the call's duration.
    let tx = unsafe { &*tx };
    let Ok(path) = u8::try_from(tx.path) else {
        return;
    };
    H::built(&Built {
        net: NetId::from_raw(net),
        path,
        header: &tx.hdr,
        len: len as usize,
        skb,
        offset,
        _call: PhantomData,
    });
}

/// Called by the patched `udp_sendmsg` for every IPv4 datagram while `H` is registered.
///
/// # Safety
///
/// The pointers are valid, exclusive and non-NULL for the duration of the call, and the call
/// runs under `rcu_read_lock()` (the contract of `udp_mpath_send_ops.steer`).
unsafe extern "C" fn steer_trampoline<H: SendHook>(
    net: *const bindings::net,
    daddr: *mut u32,
    dport: u16,
    saddr: *mut u32,
    sport: u16,
    oif: *mut c_int,
    len: usize,
    tx: *mut bindings::udp_mpath_tx,
) -> bool {
    let mut datagram = Outgoing {
        net: NetId::from_raw(net),
        // SAFETY: The patch passes valid, exclusive, non-NULL pointers for the call's duration.
        daddr: unsafe { &mut *daddr },
        dport: u16::from_be(dport),
        // SAFETY: As above.
        saddr: unsafe { &mut *saddr },
        sport: u16::from_be(sport),
        // SAFETY: As above.
        oif: unsafe { &mut *oif },
        len,
        path: None,
    };
    let steered = H::steer(&mut datagram);
    if let Some(path) = datagram.path {
        // SAFETY: As above.
        unsafe { (*tx).path = path.into() };
    }
    steered
}

/// Called by the patched `udp_sendmsg` for a routed datagram whose `tx.path` the steer hook
/// set, while `H` is registered.
///
/// # Safety
///
/// `tx` is valid, exclusive and non-NULL for the duration of the call, and the call runs
/// under `rcu_read_lock()` (the contract of `udp_mpath_send_ops.header`).
unsafe extern "C" fn header_trampoline<H: SendHook>(
    net: *const bindings::net,
    tx: *mut bindings::udp_mpath_tx,
    len: usize,
) -> c_uint {
    // SAFETY: The patch passes a valid, exclusive, non-NULL pointer for the call's duration.
    let tx = unsafe { &mut *tx };
    let Ok(path) = u8::try_from(tx.path) else {
        return 0;
    };
    let room = (tx.room as usize).min(HEADER_MAX);
    let written = H::header(Routed {
        net: NetId::from_raw(net),
        path,
        len,
        room,
        header: &mut tx.hdr,
    });
    // The patch clamps it too; a hook's mistake must not lengthen a datagram past its room.
    written.min(room) as c_uint
}

/// A module's send hooks, as the patch registers them.
pub(crate) struct SendOps(bindings::udp_mpath_send_ops);

impl SendOps {
    /// The hooks of `H`, for a `static`.
    pub(crate) const fn new<H: SendHook>() -> Self {
        Self(bindings::udp_mpath_send_ops {
            steer: Some(steer_trampoline::<H>),
            header: Some(header_trampoline::<H>),
            built: Some(built_trampoline::<H>),
        })
    }

    /// Registers these hooks; `EBUSY` if another module holds the send hooks.
    pub(crate) fn register(&'static self) -> Result<SendHookRegistration> {
        // SAFETY: `self` is a static, so it and the trampolines it points to stay valid until
        // the registration's `drop` returns, which is before the module's code is freed.
        to_result(unsafe { bindings::udp_mpath_register_send(&self.0) })?;
        Ok(SendHookRegistration(self))
    }
}

/// The send hooks while registered; dropping it unregisters and waits for running calls.
pub(crate) struct SendHookRegistration(&'static SendOps);

impl Drop for SendHookRegistration {
    fn drop(&mut self) {
        // SAFETY: Registered in `SendOps::register`; this waits until no CPU runs the hooks.
        unsafe { bindings::udp_mpath_unregister_send(&self.0 .0) };
    }
}

/// One arriving IPv4 datagram, before the socket lookup, as the receive hook sees it.
///
/// Ports are in host byte order; addresses as on the wire.
pub(crate) struct Arriving<'a> {
    pub(crate) net: NetId,
    pub(crate) saddr: Ipv4,
    pub(crate) daddr: Ipv4,
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    /// The interface it arrived on.
    pub(crate) iif: i32,
    /// The UDP payload's length.
    pub(crate) len: usize,
    /// The payload's first bytes (at most [`HEADER_MAX`]), as they were when the hook was
    /// called.
    pub(crate) head: [u8; HEADER_MAX],
    pub(crate) head_len: usize,
    skb: *mut bindings::sk_buff,
    /// Whether [`Arriving::take`] took the skb: it is then no longer this call's.
    taken: bool,
    _call: PhantomData<&'a mut bindings::sk_buff>,
}

impl Arriving<'_> {
    /// Gives the datagram new addresses and ports (the checksums stay valid): the socket
    /// lookup, the socket and its control messages then see these. On error (`ENOMEM`: its
    /// headers could not be made writable) the datagram is unchanged.
    pub(crate) fn rewrite(&mut self, saddr: Ipv4, sport: u16, daddr: Ipv4, dport: u16) -> Result {
        // SAFETY: `skb` is the datagram handed to this hook call, which `&mut self` borrows
        // exclusively for the call (see `recv_trampoline`); `udp_mpath_rewrite` requires no
        // more than that.
        to_result(unsafe {
            bindings::udp_mpath_rewrite(self.skb, saddr.0, sport.to_be(), daddr.0, dport.to_be())
        })?;
        self.saddr = saddr;
        self.daddr = daddr;
        self.sport = sport;
        self.dport = dport;
        Ok(())
    }

    /// The payload's first bytes, copied when the hook was called.
    pub(crate) fn head(&self) -> &[u8] {
        &self.head[..self.head_len.min(HEADER_MAX)]
    }

    /// The whole payload, when it is short enough to be all in [`Arriving::head`] (a control
    /// message); `None` for a longer datagram.
    pub(crate) fn whole_payload(&self) -> Option<&[u8]> {
        (self.head_len == self.len).then(|| self.head())
    }

    /// Copies `out.len()` bytes of the payload from byte `offset` on into `out` (the payload
    /// as it is now: after a [`Arriving::strip`], what follows the removed bytes). `EFAULT`
    /// if the payload is shorter.
    pub(crate) fn copy_payload(&self, offset: usize, out: &mut [u8]) -> Result {
        let at = i32::try_from(UDP_HEADER + offset).map_err(|_| EINVAL)?;
        let len = i32::try_from(out.len()).map_err(|_| EINVAL)?;
        // SAFETY: `skb` is the datagram handed to this hook call, alive for it; its data
        // starts at the UDP header there (the patch's contract, which `udp_mpath_describe`
        // and `udp_mpath_strip` keep), and `skb_copy_bits` checks the range against the
        // skb's length and writes `len` bytes to `out`, which has room for them.
        to_result(unsafe { bindings::skb_copy_bits(self.skb, at, out.as_mut_ptr().cast(), len) })
    }

    /// A new datagram like this one (its interface, addresses and ports, as rewritten so
    /// far) with `payload` as its payload, at most as long as this one's: a datagram rebuilt
    /// from the repair data that this one carried. `None` if memory is short, or if its
    /// route is going away (it could not be kept).
    pub(crate) fn rebuild(&self, payload: &[u8]) -> Option<HeldDatagram> {
        let len = u32::try_from(payload.len()).ok()?;
        // SAFETY: `skb` is the datagram handed to this hook call, its checksum verified by a
        // strip (the callers' order); `udp_mpath_rebuild` only reads it and `payload`, and
        // returns a new skb of its own or NULL.
        let copy = unsafe { bindings::udp_mpath_rebuild(self.skb, payload.as_ptr().cast(), len) };
        let copy = NonNull::new(copy)?;
        // Owned from here: dropped, it is freed.
        let held = HeldDatagram(copy);
        // SAFETY: The copy is ours; its route was copied from the original's, which may be
        // borrowed for this RCU section only: `udp_mpath_hold` takes a reference, or says it
        // cannot.
        unsafe { bindings::udp_mpath_hold(held.0.as_ptr()) }.then_some(held)
    }

    /// Verifies the checksum of a datagram the hook consumes (a control message), so that a
    /// corrupted one is not acted on: the whole payload is removed in passing. On error
    /// (`EBADMSG`: bad checksum; `EINVAL`; `ENOMEM`) the datagram is unchanged.
    pub(crate) fn verify_and_empty(&mut self) -> Result {
        self.strip(self.len)
    }

    /// Removes `len` bytes from the front of the payload, after verifying the datagram's
    /// checksum. On error (`EINVAL`: too short or inconsistent lengths; `EBADMSG`: bad
    /// checksum; `ENOMEM`) the datagram is unchanged.
    pub(crate) fn strip(&mut self, len: usize) -> Result {
        let removed = u32::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: `skb` is the datagram handed to this hook call, borrowed exclusively for
        // the call (see `rewrite`); `udp_mpath_strip` requires no more than that.
        to_result(unsafe { bindings::udp_mpath_strip(self.skb, removed) })?;
        self.len -= len;
        self.head_len = 0;
        Ok(())
    }
}

impl Arriving<'_> {
    /// Takes the datagram out of delivery, to be delivered later (or freed) by whoever holds
    /// the returned [`HeldDatagram`]; the hook then returns [`Verdict::Taken`]. `None` when its
    /// route is going away: it cannot outlive this call, and the hook lets it pass.
    pub(crate) fn take(&mut self) -> Option<HeldDatagram> {
        if self.taken {
            return None;
        }
        // SAFETY: `skb` is the datagram handed to this hook call, borrowed exclusively for the
        // call (see `rewrite`); `udp_mpath_hold` requires no more than that.
        if !unsafe { bindings::udp_mpath_hold(self.skb) } {
            return None;
        }
        self.taken = true;
        // SAFETY: As above; the skb is non-NULL, and from here on it belongs to the
        // `HeldDatagram` (the trampoline tells the patch that the hook took it).
        Some(HeldDatagram(unsafe { NonNull::new_unchecked(self.skb) }))
    }
}

/// An arriving datagram that the receive hook took out of delivery. It is delivered with
/// [`HeldDatagram::deliver`]; dropped, it is freed.
///
/// Whoever holds one must deliver or drop it before the interface it arrived on unregisters
/// (the skb points to that device), and before its namespace goes away.
pub(crate) struct HeldDatagram(NonNull<bindings::sk_buff>);

// SAFETY: The skb is owned by this value alone (taken from the receive path), and the kernel
// lets any CPU deliver or free an skb it owns.
unsafe impl Send for HeldDatagram {}

impl HeldDatagram {
    /// Delivers the datagram as if the receive hook had let it pass: socket lookup, checksum,
    /// queueing or encap. Process or softirq context, interrupts enabled.
    pub(crate) fn deliver(self) {
        let skb = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: The skb is ours (taken with `udp_mpath_hold`, so its route is referenced),
        // its device is still registered (the type's contract), and `udp_mpath_deliver` takes
        // it over and makes its own context (BH off, RCU).
        unsafe { bindings::udp_mpath_deliver(skb) };
    }

    /// The memory the datagram occupies, for memory caps.
    pub(crate) fn truesize(&self) -> usize {
        // SAFETY: The skb is ours and alive; `truesize` is a plain field.
        unsafe { (*self.0.as_ptr()).truesize as usize }
    }
}

impl Drop for HeldDatagram {
    fn drop(&mut self) {
        // SAFETY: The skb is ours, and no one uses it after this.
        unsafe {
            bindings::sk_skb_reason_drop(
                core::ptr::null(),
                self.0.as_ptr(),
                bindings::skb_drop_reason_SKB_DROP_REASON_NOT_SPECIFIED,
            )
        };
    }
}

/// What the receive hook does with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Delivery goes on (possibly rewritten).
    Deliver,
    /// The datagram is freed here as a drop (drop monitors see it); the hook counted why.
    Drop,
    /// The datagram was the hook's own (a control message it acted on) and is freed here as
    /// consumed, not dropped.
    Consumed,
    /// The hook took it with [`Arriving::take`].
    Taken,
}

/// A module's receive-side policy; runs in softirq context under RCU, before the socket
/// lookup, for every arriving IPv4 UDP datagram while registered. Each of the two modules
/// registers one (the patch has a slot for each); the other's may run before or after it,
/// and sees the datagram as this one left it.
pub(crate) trait RecvHook {
    /// May rewrite or strip the datagram, and says whether delivery goes on.
    fn arrive(datagram: &mut Arriving<'_>) -> Verdict;
}

/// Called by the patched `udp_rcv` for every arriving IPv4 datagram while `H` is registered.
///
/// # Safety
///
/// `net`, `skb` and `rx` are valid and non-NULL for the duration of the call, `skb` is not
/// used by anyone else during it, and the call runs in softirq context under
/// `rcu_read_lock()` (the contract of `udp_mpath_recv_hook_t`).
unsafe extern "C" fn recv_trampoline<H: RecvHook>(
    net: *mut bindings::net,
    skb: *mut bindings::sk_buff,
    rx: *const bindings::udp_mpath_rx,
) -> bool {
    // SAFETY: `rx` is valid for the call (the caller's contract).
    let rx = unsafe { &*rx };
    let head_len = (rx.head_len as usize).min(HEADER_MAX);
    let mut head = [0u8; HEADER_MAX];
    // SAFETY: The patch sets `rx.head` to `rx.head_len` (at most `HEADER_MAX`) readable bytes
    // of the payload, valid until the skb is changed, which nothing has done yet.
    head[..head_len].copy_from_slice(unsafe { core::slice::from_raw_parts(rx.head, head_len) });
    let mut datagram = Arriving {
        net: NetId::from_raw(net),
        saddr: Ipv4(rx.saddr),
        daddr: Ipv4(rx.daddr),
        sport: u16::from_be(rx.sport),
        dport: u16::from_be(rx.dport),
        iif: rx.iif,
        len: rx.len as usize,
        head,
        head_len,
        skb,
        taken: false,
        _call: PhantomData,
    };
    let verdict = H::arrive(&mut datagram);
    if datagram.taken {
        // Whatever the verdict says, the skb is no longer this call's to deliver or free.
        return true;
    }
    match verdict {
        Verdict::Deliver | Verdict::Taken => false,
        Verdict::Drop | Verdict::Consumed => {
            // `SKB_CONSUMED` is what `consume_skb` traces, which is a static inline without
            // tracepoints and so has no binding.
            let reason = if verdict == Verdict::Consumed {
                bindings::skb_drop_reason_SKB_CONSUMED
            } else {
                bindings::skb_drop_reason_SKB_DROP_REASON_NOT_SPECIFIED
            };
            // SAFETY: The skb is the hook's to take (returning true says so), and no one uses
            // it after this call.
            unsafe { bindings::sk_skb_reason_drop(core::ptr::null(), skb, reason) };
            true
        }
    }
}

/// The receive hook while registered; dropping it unregisters and waits for running calls.
pub(crate) struct RecvHookRegistration<H: RecvHook>(PhantomData<H>);

impl<H: RecvHook> RecvHookRegistration<H> {
    /// Registers `H`; `EBUSY` if both of the patch's receive hook slots are taken.
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
