// SPDX-License-Identifier: GPL-2.0

//! The `rate` scheduler's rule, pure logic: each path's weight from the capacity the peer
//! measures on it (`capacity.rs`) and its loss.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`). `mpudp_send` applies it once per probe round and spreads the
//! datagrams by the weights (`spread.rs`), after the failover rule has taken out the paths
//! judged down.
//!
//! `w_i = C_i · min(1, L / loss_i) · min(1, (Q + 1.5 · q_min) / q_i)`: capacity `C_i` in
//! kbit/s, loss threshold `L` = [`LOSS_THRESHOLD_PPM`], queueing delay `q_i` = srtt − min RTT,
//! `q_min` the least of the paths', allowance `Q` = [`QUEUE_ALLOWANCE_US`].
//!
//! - Each path carries in proportion to what it can deliver: no path is given more than its
//!   part of the bundle's capacity, so none builds a queue that the others do not (which is
//!   what filling the lower-delay path first did to the `rtt` scheduler's slower path).
//! - A path loses share only to loss above the threshold, in proportion, never to the
//!   sampling noise of small losses (a path at 2 % carries half of what its capacity would
//!   give it, one at 0.1 % all of it).
//! - A path whose queue holds datagrams longer than the least-queued path's by more than half
//!   of that and the allowance is given more than it carries (its capacity reading is stale:
//!   it just dropped, or the reading was high): it backs off in proportion until its queue
//!   drains. Under a bulk transfer that fills every path's queue alike, nothing changes:
//!   with shares in proportion to capacity, the queues hold the same time, and the half and
//!   the allowance leave room for their jitter: a probe that waits behind a burst reads
//!   its queue, and with 20 ms instead of 50 a 5 Mbit/s path under 20-datagram bursts lost a
//!   third of its share, and with 1.0 instead of 1.5 shares swung by 10 pp during a
//!   download.
//!
//! A path with no reading yet is weighed as the mean of those with one, so that it gets
//! datagrams and is measured; without any reading the weights are not changed.

use crate::seq::MAX_PATHS;

/// Loss above which a path's weight shrinks in proportion, ppm (1 %).
pub(crate) const LOSS_THRESHOLD_PPM: u32 = 10_000;
/// Queueing delay a path may have beyond 1.5 times the least-queued path's before it backs
/// off, us.
pub(crate) const QUEUE_ALLOWANCE_US: u64 = 50_000;

/// What the rule knows of one path in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathReading {
    /// The peer's latest capacity reading, kbit/s; `None` before the first.
    pub(crate) capacity_kbps: Option<u32>,
    /// The path's loss, ppm.
    pub(crate) loss_ppm: u32,
    /// The path's queueing delay (srtt − min RTT), us; 0 unknown.
    pub(crate) queue_us: u64,
}

/// The weights of the first `paths.len()` paths (the others get none); `None` while no path
/// has a capacity reading (the caller keeps the weights it has).
pub(crate) fn weights(paths: &[PathReading]) -> Option<[u32; MAX_PATHS]> {
    let known = paths.iter().filter_map(|p| p.capacity_kbps);
    let (sum, count) = known.fold((0u64, 0u64), |(s, n), c| (s + u64::from(c), n + 1));
    if count == 0 {
        return None;
    }
    // At most u32::MAX: a mean of u32 values.
    let mean = (sum / count) as u32;
    let least_queue = paths.iter().map(|p| p.queue_us).min().unwrap_or(0);
    let queue_allowed = least_queue
        .saturating_add(least_queue / 2)
        .saturating_add(QUEUE_ALLOWANCE_US);
    let mut weights = [0u32; MAX_PATHS];
    for (weight, path) in weights.iter_mut().zip(paths) {
        let capacity = u64::from(path.capacity_kbps.unwrap_or(mean));
        let loss = u64::from(path.loss_ppm.max(LOSS_THRESHOLD_PPM));
        let queue = path.queue_us.max(queue_allowed);
        // At most the capacity: both factors are at most one.
        let after_loss = capacity * u64::from(LOSS_THRESHOLD_PPM) / loss;
        *weight = (after_loss.saturating_mul(queue_allowed) / queue) as u32;
    }
    Some(weights)
}
