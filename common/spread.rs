// SPDX-License-Identifier: GPL-2.0

//! Spreading datagrams over up to [`MAX_PATHS`] paths by share, pure logic: the schedule of
//! one cycle of [`CYCLE`] datagrams that the send hook reads without a lock.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`).
//!
//! The schedule is smooth weighted round robin (as nginx balances upstreams): each path
//! holds a credit; for every slot each path gains its share, the path with the most credit
//! takes the slot and pays [`CYCLE`]. Over each cycle path `i` takes exactly `shares[i]`
//! slots, so the shares never drift however long the tunnel runs; and within the cycle its
//! slots are spread out: after any `n` slots its count is within one of `n * share / CYCLE`.
//! The send hook numbers its datagrams and takes slot `n % CYCLE`; the schedule is rebuilt
//! (`CYCLE * paths` steps) only when the shares change, never per datagram.

use crate::seq::MAX_PATHS;

/// Slots in one cycle: shares are per mille.
pub(crate) const CYCLE: usize = 1000;

/// Each path's share of the datagrams, per mille, by path index; they sum to [`CYCLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shares(pub(crate) [u16; MAX_PATHS]);

impl Shares {
    /// The shares in proportion to `weights` (any scale). Each is rounded down and the
    /// permille that rounding leaves go one each to the weighted paths in index order, so no
    /// share is more than one permille off its exact value. Without any weight, path 0 takes
    /// everything.
    pub(crate) fn from_weights(weights: &[u32; MAX_PATHS]) -> Self {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut shares = [0u16; MAX_PATHS];
        if total == 0 {
            shares[0] = CYCLE as u16;
            return Self(shares);
        }
        let mut left = CYCLE as u16;
        for (share, &weight) in shares.iter_mut().zip(weights) {
            // At most CYCLE: the weight is at most the total.
            *share = (u64::from(weight) * CYCLE as u64 / total) as u16;
            left -= *share;
        }
        // Fewer permille are left than there are weighted paths (each lost less than one).
        for (share, &weight) in shares.iter_mut().zip(weights) {
            if left == 0 {
                break;
            }
            if weight > 0 {
                *share += 1;
                left -= 1;
            }
        }
        Self(shares)
    }

    /// The shares for the configured `weights` of the first `paths` paths (the others get
    /// none) under the failover rule. `up` and `down` have a bit per path: answering probes,
    /// judged down. While any path answers, the paths judged down carry nothing, and if the
    /// others have no weight the answering paths share equally. While none answers (probing
    /// off, or every path silent) the weights apply as configured.
    pub(crate) fn with_failover(
        mut weights: [u32; MAX_PATHS],
        paths: usize,
        up: u8,
        down: u8,
    ) -> Self {
        let in_use = |path: usize| path < paths;
        let bit = |mask: u8, path: usize| (mask >> path) & 1 == 1;
        for (path, weight) in weights.iter_mut().enumerate() {
            if !in_use(path) || (up != 0 && bit(down, path)) {
                *weight = 0;
            }
        }
        if up != 0 && weights.iter().all(|&w| w == 0) {
            for (path, weight) in weights.iter_mut().enumerate() {
                *weight = u32::from(in_use(path) && bit(up, path));
            }
        }
        Self::from_weights(&weights)
    }
}

/// Fills one cycle's schedule: `put(slot, path)` for every slot from 0 to [`CYCLE`] - 1, by
/// smooth weighted round robin over `shares`. Ties go to the lower path index, so the
/// schedule is a function of the shares alone. Shares that do not sum to [`CYCLE`] still give
/// every slot a path (one with a share, or path 0 if none has one), but not those counts.
pub(crate) fn schedule(shares: &Shares, mut put: impl FnMut(usize, u8)) {
    let mut credit = [0i32; MAX_PATHS];
    for slot in 0..CYCLE {
        let mut best = 0;
        for path in 0..MAX_PATHS {
            credit[path] += i32::from(shares.0[path]);
            if shares.0[path] > 0 && (shares.0[best] == 0 || credit[path] > credit[best]) {
                best = path;
            }
        }
        credit[best] -= CYCLE as i32;
        put(slot, best as u8);
    }
}
