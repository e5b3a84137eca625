// SPDX-License-Identifier: GPL-2.0

//! Sequencing, pure logic: the header that the v2 datapath puts in front of each in-scope
//! datagram between two MPUDP ends, and each path's loss measured from the gaps in its own
//! sequence numbers.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`). Not wired into the modules yet (issue 13): the sender will add the
//! header once the peer is known to run MPUDP, and the receiver will remove it before any
//! socket sees the datagram.
//!
//! Header, 16 bytes, big-endian, between the UDP header and the tunnel's payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `MU` (0x4d55) |
//! | 2 | 1 | version (2) in the high nibble, kind (0: data) in the low one |
//! | 3 | 1 | path index, 0..[`MAX_PATHS`] |
//! | 4 | 4 | session token, chosen by the sender and announced in its probes (`control.rs`) |
//! | 8 | 4 | sequence number per peer (the reorder buffer's order) |
//! | 12 | 4 | sequence number per path (the path's loss) |
//!
//! A datagram is taken for an MPUDP one only when magic, version, kind, path and token all
//! match: an application datagram that happens to start like one is mistaken with odds of
//! 2^-50 (token and magic), and only from a peer that announced MPUDP.

/// Length of the data header.
pub(crate) const HEADER_LEN: usize = 16;
/// First two bytes of every v2 MPUDP datagram: "MU".
pub(crate) const MAGIC: u16 = 0x4d55;
/// Version of the wire format above.
pub(crate) const VERSION: u8 = 2;
/// Most paths per peer.
pub(crate) const MAX_PATHS: usize = 8;

const KIND_DATA: u8 = 0;

/// The header of one sequenced data datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataHeader {
    /// The path it was sent on, below [`MAX_PATHS`].
    pub(crate) path: u8,
    /// The sender's session token (the one its probes announced).
    pub(crate) token: u32,
    /// Its place in the peer's sequence.
    pub(crate) seq: u32,
    /// Its place in the path's sequence.
    pub(crate) path_seq: u32,
}

impl DataHeader {
    /// The header's wire form.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        out[2] = VERSION << 4 | KIND_DATA;
        out[3] = self.path;
        out[4..8].copy_from_slice(&self.token.to_be_bytes());
        out[8..12].copy_from_slice(&self.seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.path_seq.to_be_bytes());
        out
    }

    /// The header at the start of `payload`, if it is one for session `token`.
    pub(crate) fn decode(payload: &[u8], token: u32) -> Option<Self> {
        let bytes: &[u8; HEADER_LEN] = payload.get(..HEADER_LEN)?.try_into().ok()?;
        let header = Self {
            path: bytes[3],
            token: be_u32(bytes, 4),
            seq: be_u32(bytes, 8),
            path_seq: be_u32(bytes, 12),
        };
        let valid = u16::from_be_bytes([bytes[0], bytes[1]]) == MAGIC
            && bytes[2] == VERSION << 4 | KIND_DATA
            && usize::from(header.path) < MAX_PATHS
            && header.token == token;
        valid.then_some(header)
    }
}

/// The big-endian word at `at` in `bytes` (which the caller has checked is long enough).
pub(crate) fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Intervals the loss window spans (with one-second intervals, ten seconds).
pub(crate) const LOSS_INTERVALS: usize = 10;

/// One path's loss, from the gaps in the per-path sequence numbers that arrive.
///
/// A datagram counts as expected once a later one on the same path has arrived, and as
/// received when it arrives, however late. Each interval's counts go into a ring of
/// [`LOSS_INTERVALS`]; the loss is the window's share of expected datagrams that never
/// arrived, in parts per million.
#[derive(Debug, Clone, Default)]
pub(crate) struct LossMeter {
    started: bool,
    highest: u32,
    /// Counts of the interval in progress.
    expected: u64,
    received: u64,
    /// Completed intervals: (expected, received), oldest overwritten first.
    window: [(u64, u64); LOSS_INTERVALS],
    next_slot: usize,
}

impl LossMeter {
    /// A meter that has seen nothing.
    pub(crate) const fn new() -> Self {
        Self {
            started: false,
            highest: 0,
            expected: 0,
            received: 0,
            window: [(0, 0); LOSS_INTERVALS],
            next_slot: 0,
        }
    }

    /// A datagram with per-path sequence number `path_seq` arrived.
    pub(crate) fn arrive(&mut self, path_seq: u32) {
        if !self.started {
            self.started = true;
            self.highest = path_seq;
            self.expected += 1;
            self.received += 1;
            return;
        }
        let ahead = path_seq.wrapping_sub(self.highest);
        if ahead != 0 && ahead < RESTART_DISTANCE {
            self.expected += u64::from(ahead);
            self.highest = path_seq;
        } else if ahead != 0 && self.highest.wrapping_sub(path_seq) >= RESTART_DISTANCE {
            // Far from anything seen: the sender started again.
            self.highest = path_seq;
            self.expected += 1;
        }
        self.received += 1;
    }

    /// Closes the interval in progress (called once per interval, e.g. every second).
    pub(crate) fn close_interval(&mut self) {
        self.window[self.next_slot] = (self.expected, self.received);
        self.next_slot = (self.next_slot + 1) % LOSS_INTERVALS;
        self.expected = 0;
        self.received = 0;
    }

    /// Datagrams expected over the window.
    pub(crate) fn expected(&self) -> u64 {
        self.window.iter().map(|&(e, _)| e).sum()
    }

    /// The window's loss in parts per million (0 when nothing was expected). A datagram that
    /// arrives an interval after its gap was counted can make an interval's received exceed
    /// its expected; the window's total absorbs that.
    pub(crate) fn loss_ppm(&self) -> u32 {
        let expected = self.expected();
        let received: u64 = self.window.iter().map(|&(_, r)| r).sum();
        let lost = expected.saturating_sub(received);
        (lost * 1_000_000)
            .checked_div(expected)
            .map_or(0, |ppm| ppm.min(1_000_000) as u32)
    }
}

/// A per-path sequence number further ahead than this is not a gap but a restarted sender.
pub(crate) const RESTART_DISTANCE: u32 = 1 << 20;
