// SPDX-License-Identifier: GPL-2.0

//! The send hook's path schedule (`common/spread.rs`) in atomics: every datagram reads its
//! path without a lock, and the schedule is rebuilt in place, by one CPU at a time, only
//! when the shares change.

use kernel::sync::atomic::{Acquire, Atomic, Relaxed, Release};

use crate::spread::{self, Shares, CYCLE};

/// Path indices are below 8: four bits per slot.
const SLOT_BITS: usize = 4;
const SLOTS_PER_WORD: usize = 32 / SLOT_BITS;
const WORDS: usize = CYCLE.div_ceil(SLOTS_PER_WORD);

/// One cycle's schedule, packed; 500 bytes.
pub(crate) struct SpreadTable {
    words: [Atomic<u32>; WORDS],
    /// The key of the shares the schedule was built for, plus one; 0 before the first build.
    built: Atomic<u64>,
    /// 1 while a CPU rebuilds the schedule; the others read the one being replaced, whose
    /// every slot names a path of the old or the new shares.
    rebuilding: Atomic<u32>,
}

impl SpreadTable {
    /// Every slot on path 0 until the first [`SpreadTable::path`] builds it.
    pub(crate) const fn new() -> Self {
        Self {
            words: [const { Atomic::new(0) }; WORDS],
            built: Atomic::new(0),
            rebuilding: Atomic::new(0),
        }
    }

    /// The path of datagram number `n` under the shares that `key` stands for (the caller's
    /// name for them: equal keys, equal shares). `shares` is called only when the schedule
    /// holds other shares; this datagram then rebuilds it (`CYCLE` slots, bounded work,
    /// never sleeps), unless another CPU is doing so. Any context.
    pub(crate) fn path(&self, n: u64, key: u64, shares: impl FnOnce() -> Shares) -> usize {
        if self.built.load(Acquire) != key.wrapping_add(1) {
            self.rebuild(key, shares);
        }
        let slot = (n % CYCLE as u64) as usize;
        let word = self
            .words
            .get(slot / SLOTS_PER_WORD)
            .map_or(0, |word| word.load(Relaxed));
        ((word >> (SLOT_BITS * (slot % SLOTS_PER_WORD))) & 0xf) as usize
    }

    fn rebuild(&self, key: u64, shares: impl FnOnce() -> Shares) {
        if self.rebuilding.cmpxchg(0, 1, Acquire).is_err() {
            return;
        }
        let shares = shares();
        let mut packed = 0u32;
        spread::schedule(&shares, |slot, path| {
            let shift = SLOT_BITS * (slot % SLOTS_PER_WORD);
            packed |= u32::from(path & 0xf) << shift;
            if slot % SLOTS_PER_WORD == SLOTS_PER_WORD - 1 || slot == CYCLE - 1 {
                if let Some(word) = self.words.get(slot / SLOTS_PER_WORD) {
                    word.store(packed, Relaxed);
                }
                packed = 0;
            }
        });
        self.built.store(key.wrapping_add(1), Release);
        self.rebuilding.store(0, Release);
    }
}
