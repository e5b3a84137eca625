// SPDX-License-Identifier: GPL-2.0

//! Kernel UDP sockets for probe datagrams, with arrival times stamped in softirq.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use kernel::{bindings, error::to_result, prelude::*};

use super::{now_ns, NetId};
use crate::parse::Ipv4;

/// The longest a worker thread waits on its socket before it looks at the clock and at
/// `kthread_stop` again, µs (rounded up to a scheduler tick). A datagram ends the wait at once.
const SOCKET_WAIT_US: i64 = 2000;

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
                net.as_ptr(),
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
