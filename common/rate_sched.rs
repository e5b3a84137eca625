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
//!
//! Delay preference ([`prefer_low_delay`]): while the tunnel offers less than the lowest-delay
//! paths can carry, it need not wait for the others. The paths whose min RTT is within
//! [`TIER_SLACK_US`] (or a quarter) of the least form the preferred tier, with capacity `C_P`
//! (the sum of their weights above) of the bundle's `C`. With the offered load `L` (what
//! this host sent on all paths over the last rate window, or the last two probe rounds' if
//! more: the caller's) and the fill `f` =
//! [`PREFER_FILL_PERMILLE`], the tier carries `min(L, f·C_P)` and the other paths the rest,
//! each group in proportion to its weights, until `L` reaches `f·C`; from there on (a bulk
//! transfer that fills the bundle) the weights above apply unchanged. The two meet at `f·C`,
//! so the shares move continuously with the load: there is no edge for it to flap over. A
//! path whose min RTT is not known yet is not in the tier.
//!
//! The load is compared with the tier's capacity reading, and a reading from traffic that
//! does not fill the path is a lower bound (`capacity.rs`): smooth traffic that the path
//! never has to queue reads as its own rate, which spills it as if the path were full. The
//! rule then falls back to the weights above, what it does without a preference, never to
//! more on a full path.

use crate::seq::MAX_PATHS;

/// Loss above which a path's weight shrinks in proportion, ppm (1 %).
pub(crate) const LOSS_THRESHOLD_PPM: u32 = 10_000;
/// Queueing delay a path may have beyond 1.5 times the least-queued path's before it backs
/// off, us.
pub(crate) const QUEUE_ALLOWANCE_US: u64 = 50_000;

/// How much of the preferred tier's capacity the offered load may fill before it spills to
/// the slower paths, permille; the capacity shares apply from this part of the bundle's on.
/// A bulk transfer fills 85-95 % of the bundle (payload against the capacity's IP packets)
/// and stays clear of the preference through its dips and the readings' error, and a
/// preferred path keeps 40 % headroom, so its queue stays short.
pub(crate) const PREFER_FILL_PERMILLE: u64 = 600;
/// Paths whose min RTTs differ by at most this, or by at most a quarter of the lesser, are
/// one tier, us: a difference that small costs the reorder buffer little, and paths of
/// equal delay stay one tier through their readings' jitter (under a debug kernel in a
/// TCG VM, several ms).
pub(crate) const TIER_SLACK_US: u64 = 10_000;

/// What the rule knows of one path in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathReading {
    /// The peer's latest capacity reading, kbit/s; `None` before the first.
    pub(crate) capacity_kbps: Option<u32>,
    /// The path's loss, ppm.
    pub(crate) loss_ppm: u32,
    /// The path's queueing delay (srtt − min RTT), us; 0 unknown.
    pub(crate) queue_us: u64,
    /// The path's min RTT, us; 0 unknown.
    pub(crate) min_rtt_us: u64,
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

/// Scale of the weights [`prefer_low_delay`] returns when it moves any: parts per million.
const PREFER_SCALE: u64 = 1_000_000;

/// The delay preference (see the module's documentation) applied to `weights` (from
/// [`weights`], for the same `paths`), with `offered_kbps` the tunnel's current load.
pub(crate) fn prefer_low_delay(
    weights: [u32; MAX_PATHS],
    paths: &[PathReading],
    offered_kbps: u64,
) -> [u32; MAX_PATHS] {
    let weighted = || {
        weights
            .iter()
            .zip(paths)
            .filter(|(&w, _)| w > 0)
            .map(|(&w, p)| (u64::from(w), p.min_rtt_us))
    };
    // A path whose min RTT is not known yet (it has not answered) is not preferred.
    let Some(least) = weighted()
        .map(|(_, min_rtt)| min_rtt)
        .filter(|&min_rtt| min_rtt != 0)
        .min()
    else {
        return weights;
    };
    let tier_limit = least.saturating_add(TIER_SLACK_US.max(least / 4));
    let in_tier = |min_rtt: u64| min_rtt != 0 && min_rtt <= tier_limit;
    // At most 8 weights of u32 each: below 2^35.
    let all: u64 = weighted().map(|(w, _)| w).sum();
    let tier: u64 = weighted()
        .filter(|&(_, min_rtt)| in_tier(min_rtt))
        .map(|(w, _)| w)
        .sum();
    let tier_fill = tier * PREFER_FILL_PERMILLE / 1000;
    if tier == all || offered_kbps >= all * PREFER_FILL_PERMILLE / 1000 {
        return weights;
    }
    // The tier's part of the load, ppm: all of it up to its fill, then the fill. Below the
    // bundle's fill this is more than the tier's part of the capacity, so the others get
    // less than theirs, and at the bundle's fill both meet the weights.
    let tier_ppm = if offered_kbps <= tier_fill {
        PREFER_SCALE
    } else {
        // tier_fill < offered_kbps, and tier_fill < 2^35: below 2^55 before the division.
        tier_fill * PREFER_SCALE / offered_kbps
    };
    let mut preferred = [0u32; MAX_PATHS];
    for ((out, &w), path) in preferred.iter_mut().zip(&weights).zip(paths) {
        let w = u64::from(w);
        // 0 < tier < all. Each path's part of its group's weight times the group's part of
        // the load: at most PREFER_SCALE, and w * PREFER_SCALE is below 2^52.
        *out = match (w, in_tier(path.min_rtt_us)) {
            (0, _) => 0,
            (w, true) => w * tier_ppm / tier,
            (w, false) => w * (PREFER_SCALE - tier_ppm) / (all - tier),
        } as u32;
    }
    preferred
}
