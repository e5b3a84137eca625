// SPDX-License-Identifier: GPL-2.0

//! One peer's reorder buffer in the kernel: the datagrams it holds, the lock and timer around
//! the pure logic of `reorder.rs`, and the rule that one CPU at a time delivers what it
//! releases.
//!
//! - The receive hook hands over each sequenced datagram ([`PeerReorder::arrive`]): the skb
//!   is taken, and what the buffer releases goes to a queue in release order. Every datagram
//!   is taken, in order or not: one let through to the socket directly could still be on its
//!   way there when another CPU delivers the next one.
//! - Whoever finds no one delivering becomes the deliverer: it takes one datagram at a time
//!   off the queue and delivers it with the lock dropped. Others only append. So datagrams
//!   reach the socket in release order even when two CPUs receive for one peer, and a
//!   delivery that comes back into the hook (an encapsulation socket) never spins on a lock
//!   its own CPU holds. A deliverer stops after [`QUEUE`] datagrams and leaves the rest to
//!   the timer, so no softirq is kept busy without bound.
//! - The soft hrtimer fires at the earliest held datagram's deadline and releases what waited
//!   long enough ([`Reorder::expire`]).
//! - The wait is the measured spread of the paths' one-way delays (from the send times in the
//!   data headers) plus four deviations and a margin, at most `reorder_max_ms`; the memory
//!   held is at most `reorder_max_kb` (skb truesize), and at most [`SLOTS`] datagrams.
//! - Teardown: [`PeerReorder::flush`] delivers (or frees) everything held before it returns;
//!   [`PeerReorder::shut_down`] also stops the timer, for unload and namespace exit, before
//!   the buffer is freed.

use core::mem::offset_of;
use core::ops::DerefMut;

use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::LockClassKey;

use crate::ffi::{self, SoftTimer, SoftirqLock, TimerOwner};
use crate::reorder::{self, Counters, Fifo, Limits, RelativeDelay, Reorder};
use crate::seq::{DataHeader, MAX_PATHS};
use crate::udp_hooks::{Arriving, HeldDatagram, Verdict};

/// The buffer's window, in sequence numbers over all paths: a datagram this far ahead of the
/// oldest gap gives it up. At 20 Mbit/s of 1400-byte datagrams (1,800 a second) it spans
/// 570 ms, beyond the default `reorder_max_ms`; 256 spanned 140 ms, and the encrypted test
/// overflowed it (the faster path's half held, the slower path's half on its way).
pub(crate) const SLOTS: usize = 1024;
/// Most released datagrams waiting for the deliverer; also a deliverer's budget. One release
/// frees at most `SLOTS`.
const QUEUE: usize = 2 * SLOTS;
/// Added to every wait, for jitter the deviations miss and for timer latency.
const MARGIN_NS: u64 = 5_000_000;
/// How much later than asked the timer may fire, so that the kernel can batch expiries.
const SLACK_NS: u64 = 200_000;
/// Default of `recv/reorder_max_ms`.
pub(crate) const DEFAULT_MAX_WAIT_MS: u32 = 250;
/// Default of `recv/reorder_max_kb`.
pub(crate) const DEFAULT_MAX_KB: u32 = 2048;

/// What the lock protects.
struct Inner {
    buffer: Reorder<HeldDatagram, SLOTS>,
    /// Released datagrams, in release order, waiting for the deliverer.
    queue: DeliveryQueue,
    /// Whether a CPU is delivering from `queue`.
    delivering: bool,
    /// Each path's one-way delay relative to the sender's clock.
    delays: [RelativeDelay; MAX_PATHS],
    /// When the timer is set to fire, if it is.
    armed_ns: Option<u64>,
    /// Datagrams that could not be held (their route was going away) and went at once.
    unheld: u64,
}

impl Inner {
    const EMPTY: Self = Self {
        buffer: Reorder::new(),
        queue: DeliveryQueue {
            items: Fifo::new(),
            drops: 0,
        },
        delivering: false,
        delays: [RelativeDelay::UNMEASURED; MAX_PATHS],
        armed_ns: None,
        unheld: 0,
    };
}

/// What the buffer released, in release order, for the deliverer.
struct DeliveryQueue {
    items: Fifo<HeldDatagram, QUEUE>,
    /// Released datagrams freed because the queue was full (a deliverer far behind).
    drops: u64,
}

impl DeliveryQueue {
    /// Appends a datagram the buffer released; one that does not fit is freed.
    fn push(&mut self, item: HeldDatagram) {
        if self.items.push(item).is_err() {
            self.drops += 1;
        }
    }

    fn pop(&mut self) -> Option<HeldDatagram> {
        self.items.pop()
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What sysfs shows of a peer's buffer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Snapshot {
    pub(crate) counters: Counters,
    pub(crate) held: usize,
    pub(crate) held_bytes: usize,
    pub(crate) queue_drops: u64,
    pub(crate) unheld: u64,
    /// The wait a datagram held now gets, us.
    pub(crate) wait_us: u64,
    /// The spread of the paths' one-way delays, us.
    pub(crate) spread_us: u64,
}

/// One peer's reorder buffer.
pub(crate) struct PeerReorder {
    timer: SoftTimer,
    inner: SoftirqLock<Inner>,
    /// `recv/reorder_max_ms`: the longest a datagram waits for a gap before it.
    pub(crate) max_wait_ms: Atomic<u32>,
    /// `recv/reorder_max_kb`: the most memory held.
    pub(crate) max_kb: Atomic<u32>,
    /// Added to every wait: how late repair data may rebuild a lost datagram (`recv/fec`),
    /// 0 without loss recovery.
    pub(crate) extra_wait_ns: Atomic<u64>,
}

impl TimerOwner for PeerReorder {
    const TIMER_OFFSET: usize = offset_of!(PeerReorder, timer);

    fn fired(&self) {
        // SAFETY: Soft hrtimers fire in softirq context.
        let Some(mut inner) = (unsafe { self.inner.lock_in_softirq() }) else {
            return;
        };
        inner.armed_ns = None;
        let limits = self.limits(&inner);
        let locked = &mut *inner;
        locked
            .buffer
            .expire(ffi::now_ns(), limits, |item, _| locked.queue.push(item));
        self.arm(&mut inner);
        // SAFETY: As above.
        self.deliver_queued(inner, || unsafe { self.inner.lock_in_softirq() });
    }
}

impl PeerReorder {
    /// A buffer that is not usable until [`PeerReorder::init`].
    pub(crate) const fn new() -> Self {
        Self {
            timer: SoftTimer::new(),
            inner: SoftirqLock::new(Inner::EMPTY),
            max_wait_ms: Atomic::new(DEFAULT_MAX_WAIT_MS),
            max_kb: Atomic::new(DEFAULT_MAX_KB),
            extra_wait_ns: Atomic::new(0),
        }
    }

    /// Makes the buffer usable.
    ///
    /// # Safety
    ///
    /// `self` never moves again; called once, before the receive hook can find the buffer;
    /// the owner calls [`PeerReorder::shut_down`] before it is freed.
    pub(crate) unsafe fn init(&self, key: Pin<&'static LockClassKey>) {
        // SAFETY: Once, before anything can reach the lock (the caller's contract).
        unsafe { self.inner.init(c"mpudp_reorder", key) };
        // SAFETY: The timer is this buffer's field at `TIMER_OFFSET`, set up once before
        // anything can start it, and cancelled by `shut_down` before the buffer is freed.
        unsafe { self.timer.setup::<Self>() };
    }

    /// The wait and memory limits now.
    fn limits(&self, inner: &Inner) -> Limits {
        let cap_ns = u64::from(self.max_wait_ms.load(Relaxed)) * 1_000_000;
        Limits {
            wait_ns: reorder::wait_ns(
                &inner.delays,
                MARGIN_NS + self.extra_wait_ns.load(Relaxed),
                cap_ns,
            ),
            max_bytes: self.max_kb.load(Relaxed) as usize * 1024,
        }
    }

    /// Sets the timer for the buffer's deadline, if that is earlier than it is set for.
    fn arm(&self, inner: &mut Inner) {
        if let Some(at) = inner.buffer.deadline() {
            if inner.armed_ns.is_none_or(|armed| at < armed) {
                self.timer.start_at(at, SLACK_NS);
                inner.armed_ns = Some(at);
            }
        }
    }

    /// Delivers the queue, one datagram at a time with the lock dropped, unless another CPU
    /// already does; `relock` takes the lock again the way `inner` was taken.
    fn deliver_queued<G: DerefMut<Target = Inner>>(
        &self,
        mut inner: G,
        relock: impl Fn() -> Option<G>,
    ) {
        if inner.delivering {
            return;
        }
        inner.delivering = true;
        for _ in 0..QUEUE {
            let Some(item) = inner.queue.pop() else {
                inner.delivering = false;
                return;
            };
            drop(inner);
            item.deliver();
            let Some(again) = relock() else {
                // Not reached: the lock was usable a moment ago and stays so.
                return;
            };
            inner = again;
        }
        // Budget spent: the timer goes on with the rest, in another softirq.
        inner.delivering = false;
        if !inner.queue.is_empty() {
            let now = ffi::now_ns();
            self.timer.start_at(now, 0);
            inner.armed_ns = Some(now);
        }
    }

    /// Takes in sequenced datagram `d` with header `header`, from the receive hook; returns
    /// what the hook does with it (passes it on, or has taken it).
    pub(crate) fn arrive(&self, d: &mut Arriving<'_>, header: &DataHeader) -> Verdict {
        let now = ffi::now_ns();
        // SAFETY: The receive hook runs in softirq context.
        let Some(mut inner) = (unsafe { self.inner.lock_in_softirq() }) else {
            return Verdict::Deliver;
        };
        if let Some(delay) = inner.delays.get_mut(usize::from(header.path)) {
            delay.sample(header.sent_us, (now / 1000) as u32);
        }
        let Some(held) = d.take() else {
            inner.unheld += 1;
            return Verdict::Deliver;
        };
        let limits = self.limits(&inner);
        let len = held.truesize();
        let locked = &mut *inner;
        locked
            .buffer
            .arrive(header.seq, held, len, now, limits, |item, _| {
                locked.queue.push(item)
            });
        self.arm(&mut inner);
        // SAFETY: As above.
        self.deliver_queued(inner, || unsafe { self.inner.lock_in_softirq() });
        Verdict::Taken
    }

    /// Takes in datagram `seq`, rebuilt from repair data (`fec_rx.rs`), from the receive hook
    /// (softirq): held and released as an arriving one is, but it says nothing of its path's
    /// delay. Delivered at once if the buffer cannot be locked (the state is going away).
    pub(crate) fn arrive_rebuilt(&self, seq: u32, held: HeldDatagram) {
        let now = ffi::now_ns();
        // SAFETY: The receive hook runs in softirq context.
        let Some(mut inner) = (unsafe { self.inner.lock_in_softirq() }) else {
            held.deliver();
            return;
        };
        let limits = self.limits(&inner);
        let len = held.truesize();
        let locked = &mut *inner;
        locked
            .buffer
            .arrive(seq, held, len, now, limits, |item, _| {
                locked.queue.push(item)
            });
        self.arm(&mut inner);
        // SAFETY: As above.
        self.deliver_queued(inner, || unsafe { self.inner.lock_in_softirq() });
    }

    /// Releases everything held, in order, and delivers it (or, with `deliver` false, frees
    /// it) before returning; the sequence goes on after the last one released. Process
    /// context.
    ///
    /// It does not wait for a CPU that is delivering: it takes datagrams off the queue
    /// alongside it. Two deliverers can then interleave, which only matters at the moment an
    /// interface, the peer or the configuration changes; waiting could last as long as
    /// traffic keeps a deliverer busy, under RTNL. What another CPU took off the queue it
    /// delivers within its softirq, so before an interface that unregisters is freed.
    ///
    /// Bounded: at most what was held and queued when it started, plus as many arrivals
    /// meanwhile; anything later is left to the timer.
    pub(crate) fn flush(&self, deliver: bool) {
        let Some(inner) = self.inner.lock_irq() else {
            return;
        };
        let mut budget = 2 * (inner.buffer.held() + inner.queue.len()) + 1;
        drop(inner);
        while budget > 0 {
            let Some(mut inner) = self.inner.lock_irq() else {
                return;
            };
            if let Some(item) = inner.queue.pop() {
                budget -= 1;
                // Delivered, or freed, with the lock dropped and interrupts on.
                drop(inner);
                if deliver {
                    item.deliver();
                } else {
                    drop(item);
                }
                continue;
            }
            if inner.buffer.held() == 0 {
                return;
            }
            // The queue is empty, and it holds more than the buffer can: nothing is dropped.
            let locked = &mut *inner;
            locked.buffer.flush(|item, _| locked.queue.push(item));
        }
        // Traffic kept coming: the timer delivers the rest.
        if let Some(mut inner) = self.inner.lock_irq() {
            let now = ffi::now_ns();
            self.timer.start_at(now, 0);
            inner.armed_ns = Some(now);
        }
    }

    /// Delivers (or, with `deliver` false, frees) everything held and stops the timer, for
    /// good: call once nothing can hand the buffer datagrams or flush it any more (the receive
    /// hook is unregistered, or can no longer find this peer). Process context.
    pub(crate) fn shut_down(&self, deliver: bool) {
        self.flush(deliver);
        // A flush that ran out of budget, or a deliverer, may have armed the timer: after the
        // cancel nothing can, and the second flush empties what the first left.
        self.timer.cancel();
        self.flush(deliver);
    }

    /// The peer started a new session (its probe carried another token), in the receive hook:
    /// what the old session left is released in order and delivered, and the sequence and the
    /// measured delays are forgotten. Bounded: at most [`SLOTS`] datagrams move to the queue,
    /// which has room for twice that.
    pub(crate) fn new_session(&self, next_seq: u32) {
        // SAFETY: Called from the receive hook, in softirq context.
        let Some(mut inner) = (unsafe { self.inner.lock_in_softirq() }) else {
            return;
        };
        let locked = &mut *inner;
        locked.buffer.flush(|item, _| locked.queue.push(item));
        locked.buffer.start_at(next_seq);
        locked.delays = [RelativeDelay::UNMEASURED; MAX_PATHS];
        // SAFETY: As above.
        self.deliver_queued(inner, || unsafe { self.inner.lock_in_softirq() });
    }

    /// Forgets the sequence and the measured delays (a new session or peer; call after
    /// [`PeerReorder::flush`]). Process context.
    pub(crate) fn forget_session(&self) {
        if let Some(mut inner) = self.inner.lock_irq() {
            inner.buffer.forget();
            inner.delays = [RelativeDelay::UNMEASURED; MAX_PATHS];
        }
    }

    /// The counters and current state, for sysfs. Process context.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let Some(inner) = self.inner.lock_irq() else {
            return Snapshot::default();
        };
        let (spread_us, _) = reorder::delay_spread_us(&inner.delays);
        Snapshot {
            counters: inner.buffer.counters,
            held: inner.buffer.held(),
            held_bytes: inner.buffer.held_bytes(),
            queue_drops: inner.queue.drops,
            unheld: inner.unheld,
            wait_us: self.limits(&inner).wait_ns / 1000,
            spread_us,
        }
    }
}
