// SPDX-License-Identifier: GPL-2.0

//! The UDP hooks of `udp-hook.patch`, as safe traits a module implements and registrations
//! it holds.
//!
//! Contracts of the patch: a hook is called under `rcu_read_lock()` with valid, non-NULL
//! pointers that live for the duration of the call; unregistering waits until no CPU runs
//! the hook. The receive hook runs in softirq context, before the socket lookup.

use core::marker::PhantomData;

use kernel::{bindings, error::to_result, prelude::*};

use crate::ffi::NetId;
use crate::parse::Ipv4;

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

/// A module's send-side policy; runs in softirq or process context under RCU.
pub(crate) trait SendHook {
    /// Returns whether it changed the datagram's path. Ports are in host byte order.
    fn steer(datagram: Outgoing<'_>) -> bool;
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
    skb: *mut bindings::sk_buff,
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
}

/// A module's receive-side policy; runs in softirq context under RCU, before the socket
/// lookup, for every arriving IPv4 UDP datagram while registered.
pub(crate) trait RecvHook {
    /// May rewrite the datagram; delivery then goes on.
    fn arrive(datagram: &mut Arriving<'_>);
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
    let mut datagram = Arriving {
        net: NetId::from_raw(net),
        saddr: Ipv4(rx.saddr),
        daddr: Ipv4(rx.daddr),
        sport: u16::from_be(rx.sport),
        dport: u16::from_be(rx.dport),
        iif: rx.iif,
        len: rx.len as usize,
        skb,
        _call: PhantomData,
    };
    H::arrive(&mut datagram);
    // The datagram always goes on: this module never takes it.
    false
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
