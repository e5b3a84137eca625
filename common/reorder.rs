// SPDX-License-Identifier: GPL-2.0

//! The reorder buffer, pure logic: which of a peer's sequenced datagrams to deliver now, which
//! to hold while a gap before them can still be filled, and when a held one must go.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`). The kernel side (the skbs, the peer's lock, the hrtimer) lives in
//! the modules; it calls [`Reorder::arrive`] for each datagram, [`Reorder::expire`] when the
//! timer set to [`Reorder::deadline`] fires, and [`Reorder::flush`] on unload.
//!
//! Rules:
//! - Datagrams are delivered in sequence order. One that arrives after a gap is held while
//!   the gap can still be filled: at most [`Limits::wait_ns`] from its own arrival.
//! - Nothing is dropped for being late: a datagram behind the delivered sequence goes at once.
//! - Held datagrams are bounded by the slot count `N` and by [`Limits::max_bytes`]: when a
//!   new one would exceed either, the oldest gaps are given up (their datagrams released in
//!   order) until it fits.
//! - Per datagram, the work is constant apart from releasing what it unblocks (each held
//!   datagram is released once); the timer's work is two passes over the window.
//! - The wait ([`wait_ns`]) is what a gap can still be filled in: the spread of the paths'
//!   one-way delays ([`RelativeDelay`]), twice the peak deviation and a margin, capped.

/// A sequence number further than this from the expected one, either way, means the peer
/// started again (a module reload or a new peer): the buffer resynchronises to it.
pub(crate) const RESYNC_DISTANCE: u32 = 1 << 16;

/// How long a datagram may wait, and how much a peer may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The longest a held datagram waits for the gap before it to fill, in ns.
    pub(crate) wait_ns: u64,
    /// The most payload bytes held at once.
    pub(crate) max_bytes: usize,
}

/// Why a datagram was delivered when it was; the kernel side counts each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// It arrived in order (nothing missing before it) and went at once.
    InOrder,
    /// It was held, and the gap before it filled.
    Filled,
    /// It was held, and its wait ended with the gap still open.
    Timeout,
    /// It was held, and a newer datagram needed its slot or its bytes.
    Overflow,
    /// It arrived behind the delivered sequence (a gap given up, or a duplicate) and went at
    /// once.
    Late,
    /// The buffer was flushed (unload, namespace exit, peer change), or resynchronised.
    Flush,
}

/// Counters of what the buffer did; the kernel side shows them in sysfs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Datagrams that arrived in order (nothing missing before them) and went at once.
    pub(crate) in_order: u64,
    /// Datagrams that had to wait.
    pub(crate) held: u64,
    /// Held datagrams released because the gap before them filled.
    pub(crate) filled: u64,
    /// Held datagrams released because their wait ended.
    pub(crate) timeout: u64,
    /// Datagrams released early for lack of slots or bytes: held ones, and new ones too far
    /// ahead to be held.
    pub(crate) overflow: u64,
    /// Datagrams that arrived behind the delivered sequence.
    pub(crate) late: u64,
    /// Times the sequence jumped and the buffer started again.
    pub(crate) resyncs: u64,
    /// The most datagrams held at once.
    pub(crate) deepest: u64,
    /// Sequence numbers given up: gaps that delivery moved past (their wait ended, the
    /// buffer overflowed or was flushed). What loss, and loss recovery, left the application
    /// to see; a datagram that still comes after its gap was given up counts in `late` too.
    pub(crate) skipped: u64,
}

struct Slot<T> {
    item: Option<T>,
    seq: u32,
    arrived_ns: u64,
    len: usize,
}

/// One peer's reorder buffer with `N` slots (a power of two) for datagrams of type `T`.
pub(crate) struct Reorder<T, const N: usize> {
    slots: [Slot<T>; N],
    /// The sequence number delivery waits for; meaningless until `started`.
    next: u32,
    started: bool,
    held: usize,
    held_bytes: usize,
    /// No held datagram's wait ends before this (it may end later: the timer then finds
    /// nothing to release and looks again). `None` when nothing is held.
    deadline: Option<u64>,
    pub(crate) counters: Counters,
}

impl<T, const N: usize> Default for Reorder<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Reorder<T, N> {
    const SLOTS_ARE_A_POWER_OF_TWO: () = assert!(N.is_power_of_two() && N <= 1 << 15);

    /// An empty buffer, waiting for its first datagram.
    pub(crate) const fn new() -> Self {
        let () = Self::SLOTS_ARE_A_POWER_OF_TWO;
        Self {
            slots: [const {
                Slot {
                    item: None,
                    seq: 0,
                    arrived_ns: 0,
                    len: 0,
                }
            }; N],
            next: 0,
            started: false,
            held: 0,
            held_bytes: 0,
            deadline: None,
            counters: Counters {
                in_order: 0,
                held: 0,
                filled: 0,
                timeout: 0,
                overflow: 0,
                late: 0,
                resyncs: 0,
                deepest: 0,
                skipped: 0,
            },
        }
    }

    /// How many datagrams are held.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// How many payload bytes are held.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// When [`Reorder::expire`] should run next, if anything is held.
    pub(crate) fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    fn slot(&mut self, seq: u32) -> &mut Slot<T> {
        &mut self.slots[seq as usize & (N - 1)]
    }

    /// Takes the datagram held for `seq`, if any.
    fn take(&mut self, seq: u32) -> Option<T> {
        let slot = self.slot(seq);
        if slot.seq != seq {
            return None;
        }
        let item = slot.item.take()?;
        let len = slot.len;
        self.held -= 1;
        self.held_bytes -= len;
        if self.held == 0 {
            self.deadline = None;
        }
        Some(item)
    }

    /// Delivers the held datagrams that follow `next` without a gap.
    fn drain(&mut self, why: Release, deliver: &mut impl FnMut(T, Release)) {
        while self.held > 0 {
            let Some(item) = self.take(self.next) else {
                break;
            };
            self.next = self.next.wrapping_add(1);
            match why {
                Release::Filled => self.counters.filled += 1,
                Release::Timeout => self.counters.timeout += 1,
                Release::Overflow => self.counters.overflow += 1,
                _ => {}
            }
            deliver(item, why);
        }
    }

    /// Gives up the gap at `next`: delivers everything up to the next held datagram and the
    /// run that follows it.
    fn skip_gap(&mut self, why: Release, deliver: &mut impl FnMut(T, Release)) {
        // Bounded: the first held datagram is less than `N` ahead.
        for _ in 0..N {
            if self.held == 0 {
                return;
            }
            let occupied = {
                let next = self.next;
                let slot = self.slot(next);
                slot.item.is_some() && slot.seq == next
            };
            if occupied {
                break;
            }
            self.next = self.next.wrapping_add(1);
            self.counters.skipped += 1;
        }
        self.drain(why, deliver);
    }

    /// Delivers everything held, in order. The sequence goes on after the last one delivered:
    /// what is still missing before it counts as late when it comes.
    pub(crate) fn flush(&mut self, mut deliver: impl FnMut(T, Release)) {
        while self.held > 0 {
            self.skip_gap(Release::Flush, &mut deliver);
        }
    }

    /// Forgets the sequence (call after [`Reorder::flush`]): the next datagram starts it again
    /// (a new session).
    pub(crate) fn forget(&mut self) {
        self.started = self.held > 0;
    }

    /// Starts the sequence at `seq`, the number the sender announced for its next datagram
    /// (call after [`Reorder::flush`]; nothing is held then, else it changes nothing). Started
    /// at whichever datagram arrives first instead, a session whose first datagram went over
    /// a slower path would deliver it late, after the next one.
    pub(crate) fn start_at(&mut self, seq: u32) {
        if self.held == 0 {
            self.started = true;
            self.next = seq;
        }
    }

    /// Datagram `item` with sequence number `seq` and `len` payload bytes arrived at `now_ns`.
    /// Calls `deliver` for it and for every held datagram it unblocks, in delivery order.
    pub(crate) fn arrive(
        &mut self,
        seq: u32,
        item: T,
        len: usize,
        now_ns: u64,
        limits: Limits,
        mut deliver: impl FnMut(T, Release),
    ) {
        if !self.started {
            self.started = true;
            self.next = seq;
        }
        let ahead = seq.wrapping_sub(self.next);
        let behind = self.next.wrapping_sub(seq);
        if ahead >= RESYNC_DISTANCE && behind > RESYNC_DISTANCE {
            // Neither a little ahead nor a little behind: the peer started again.
            self.counters.resyncs += 1;
            self.flush(&mut deliver);
            self.started = true;
            self.next = seq;
        } else if ahead >= RESYNC_DISTANCE {
            self.counters.late += 1;
            deliver(item, Release::Late);
            return;
        }
        let ahead = seq.wrapping_sub(self.next);
        if ahead == 0 {
            self.next = self.next.wrapping_add(1);
            self.counters.in_order += 1;
            deliver(item, Release::InOrder);
            self.drain(Release::Filled, &mut deliver);
            return;
        }
        // Make room: the window must reach `seq`, and the bytes must fit.
        while self.held > 0
            && (seq.wrapping_sub(self.next) >= N as u32 || self.held_bytes + len > limits.max_bytes)
        {
            self.skip_gap(Release::Overflow, &mut deliver);
        }
        let ahead = seq.wrapping_sub(self.next);
        if ahead == 0 || ahead >= N as u32 || len > limits.max_bytes {
            // Nothing left to wait for, or it can never fit: it goes now, and the gap
            // before it (if any) is given up.
            if ahead != 0 {
                self.counters.overflow += 1;
                // Nothing is held before it (the loop above released all that was).
                self.counters.skipped += u64::from(ahead);
            } else {
                self.counters.in_order += 1;
            }
            self.next = seq.wrapping_add(1);
            deliver(
                item,
                if ahead == 0 {
                    Release::InOrder
                } else {
                    Release::Overflow
                },
            );
            self.drain(Release::Filled, &mut deliver);
            return;
        }
        let duplicate = {
            let slot = self.slot(seq);
            slot.item.is_some() && slot.seq == seq
        };
        if duplicate {
            self.counters.late += 1;
            deliver(item, Release::Late);
            return;
        }
        let slot = self.slot(seq);
        *slot = Slot {
            item: Some(item),
            seq,
            arrived_ns: now_ns,
            len,
        };
        self.held += 1;
        self.held_bytes += len;
        self.counters.held += 1;
        self.counters.deepest = self.counters.deepest.max(self.held as u64);
        let due = now_ns.saturating_add(limits.wait_ns);
        self.deadline = Some(self.deadline.map_or(due, |d| d.min(due)));
    }

    /// The timer fired at `now_ns`: releases, in order, every held datagram whose wait has
    /// ended and everything before it, and sets the next deadline.
    pub(crate) fn expire(
        &mut self,
        now_ns: u64,
        limits: Limits,
        mut deliver: impl FnMut(T, Release),
    ) {
        if self.held == 0 {
            self.deadline = None;
            return;
        }
        // The furthest held datagram whose wait has ended: everything up to it goes.
        let last_due = self
            .held_slots()
            .filter(|slot| slot.arrived_ns.saturating_add(limits.wait_ns) <= now_ns)
            .map(|slot| slot.seq)
            .last();
        if let Some(last) = last_due {
            while self.held > 0 && last.wrapping_sub(self.next) < N as u32 {
                self.skip_gap(Release::Timeout, &mut deliver);
            }
        }
        // The next deadline: the earliest arrival still held.
        let earliest = self.held_slots().map(|slot| slot.arrived_ns).min();
        self.deadline = earliest.map(|t| t.saturating_add(limits.wait_ns));
    }

    /// The held slots in sequence order from `next`. The walk ends at the last held one, not
    /// at the window's end: the window is 1,024 wide, and mostly only its start is held.
    fn held_slots(&self) -> impl Iterator<Item = &Slot<T>> {
        let mut left = self.held;
        (0..N as u32)
            .map_while(move |offset| {
                (left > 0).then(|| {
                    let seq = self.next.wrapping_add(offset);
                    let slot = &self.slots[seq as usize & (N - 1)];
                    let held = slot.item.is_some() && slot.seq == seq;
                    left -= usize::from(held);
                    held.then_some(slot)
                })
            })
            .flatten()
    }
}

/// A first-in, first-out queue of at most `N` items, without allocation: the datagrams that
/// the buffer released and that wait for the one CPU that delivers them, in order.
pub(crate) struct Fifo<T, const N: usize> {
    items: [Option<T>; N],
    /// Index of the oldest item.
    head: usize,
    len: usize,
}

impl<T, const N: usize> Default for Fifo<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Fifo<T, N> {
    /// An empty queue.
    pub(crate) const fn new() -> Self {
        Self {
            items: [const { None }; N],
            head: 0,
            len: 0,
        }
    }

    /// How many items wait.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `item`; gives it back when the queue is full.
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        if self.len == N {
            return Err(item);
        }
        self.items[(self.head + self.len) % N] = Some(item);
        self.len += 1;
        Ok(())
    }

    /// Takes the oldest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let item = self.items[self.head].take();
        self.head = (self.head + 1) % N;
        self.len -= 1;
        item
    }
}

/// One path's one-way delay as seen by the receiver, relative to the sender's clock: arrival
/// time (receiver's clock) minus send time (sender's clock, from the data header), smoothed as
/// RFC 6298 smooths RTT. The unknown offset between the two clocks is the same on every path,
/// so differences between paths are true delay differences. Both clocks are 32-bit
/// microsecond counters that wrap (every 71 minutes): values are kept modulo 2^32, and only
/// differences between paths, taken the same way, are meaningful.
///
/// The deviation is a peak, not a mean: it jumps to any larger deviation at once and decays
/// by 1/[`DEVIATION_DECAY`] per sample. A gap's filler that is late by a rare spike must not
/// be given up on, and a mean deviation forgets a spike within a few samples, before the
/// next one comes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RelativeDelay {
    /// Smoothed relative delay, us, modulo 2^32; meaningless before the first sample.
    pub(crate) smoothed_us: u32,
    /// Its peak deviation, us (decaying, as above).
    pub(crate) deviation_us: u32,
    /// Whether any sample arrived.
    pub(crate) valid: bool,
}

impl RelativeDelay {
    /// A path no datagram has arrived on.
    pub(crate) const UNMEASURED: Self = Self {
        smoothed_us: 0,
        deviation_us: 0,
        valid: false,
    };

    /// Folds in a datagram sent at `sent_us` (sender's clock) that arrived at `arrived_us`
    /// (receiver's clock).
    pub(crate) fn sample(&mut self, sent_us: u32, arrived_us: u32) {
        let r = arrived_us.wrapping_sub(sent_us);
        if !self.valid {
            self.valid = true;
            self.smoothed_us = r;
            self.deviation_us = 0;
        } else {
            // Samples of one path are close to each other: their difference fits an i32.
            let err = r.wrapping_sub(self.smoothed_us) as i32;
            let deviation = err.unsigned_abs();
            self.deviation_us = if deviation > self.deviation_us {
                deviation
            } else {
                self.deviation_us - self.deviation_us.div_ceil(DEVIATION_DECAY)
            };
            self.smoothed_us = self.smoothed_us.wrapping_add((err / 8) as u32);
        }
    }

    /// How much later than `other` this path delivers, in us (negative: earlier).
    pub(crate) fn later_than_us(&self, other: &Self) -> i64 {
        i64::from(self.smoothed_us.wrapping_sub(other.smoothed_us) as i32)
    }
}

/// A path's peak deviation loses 1/this of itself per sample: at 1,000 datagrams/s on the
/// path, it halves in about a third of a second.
pub(crate) const DEVIATION_DECAY: u32 = 512;

/// The spread of the measured paths' one-way delays (slowest minus fastest) and their
/// largest deviation, both in us; zeros with fewer than two measured paths.
pub(crate) fn delay_spread_us(paths: &[RelativeDelay]) -> (u64, u64) {
    let mut measured = paths.iter().filter(|p| p.valid);
    let Some(first) = measured.next() else {
        return (0, 0);
    };
    let (mut lo, mut hi, mut dev) = (0i64, 0i64, u64::from(first.deviation_us));
    let mut count = 1;
    for p in measured {
        let later = p.later_than_us(first);
        lo = lo.min(later);
        hi = hi.max(later);
        dev = dev.max(p.deviation_us.into());
        count += 1;
    }
    if count < 2 {
        return (0, 0);
    }
    (hi.abs_diff(lo), dev)
}

/// How long a held datagram may wait for the gap before it: the spread of the paths' delays
/// (slowest minus fastest) plus twice the largest peak deviation plus `margin_ns`, at most
/// `cap_ns`. With fewer than two measured paths there is no spread, and the wait is the
/// margin (reordering then comes from jitter only).
pub(crate) fn wait_ns(paths: &[RelativeDelay], margin_ns: u64, cap_ns: u64) -> u64 {
    let (spread_us, deviation_us) = delay_spread_us(paths);
    spread_us
        .saturating_add(deviation_us.saturating_mul(2))
        .saturating_mul(1000)
        .saturating_add(margin_ns)
        .min(cap_ns)
}
