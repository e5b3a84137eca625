// SPDX-License-Identifier: GPL-2.0

//! Path probing, pure logic: RTT samples and smoothing, the loss window, the failover rule
//! and the `rtt` scheduler's step. The messages themselves are `control.rs`'s.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`). The kernel side (sockets, threads, atomics) lives in the modules.

/// The two paths, as numbered on the wire (the path index of `seq.rs` and `control.rs`) and
/// in the per-path tables.
pub(crate) const PRIMARY: usize = 0;
/// See [`PRIMARY`].
pub(crate) const SECONDARY: usize = 1;

/// The round-trip time of one answered probe, in microseconds: the answer's arrival minus the
/// probe's send time, both on this host's monotonic clock (the prober's own send record: no
/// time the peer reports is trusted). `None` for an impossible sample, which is ignored.
pub(crate) fn rtt_sample_us(sent_ns: u64, arrived_ns: u64) -> Option<u64> {
    let rtt_ns = arrived_ns.checked_sub(sent_ns)?;
    // Nothing real takes a minute to come back.
    (rtt_ns < 60_000_000_000).then_some(rtt_ns / 1000)
}

/// Smoothed RTT and its variation, as RFC 6298 section 2 computes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RttEstimator {
    /// Smoothed RTT, us; 0 before the first sample.
    pub(crate) srtt_us: u64,
    /// RTT variation, us.
    pub(crate) rttvar_us: u64,
}

impl RttEstimator {
    /// Folds in one sample (alpha = 1/8, beta = 1/4).
    pub(crate) fn sample(&mut self, r_us: u64) {
        if self.srtt_us == 0 {
            self.srtt_us = r_us.max(1);
            self.rttvar_us = r_us / 2;
        } else {
            let err = self.srtt_us.abs_diff(r_us);
            self.rttvar_us = (3 * self.rttvar_us + err) / 4;
            self.srtt_us = ((7 * self.srtt_us + r_us) / 8).max(1);
        }
    }
}

/// The smallest RTT sample of the last 5 to 10 s: the path's RTT without a queue, so that
/// `srtt - min` is the path's queueing delay (the `rate` scheduler's queue guard). Two
/// buckets of [`MinRtt::BUCKET_NS`]; the minimum is the smaller of the current one's and the
/// previous one's, so a path whose base delay grows reads it within 10 s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MinRtt {
    /// When the current bucket started (ns).
    bucket_start_ns: u64,
    /// The smallest sample of the current bucket and of the previous one, us (0: none).
    current_us: u64,
    previous_us: u64,
}

impl MinRtt {
    /// How long one bucket lasts (ns).
    pub(crate) const BUCKET_NS: u64 = 5_000_000_000;

    /// No sample yet.
    pub(crate) const fn new() -> Self {
        Self {
            bucket_start_ns: 0,
            current_us: 0,
            previous_us: 0,
        }
    }

    /// Folds in an RTT sample `r_us` taken at `now_ns`.
    pub(crate) fn sample(&mut self, r_us: u64, now_ns: u64) {
        let age = now_ns.saturating_sub(self.bucket_start_ns);
        if age >= Self::BUCKET_NS {
            self.previous_us = if age >= 2 * Self::BUCKET_NS {
                0
            } else {
                self.current_us
            };
            self.current_us = 0;
            self.bucket_start_ns = now_ns;
        }
        let r_us = r_us.max(1);
        if self.current_us == 0 || r_us < self.current_us {
            self.current_us = r_us;
        }
    }

    /// The smallest sample of the last 5 to 10 s, us; 0 without one.
    pub(crate) fn min_us(&self) -> u64 {
        match (self.current_us, self.previous_us) {
            (0, previous) => previous,
            (current, 0) => current,
            (current, previous) => current.min(previous),
        }
    }
}

/// How many recent probes the loss estimate covers per path.
pub(crate) const LOSS_WINDOW: usize = 100;

/// The last [`LOSS_WINDOW`] probes sent on one path and whether each was answered.
pub(crate) struct LossWindow {
    /// (sequence number, send time in ns, answered), indexed by sequence number.
    probes: [(u32, u64, bool); LOSS_WINDOW],
    sent: u32,
}

impl LossWindow {
    /// No probes yet.
    pub(crate) const fn new() -> Self {
        Self {
            probes: [(0, 0, false); LOSS_WINDOW],
            sent: 0,
        }
    }

    /// Back to [`LossWindow::new`], in place (no window-sized temporary on the stack).
    pub(crate) fn clear(&mut self) {
        self.probes.fill((0, 0, false));
        self.sent = 0;
    }

    /// Whether no probe was recorded since it was made or cleared.
    pub(crate) fn is_empty(&self) -> bool {
        self.sent == 0
    }

    /// Records a probe sent at `now_ns` and returns its sequence number.
    pub(crate) fn sent(&mut self, now_ns: u64) -> u32 {
        let seq = self.sent;
        self.sent = self.sent.wrapping_add(1);
        self.probes[seq as usize % LOSS_WINDOW] = (seq, now_ns, false);
        seq
    }

    /// Marks probe `seq` answered, if it is still in the window and was not answered before;
    /// returns when it was sent, for its RTT.
    pub(crate) fn answered(&mut self, seq: u32) -> Option<u64> {
        let entry = &mut self.probes[seq as usize % LOSS_WINDOW];
        let fresh = entry.0 == seq && entry.1 != 0 && !entry.2;
        if fresh {
            entry.2 = true;
        }
        fresh.then_some(entry.1)
    }

    /// Lost probes per million among those sent before `now_ns - timeout_ns` (probes younger
    /// than that may still be answered); `None` while no probe is old enough.
    pub(crate) fn loss_ppm(&self, now_ns: u64, timeout_ns: u64) -> Option<u32> {
        let (mut judged, mut lost) = (0u64, 0u64);
        for &(_, sent_ns, answered) in &self.probes {
            if sent_ns != 0 && now_ns.saturating_sub(sent_ns) > timeout_ns {
                judged += 1;
                lost += u64::from(!answered);
            }
        }
        // None when nothing was judged yet. At most 1e6 (lost <= judged), which fits a u32.
        (lost * 1_000_000).checked_div(judged).map(|ppm| ppm as u32)
    }
}

/// A path's state as probing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathState {
    /// No answer yet: the peer may not run a responder. The fixed split applies.
    Unknown = 0,
    /// Probes are answered.
    Up = 1,
    /// Probes went unanswered too long after this path (or the other one) was answered: it
    /// carries no data until a probe is answered again.
    Down = 2,
}

impl PathState {
    /// The inverse of `as u32`.
    pub(crate) fn from_u32(v: u32) -> Self {
        match v {
            1 => PathState::Up,
            2 => PathState::Down,
            _ => PathState::Unknown,
        }
    }

    /// The word sysfs shows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PathState::Unknown => "unknown",
            PathState::Up => "up",
            PathState::Down => "down",
        }
    }
}

/// The failover rule, applied when no answer arrived: a path falls `Down` once it has been
/// silent (no answer since `silent_since_ns`) for longer than `overdue_ns`, if it was `Up`
/// or if the other path is `Up` (so the peer does answer). Without any answer at all both
/// paths stay `Unknown`: the peer runs no responder and the fixed split applies.
pub(crate) fn judge(
    state: PathState,
    silent_since_ns: u64,
    now_ns: u64,
    overdue_ns: u64,
    other_up: bool,
) -> PathState {
    let silent = now_ns.saturating_sub(silent_since_ns) > overdue_ns;
    match state {
        PathState::Up if silent => PathState::Down,
        PathState::Unknown if silent && other_up => PathState::Down,
        other => other,
    }
}

/// How long a path may stay silent before it is down: `down_after` probe intervals plus the
/// time an answer may legitimately take (srtt + 4 rttvar, the RFC 6298 timeout).
pub(crate) fn overdue_ns(down_after: u32, interval_ms: u32, rtt: &RttEstimator) -> u64 {
    u64::from(down_after) * u64::from(interval_ms) * 1_000_000
        + (rtt.srtt_us + 4 * rtt.rttvar_us) * 1000
}

/// What the `rtt` scheduler knows about one path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PathView {
    /// Smoothed RTT, us (includes the path's current queueing delay: probes share its queue).
    pub(crate) srtt_us: u64,
    /// Loss estimate, per million.
    pub(crate) loss_ppm: u32,
    /// What this host sent on the path recently, kbit/s.
    pub(crate) sent_kbps: u64,
    /// What the peer reports receiving on the path over the same time, kbit/s.
    pub(crate) delivered_kbps: u64,
}

impl PathView {
    /// The scheduler's cost of the path: srtt, doubled by each percent of loss
    /// (`srtt * (1 + loss / 1 %)`).
    pub(crate) fn cost_us(&self) -> u64 {
        self.srtt_us
            .saturating_mul(10_000 + u64::from(self.loss_ppm))
            .saturating_div(10_000)
    }

    /// Whether the path is being sent more than the peer receives on it (by over 20 %), that
    /// is, pushed past the rate it delivers. Ignored below 500 kbit/s, where the two
    /// measurements are too coarse.
    pub(crate) fn overdriven(&self) -> bool {
        self.sent_kbps >= 500 && self.delivered_kbps * 5 < self.sent_kbps * 4
    }
}

/// Permille of datagrams on the secondary path where the `rtt` scheduler starts.
pub(crate) const RTT_START_PERMILLE: u32 = 500;

/// One step of the `rtt` scheduler, taken once per probe interval: the new permille of
/// datagrams for the secondary path.
///
/// - A path pushed past the rate it delivers ([`PathView::overdriven`]) loses share while the
///   other is not: 20 permille per step. This needs the peer's receive counters to move: a
///   peer that reports receiving nothing on either path (its application does not read, or
///   its `recv/port` is not set) tells nothing about the paths, and only the costs count.
/// - Otherwise share moves towards the cheaper path ([`PathView::cost_us`]) while the costs
///   differ by more than 10 % (at least 1 ms): by 25 permille per step for each time the
///   difference fits in the smaller cost, between 5 and 50 permille.
/// - Costs within 10 % of each other: share drifts 2 permille per step towards 50/50, so
///   that equal paths end up sharing the load.
///
/// Because probes queue behind data, a path given more than it can carry grows its srtt
/// until its cost meets the other path's: the faster path is filled first, the slower one
/// carries the rest, and the arrival-time skew stays near the base RTT difference. The steps
/// are small next to the time srtt takes to follow a queue (about a second), so that two
/// saturated paths settle instead of swinging traffic between their queues.
pub(crate) fn rtt_step(secondary_permille: u32, primary: &PathView, secondary: &PathView) -> u32 {
    let current = secondary_permille.min(1000);
    let toward_secondary = |step: u32| (current + step).min(1000);
    let toward_primary = |step: u32| current.saturating_sub(step);
    let rates_known = primary.delivered_kbps + secondary.delivered_kbps > 0;
    match (primary.overdriven(), secondary.overdriven()) {
        (true, false) if rates_known => return toward_secondary(20),
        (false, true) if rates_known => return toward_primary(20),
        _ => {}
    }
    let (c0, c1) = (primary.cost_us(), secondary.cost_us());
    let low = c0.min(c1).max(1);
    let gap = c0.abs_diff(c1);
    if gap <= (low / 10).max(1000) {
        return match current.cmp(&RTT_START_PERMILLE) {
            core::cmp::Ordering::Less => (current + 2).min(RTT_START_PERMILLE),
            core::cmp::Ordering::Greater => current.saturating_sub(2).max(RTT_START_PERMILLE),
            core::cmp::Ordering::Equal => current,
        };
    }
    // Bounded by the clamp, so it fits a u32.
    let step = (gap.saturating_mul(25) / low).clamp(5, 50) as u32;
    if c1 < c0 {
        toward_secondary(step)
    } else {
        toward_primary(step)
    }
}

/// A rate from two readings of a byte counter `elapsed_ns` apart, in kbit/s.
pub(crate) fn kbps(bytes_before: u64, bytes_after: u64, elapsed_ns: u64) -> u64 {
    if elapsed_ns == 0 {
        return 0;
    }
    bytes_after
        .saturating_sub(bytes_before)
        .saturating_mul(8_000_000)
        / elapsed_ns
}
