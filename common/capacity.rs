// SPDX-License-Identifier: GPL-2.0

//! Each path's capacity, measured by the receiver from the dispersion of the sender's own
//! datagrams, pure logic.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`). `mpudp_recv` feeds every sequenced datagram of a path into its
//! [`PathRate`] and reports [`PathRate::capacity_kbps`] in each probe reply; `mpudp_send`'s
//! `rate` scheduler (`rate_sched.rs`) gives each path a share in proportion.
//!
//! Why dispersion: datagrams that reach a path's bottleneck faster than it forwards them
//! leave it one transmission time apart, whatever the sender's rate; datagrams sent slower
//! arrive as they were sent. So the rate at which a *run* of datagrams arrives (datagrams of
//! the path that follow each other without the path going idle in between) is never above the
//! path's capacity, and equals it whenever the sender bursts faster than the path, as
//! tunnelled TCP does (a GSO segment leaves as tens of datagrams back to back), or sends more
//! than the path carries. A path's delivered rate alone would equal whatever share it is
//! given, so a scheduler following it would keep any split it started from; dispersion
//! measures what the path *could* carry without filling it.
//!
//! - A datagram extends the run when it is the next of the path's sequence and arrived no
//!   earlier, relative to the previous one, than it was sent, less [`IDLE_TOLERANCE_NS`]
//!   (arrival jitter). Otherwise the path was idle in between, or a datagram was lost or
//!   reordered: the run ends and a new one starts with it.
//! - Datagrams that arrive within [`BATCH_NS`] of a run's first were released together with
//!   it (a timer that fired late at a rate-limiting queue lets out everything that became due
//!   meanwhile; a busy receiver takes a backlog at once): the run's measured span starts
//!   again at the last of them. Measured from the first, a late first datagram would shorten
//!   the span and read up to a third too high under emulation (seen: 12.9 Mbit/s on a
//!   10 Mbit/s path).
//! - A run measures once it holds at least [`RUN_MIN_DATAGRAMS`] datagrams over at least
//!   [`RUN_MIN_NS`] (so that a millisecond of jitter moves a reading by at most a tenth); its
//!   rate is the bytes after its first datagram over the time from the first's arrival to
//!   the last's. A run is cut (measured and restarted) every [`RUN_MAX_NS`], so a path that
//!   never goes idle is measured continuously.
//! - A run that arrived spread out by at least a quarter more than it was sent was spaced by
//!   the path's bottleneck: its reading *is* the capacity, now, and replaces whatever was
//!   read before (the largest of such readings within [`QUEUED_MERGE_NS`] counts). So a path
//!   whose capacity drops is read anew as soon as the datagrams sent at the old rate queue
//!   (within a run or two, a fifth of a second).
//! - Any other run arrived as sent (the sender was slower than the path, or exactly as fast
//!   under a standing queue): its reading is a lower bound, kept as the capacity while it is
//!   the largest of the last one to two [`WINDOW_NS`]. A path the sender does not fill
//!   keeps what it showed for two seconds: the tunnelled TCP slowing down for a moment (a
//!   loss, another path's queue) must not read as the path's capacity falling, which would
//!   move its share to the other paths and slow the TCP further.
//!
//! Arithmetic is in integers, saturating; the clocks are the receiver's (arrival, ns) and
//! the sender's (send time from the data header, wrapping µs): only differences are used.

/// Arrival jitter tolerated within a run (ns): a datagram that arrives this much sooner
/// after its predecessor than it was sent after it still continues the run.
pub(crate) const IDLE_TOLERANCE_NS: u64 = 1_000_000;
/// Datagrams arriving this soon after a run's first were released in one batch with it
/// (ns).
pub(crate) const BATCH_NS: u64 = 500_000;
/// Fewest datagrams in a run that measures.
pub(crate) const RUN_MIN_DATAGRAMS: u32 = 4;
/// Shortest run that measures (ns).
pub(crate) const RUN_MIN_NS: u64 = 10_000_000;
/// A run is measured and restarted once it spans this long (ns).
pub(crate) const RUN_MAX_NS: u64 = 100_000_000;
/// Readings of runs the bottleneck spaced that are this close together (ns) count as one
/// measurement: the largest of them.
pub(crate) const QUEUED_MERGE_NS: u64 = 200_000_000;
/// The lower bounds' max filter window (ns): they count for one to two of them.
pub(crate) const WINDOW_NS: u64 = 1_000_000_000;

/// The latest datagram of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Arrival {
    path_seq: u32,
    sent_us: u32,
    arrived_ns: u64,
}

/// One path's run and capacity readings at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathRate {
    last: Option<Arrival>,
    /// When the current run's first datagram arrived (ns).
    run_first_ns: u64,
    /// Where its measured span starts (ns): the arrival of the last datagram of its first
    /// batch, and that datagram's send time (µs, sender's clock).
    run_start_ns: u64,
    run_start_sent_us: u32,
    /// Bytes of the run's datagrams after its first.
    run_bytes: u64,
    /// Datagrams in the run, its first included.
    run_datagrams: u32,
    /// When the current window started (ns).
    window_start_ns: u64,
    /// The largest reading of the current window and of the one before, kbit/s (0: none).
    current_kbps: u32,
    previous_kbps: u32,
    /// The latest measurement by a run the bottleneck spaced, kbit/s, and when it began.
    queued_kbps: u32,
    queued_at_ns: u64,
}

impl Default for PathRate {
    fn default() -> Self {
        Self::new()
    }
}

impl PathRate {
    /// A path nothing arrived on.
    pub(crate) const fn new() -> Self {
        Self {
            last: None,
            run_first_ns: 0,
            run_start_ns: 0,
            run_start_sent_us: 0,
            run_bytes: 0,
            run_datagrams: 0,
            window_start_ns: 0,
            current_kbps: 0,
            previous_kbps: 0,
            queued_kbps: 0,
            queued_at_ns: 0,
        }
    }

    /// Takes in datagram number `path_seq` of the path, sent at `sent_us` on the sender's
    /// clock, arrived at `arrived_ns`, `bytes` long on the wire.
    pub(crate) fn arrive(&mut self, path_seq: u32, sent_us: u32, arrived_ns: u64, bytes: u32) {
        let follows = self.last.is_some_and(|last| {
            let send_gap_us = sent_us.wrapping_sub(last.sent_us);
            path_seq == last.path_seq.wrapping_add(1)
                && arrived_ns >= last.arrived_ns
                // A send time before the previous one's wraps to a huge gap: not a run.
                && send_gap_us < 1 << 31
                && arrived_ns - last.arrived_ns + IDLE_TOLERANCE_NS
                    >= u64::from(send_gap_us) * 1000
        });
        let this = Arrival {
            path_seq,
            sent_us,
            arrived_ns,
        };
        if follows && arrived_ns - self.run_first_ns < BATCH_NS {
            // Released with the run's first: the span starts here, without its bytes.
            self.run_start_ns = arrived_ns;
            self.run_start_sent_us = sent_us;
        } else if follows {
            self.run_bytes = self.run_bytes.saturating_add(u64::from(bytes));
            self.run_datagrams = self.run_datagrams.saturating_add(1);
            if arrived_ns - self.run_start_ns >= RUN_MAX_NS {
                self.measure(&this, arrived_ns);
                self.start_run(&this);
            }
        } else {
            if let Some(last) = self.last {
                self.measure(&last, arrived_ns);
            }
            self.start_run(&this);
        }
        self.last = Some(this);
    }

    fn start_run(&mut self, first: &Arrival) {
        self.run_first_ns = first.arrived_ns;
        self.run_start_ns = first.arrived_ns;
        self.run_start_sent_us = first.sent_us;
        self.run_bytes = 0;
        self.run_datagrams = 1;
    }

    /// Ends the run at its last datagram `end` and keeps its rate, if it is long enough, as a
    /// reading taken at `now_ns`.
    fn measure(&mut self, end: &Arrival, now_ns: u64) {
        let span_ns = end.arrived_ns.saturating_sub(self.run_start_ns);
        if self.run_datagrams < RUN_MIN_DATAGRAMS || span_ns < RUN_MIN_NS {
            return;
        }
        // bytes · 8 bit / span_ns · 10^9 ns/s / 1000 bit/kbit
        let kbps = self.run_bytes.saturating_mul(8_000_000) / span_ns;
        let kbps = u32::try_from(kbps).unwrap_or(u32::MAX);
        // Within a run the send times only grow (`follows`): no wrap to undo.
        let sent_span_ns = u64::from(end.sent_us.wrapping_sub(self.run_start_sent_us)) * 1000;
        self.roll(now_ns);
        if sent_span_ns.saturating_mul(5) <= span_ns.saturating_mul(4) {
            // Spaced by the bottleneck: the capacity now.
            if self.queued_kbps == 0 || now_ns.saturating_sub(self.queued_at_ns) >= QUEUED_MERGE_NS
            {
                self.queued_kbps = kbps;
                self.queued_at_ns = now_ns;
            } else {
                self.queued_kbps = self.queued_kbps.max(kbps);
            }
            self.current_kbps = self.queued_kbps;
            self.previous_kbps = 0;
        } else {
            self.current_kbps = self.current_kbps.max(kbps);
        }
    }

    /// Starts a new window if the current one is over at `now_ns`.
    fn roll(&mut self, now_ns: u64) {
        let age = now_ns.saturating_sub(self.window_start_ns);
        if age >= WINDOW_NS {
            self.previous_kbps = if age >= 2 * WINDOW_NS {
                0
            } else {
                self.current_kbps
            };
            self.current_kbps = 0;
            self.window_start_ns = now_ns;
        }
    }

    /// The path's capacity at `now_ns`, kbit/s (see the rules above); `None` without a
    /// reading in the last one to two windows (too few datagrams, or no run long enough).
    pub(crate) fn capacity_kbps(&self, now_ns: u64) -> Option<u32> {
        let age = now_ns.saturating_sub(self.window_start_ns);
        let kbps = if age >= 2 * WINDOW_NS {
            0
        } else if age >= WINDOW_NS {
            self.current_kbps
        } else {
            self.current_kbps.max(self.previous_kbps)
        };
        (kbps > 0).then_some(kbps)
    }
}
