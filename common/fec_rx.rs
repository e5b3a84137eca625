// SPDX-License-Identifier: GPL-2.0

//! The receiver's side of forward error correction, pure logic: it keeps a copy of the
//! peer's latest datagrams and the repairs not used yet, rebuilds a group's lost datagrams
//! once it has as many repairs as losses (`fec.rs`), and tells which datagrams arrived
//! twice (a rebuilt one whose original came after all, or the same datagram over two paths
//! in redundant mode).
//!
//! A datagram still on its way over a slower path looks lost: a group with as many
//! repairs as missing datagrams is rebuilt at once, and the original, when it comes, is a
//! duplicate. That costs a rebuild, and wins the slower path's delay for that datagram.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`). Memory is fixed: [`DATA_SLOTS`] datagram copies, indexed by
//! sequence number, and [`REPAIR_SLOTS`] repairs (about 425 KiB per peer, allocated only
//! while the peer codes). Work per datagram: one copy, and a look at the repairs waiting
//! for its group; per rebuilt group, `fec::recover`'s.

use crate::fec::{self, RepairHeader, MAX_PAYLOAD, MAX_REPAIRS, MAX_SPAN, MAX_SYMBOL};

/// Datagram copies kept: a repair can rebuild datagrams among the latest this many
/// sequence numbers. At 10 Mbit/s of 1,400-byte datagrams, 280 ms.
pub(crate) const DATA_SLOTS: usize = 256;
/// Repairs waiting for their group (for its datagrams still on a slower path, or for more
/// repairs).
pub(crate) const REPAIR_SLOTS: usize = 32;

/// One kept datagram: its symbol (length and payload, `fec::symbol_into`).
struct DataSlot {
    seq: u32,
    /// Whether `seq` is in the slot, and whether it arrived or was rebuilt.
    held: Held,
    symbol: [u8; MAX_SYMBOL],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Held {
    Empty = 0,
    Arrived,
    Rebuilt,
}

/// One kept repair.
struct RepairSlot {
    used: bool,
    header: RepairHeader,
    symbol_len: usize,
    symbol: [u8; MAX_SYMBOL],
}

/// What [`FecWindow::data`] says about a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataVerdict {
    /// Its first copy: deliver it.
    New,
    /// It arrived before, or was rebuilt: drop it.
    Duplicate,
}

/// What became of a repair, or of the repairs waiting for a datagram's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Outcome {
    /// Datagrams rebuilt (their sequence numbers: [`FecWindow::rebuilt`]).
    pub(crate) rebuilt: usize,
    /// Repairs dropped because their group had nothing missing.
    pub(crate) unneeded: u32,
    /// Repairs dropped because their group can no longer be rebuilt: its datagrams left the
    /// window, or the repairs did not match it.
    pub(crate) unrecoverable: u32,
    /// Repairs dropped unused to make room (the oldest group's).
    pub(crate) evicted: u32,
}

/// The receiver's FEC state for one peer.
///
/// All-zero bytes are a valid empty window, the one [`FecWindow::new`] makes: the kernel
/// allocates it zeroed in place (it is far larger than a kernel stack).
pub(crate) struct FecWindow {
    data: [DataSlot; DATA_SLOTS],
    repairs: [RepairSlot; REPAIR_SLOTS],
    /// The highest sequence number seen, if `any_seen`: older than `DATA_SLOTS` below it is
    /// gone.
    highest: u32,
    any_seen: bool,
    /// The sequence numbers of the latest rebuilt datagrams, and how many.
    rebuilt: [u32; MAX_REPAIRS],
    rebuilt_count: usize,
}

/// Whether sequence number `a` is before `b`, in the wrapping sequence space.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl FecWindow {
    /// Nothing kept.
    pub(crate) const fn new() -> Self {
        Self {
            data: [const {
                DataSlot {
                    seq: 0,
                    held: Held::Empty,
                    symbol: [0; MAX_SYMBOL],
                }
            }; DATA_SLOTS],
            repairs: [const {
                RepairSlot {
                    used: false,
                    header: RepairHeader {
                        path: 0,
                        token: 0,
                        path_seq: 0,
                        first: 0,
                        covered: 0,
                        repairs: 0,
                        index: 0,
                    },
                    symbol_len: 0,
                    symbol: [0; MAX_SYMBOL],
                }
            }; REPAIR_SLOTS],
            highest: 0,
            any_seen: false,
            rebuilt: [0; MAX_REPAIRS],
            rebuilt_count: 0,
        }
    }

    /// Forgets everything (a new session).
    pub(crate) fn reset(&mut self) {
        self.data
            .iter_mut()
            .for_each(|slot| slot.held = Held::Empty);
        self.repairs.iter_mut().for_each(|slot| slot.used = false);
        self.any_seen = false;
        self.rebuilt_count = 0;
    }

    fn slot_index(seq: u32) -> usize {
        seq as usize % DATA_SLOTS
    }

    /// Whether `seq` is still in the window: not `DATA_SLOTS` or more below the highest.
    fn in_window(&self, seq: u32) -> bool {
        !self.any_seen || !before(seq, self.highest.wrapping_sub(DATA_SLOTS as u32 - 1))
    }

    /// Whether `seq` is held (arrived or rebuilt).
    fn held(&self, seq: u32) -> bool {
        self.data
            .get(Self::slot_index(seq))
            .is_some_and(|slot| slot.held != Held::Empty && slot.seq == seq)
    }

    /// Takes in datagram `seq` with `payload` (at most `fec::MAX_PAYLOAD` bytes; a longer
    /// one is never coded, and is only checked for a duplicate). Returns whether it is new,
    /// and what became of the repairs that were waiting for it: rebuilt datagrams are read
    /// with [`FecWindow::rebuilt`].
    pub(crate) fn data(&mut self, seq: u32, payload: &[u8]) -> (DataVerdict, Outcome) {
        self.data_from(seq, payload.len(), |out| {
            out.copy_from_slice(payload);
            true
        })
    }

    /// As [`FecWindow::data`], for a payload of `len` bytes that `fill` copies into the
    /// slice it is given (`len` long), returning whether it could: the kernel copies it out
    /// of the skb straight into its slot. A datagram whose copy failed is passed on
    /// (`New`) and not kept.
    pub(crate) fn data_from(
        &mut self,
        seq: u32,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> (DataVerdict, Outcome) {
        self.rebuilt_count = 0;
        if self.held(seq) {
            return (DataVerdict::Duplicate, Outcome::default());
        }
        if !self.in_window(seq) || len > MAX_PAYLOAD {
            // Too old to tell, or never coded; the reorder buffer sorts it out.
            return (DataVerdict::New, Outcome::default());
        }
        if !self.any_seen || before(self.highest, seq) {
            self.highest = seq;
            self.any_seen = true;
        }
        let Some(slot) = self.data.get_mut(Self::slot_index(seq)) else {
            return (DataVerdict::New, Outcome::default());
        };
        slot.seq = seq;
        slot.held = Held::Empty;
        let filled = match slot.symbol.get_mut(2..2 + len) {
            Some(body) => fill(body),
            None => false,
        };
        if !filled {
            return (DataVerdict::New, Outcome::default());
        }
        if let Some(head) = slot.symbol.get_mut(..2) {
            head.copy_from_slice(&(len as u16).to_be_bytes());
        }
        slot.held = Held::Arrived;
        let outcome = self.settle(|header| covers(header, seq));
        (DataVerdict::New, outcome)
    }

    /// Takes in a repair (`header`, and its `symbol`, at most `fec::MAX_SYMBOL` bytes, as
    /// `RepairHeader::decode` checked). Returns what became of it and its group's other
    /// repairs.
    pub(crate) fn repair(&mut self, header: &RepairHeader, symbol: &[u8]) -> Outcome {
        self.repair_from(header, symbol.len(), |out| {
            out.copy_from_slice(symbol);
            true
        })
    }

    /// As [`FecWindow::repair`], for a symbol of `len` bytes that `fill` copies into the
    /// slice it is given (see [`FecWindow::data_from`]); a repair whose copy failed is
    /// dropped (counted unneeded).
    pub(crate) fn repair_from(
        &mut self,
        header: &RepairHeader,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> Outcome {
        self.rebuilt_count = 0;
        let mut outcome = Outcome::default();
        let same = |slot: &RepairSlot| {
            slot.used
                && slot.header.first == header.first
                && slot.header.covered == header.covered
                && slot.header.index == header.index
        };
        if self.repairs.iter().any(same) || len > MAX_SYMBOL {
            outcome.unneeded += 1;
            return outcome;
        }
        // A free slot, or the oldest group's.
        let slot = match self.repairs.iter().position(|slot| !slot.used) {
            Some(free) => free,
            None => {
                let oldest = self
                    .repairs
                    .iter()
                    .enumerate()
                    .min_by(|(_, a), (_, b)| {
                        if before(a.header.first, b.header.first) {
                            core::cmp::Ordering::Less
                        } else {
                            core::cmp::Ordering::Greater
                        }
                    })
                    .map_or(0, |(i, _)| i);
                outcome.evicted += 1;
                oldest
            }
        };
        let Some(slot) = self.repairs.get_mut(slot) else {
            return outcome;
        };
        slot.used = false;
        let filled = match slot.symbol.get_mut(..len) {
            Some(kept) => fill(kept),
            None => false,
        };
        if !filled {
            outcome.unneeded += 1;
            return outcome;
        }
        slot.used = true;
        slot.header = *header;
        slot.symbol_len = len;
        let settled = self.settle(|h| h.first == header.first && h.covered == header.covered);
        outcome.rebuilt = settled.rebuilt;
        outcome.unneeded += settled.unneeded;
        outcome.unrecoverable += settled.unrecoverable;
        outcome
    }

    /// The sequence numbers of the datagrams the latest call rebuilt, and their payloads.
    pub(crate) fn rebuilt(&self) -> impl Iterator<Item = (u32, &[u8])> + '_ {
        self.rebuilt
            .iter()
            .take(self.rebuilt_count)
            .filter_map(|&seq| {
                let slot = self.data.get(Self::slot_index(seq))?;
                Some((seq, fec::symbol_payload(&slot.symbol)?))
            })
    }

    /// Tries every group that a waiting repair matching `wanted` belongs to (at most one,
    /// for a datagram or a repair): rebuilds it if it can, and frees the repairs of a group
    /// that needs none or can never be rebuilt.
    fn settle(&mut self, wanted: impl Fn(&RepairHeader) -> bool) -> Outcome {
        let mut outcome = Outcome::default();
        let Some(group) = self.repairs.iter().find(|s| s.used && wanted(&s.header)) else {
            return outcome;
        };
        let (first, covered, symbol_len) =
            (group.header.first, group.header.covered, group.symbol_len);
        let of_group = |slot: &RepairSlot| {
            slot.used && slot.header.first == first && slot.header.covered == covered
        };
        // The group's positions, and which of them are held.
        let mut positions = [0u8; MAX_SPAN];
        let mut present = [false; MAX_SPAN];
        let mut count = 0;
        let mut missing = 0;
        let mut gone = false;
        for i in 0..MAX_SPAN {
            if covered & (1 << i) == 0 {
                continue;
            }
            let seq = first.wrapping_add(i as u32);
            let here = self.held(seq);
            gone |= !here && !self.in_window(seq);
            if let (Some(p), Some(h)) = (positions.get_mut(count), present.get_mut(count)) {
                *p = i as u8;
                *h = here;
            }
            missing += usize::from(!here);
            count += 1;
        }
        let repairs = self.repairs.iter().filter(|s| of_group(s)).count();
        let free = |repairs: &mut [RepairSlot], count: &mut u32| {
            for slot in repairs.iter_mut().filter(|s| of_group(s)) {
                slot.used = false;
                *count += 1;
            }
        };
        if missing == 0 {
            free(&mut self.repairs, &mut outcome.unneeded);
            return outcome;
        }
        if gone || missing > MAX_REPAIRS {
            free(&mut self.repairs, &mut outcome.unrecoverable);
            return outcome;
        }
        if repairs < missing {
            return outcome; // wait for more datagrams or repairs
        }
        // Gather the group's symbols (held ones from their slots; missing ones into their
        // slots, which then hold the rebuilt symbols) and its repairs.
        let mut symbols: [&mut [u8]; MAX_SPAN] = Default::default();
        let mut repair_refs: [(u8, &mut [u8]); MAX_REPAIRS] = Default::default();
        let mut used_repairs = 0;
        for slot in self.repairs.iter_mut().filter(|s| of_group(s)) {
            if let Some(r) = repair_refs.get_mut(used_repairs) {
                *r = (
                    slot.header.index,
                    slot.symbol.get_mut(..symbol_len).unwrap_or(&mut []),
                );
                used_repairs += 1;
            }
        }
        // Each data slot is borrowed once: the group's sequence numbers are distinct and
        // fewer than DATA_SLOTS apart, so their slots are distinct.
        let mut rebuilt_seqs = [0u32; MAX_REPAIRS];
        let mut rebuilt_count = 0;
        {
            let mut wanted_slots = [usize::MAX; MAX_SPAN];
            for (n, &i) in positions.iter().enumerate().take(count) {
                let seq = first.wrapping_add(u32::from(i));
                if let Some(w) = wanted_slots.get_mut(n) {
                    *w = Self::slot_index(seq);
                }
                if !present.get(n).copied().unwrap_or(true) {
                    if let Some(r) = rebuilt_seqs.get_mut(rebuilt_count) {
                        *r = seq;
                        rebuilt_count += 1;
                    }
                }
            }
            for (index, slot) in self.data.iter_mut().enumerate() {
                if let Some(n) = wanted_slots.iter().position(|&w| w == index) {
                    let seq = first.wrapping_add(u32::from(positions.get(n).copied().unwrap_or(0)));
                    if !present.get(n).copied().unwrap_or(true) {
                        slot.symbol.fill(0);
                        slot.seq = seq;
                    } else {
                        // A held symbol is coded zero-padded to the group's length.
                        let own = slot_symbol_len(&slot.symbol);
                        if let Some(pad) = slot.symbol.get_mut(own..symbol_len) {
                            pad.fill(0);
                        }
                    }
                    if let Some(s) = symbols.get_mut(n) {
                        *s = slot.symbol.get_mut(..symbol_len).unwrap_or(&mut []);
                    }
                }
            }
        }
        let result = fec::recover(
            positions.get(..count).unwrap_or(&[]),
            present.get(..count).unwrap_or(&[]),
            symbols.get_mut(..count).unwrap_or(&mut []),
            repair_refs.get_mut(..used_repairs).unwrap_or(&mut []),
            symbol_len,
        );
        let rebuilt_ok = matches!(result, Ok(n) if n == rebuilt_count);
        for &seq in rebuilt_seqs.iter().take(rebuilt_count) {
            let valid = rebuilt_ok
                && self
                    .data
                    .get(Self::slot_index(seq))
                    .is_some_and(|slot| fec::symbol_payload(&slot.symbol).is_some());
            if let Some(slot) = self.data.get_mut(Self::slot_index(seq)) {
                slot.held = if valid { Held::Rebuilt } else { Held::Empty };
            }
            if valid {
                if let Some(r) = self.rebuilt.get_mut(self.rebuilt_count) {
                    *r = seq;
                    self.rebuilt_count += 1;
                }
            }
        }
        outcome.rebuilt = self.rebuilt_count;
        let mut spent = 0;
        free(&mut self.repairs, &mut spent);
        if self.rebuilt_count == 0 {
            outcome.unrecoverable += spent;
        }
        outcome
    }
}

/// Whether the group that `header` repairs holds sequence number `seq`.
fn covers(header: &RepairHeader, seq: u32) -> bool {
    let offset = seq.wrapping_sub(header.first) as usize;
    offset < MAX_SPAN && header.covered & (1 << offset) != 0
}

/// A held symbol's own length: its length field and payload.
fn slot_symbol_len(symbol: &[u8]) -> usize {
    2 + fec::symbol_payload(symbol).map_or(0, <[u8]>::len)
}
