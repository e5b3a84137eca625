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
    /// Two paths: `secondary_permille` on path 1 (capped at 1000), the rest on path 0.
    pub(crate) const fn two_paths(secondary_permille: u32) -> Self {
        let secondary = if secondary_permille > CYCLE as u32 {
            CYCLE as u16
        } else {
            secondary_permille as u16
        };
        let mut shares = [0; MAX_PATHS];
        shares[0] = CYCLE as u16 - secondary;
        shares[1] = secondary;
        Self(shares)
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
