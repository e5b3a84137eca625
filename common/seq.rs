// SPDX-License-Identifier: GPL-2.0

//! Sequencing, pure logic: the header that the v2 datapath puts in front of each in-scope
//! datagram between two MPUDP ends, and each path's loss measured from the gaps in its own
//! sequence numbers.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`). The sender adds the header once the peer has answered a probe that
//! carried its token (so the peer runs MPUDP and knows the token); the receiver removes it
//! before any socket sees the datagram. The receiver keeps two lock-free counters per path
//! on the datagram path ([`advance_highest`] and a count) and turns periodic readings of them
//! into the path's loss ([`GapLoss`]).
//!
//! Header, 20 bytes, big-endian, between the UDP header and the tunnel's payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `MU` (0x4d55) |
//! | 2 | 1 | version (2) in the high nibble, kind (0: data) in the low one |
//! | 3 | 1 | path index, 0..[`MAX_PATHS`] |
//! | 4 | 4 | session token, chosen by the sender and announced in its probes (`control.rs`) |
//! | 8 | 4 | sequence number per peer (the reorder buffer's order) |
//! | 12 | 4 | sequence number per path (the path's loss) |
//! | 16 | 4 | send time, microseconds on the sender's monotonic clock, wrapping (the paths' one-way delay difference, which sets the reorder wait) |
//!
//! A datagram is taken for an MPUDP one only when magic, version, kind, path and token all
//! match: an application datagram that happens to start like one is mistaken with odds of
//! 2^-50 (token and magic), and only from a peer that announced MPUDP.

/// Length of the data header.
pub(crate) const HEADER_LEN: usize = 20;
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
    /// When it was sent, in microseconds on the sender's clock (wrapping).
    pub(crate) sent_us: u32,
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
        out[16..20].copy_from_slice(&self.sent_us.to_be_bytes());
        out
    }

    /// Whether the header is of the peer's session: `peer_token` is the receiver's word for
    /// it, the token in the low 32 bits and [`SEEN`] set once the peer announced one.
    pub(crate) fn of_session(&self, peer_token: u64) -> bool {
        peer_token & SEEN != 0 && self.token == peer_token as u32
    }

    /// The header at the start of `payload`, if it is shaped like one, whatever its session
    /// ([`DataHeader::of_session`] tells).
    pub(crate) fn decode(payload: &[u8]) -> Option<Self> {
        let bytes: &[u8; HEADER_LEN] = payload.get(..HEADER_LEN)?.try_into().ok()?;
        let header = Self {
            path: bytes[3],
            token: be_u32(bytes, 4),
            seq: be_u32(bytes, 8),
            path_seq: be_u32(bytes, 12),
            sent_us: be_u32(bytes, 16),
        };
        let valid = u16::from_be_bytes([bytes[0], bytes[1]]) == MAGIC
            && bytes[2] == VERSION << 4 | KIND_DATA
            && usize::from(header.path) < MAX_PATHS;
        valid.then_some(header)
    }
}

/// The big-endian word at `at` in `bytes` (which the caller has checked is long enough).
pub(crate) fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Intervals the loss window spans (with one-second intervals, ten seconds).
pub(crate) const LOSS_INTERVALS: usize = 10;

/// A per-path sequence number further ahead than this is not a gap but a restarted sender.
pub(crate) const RESTART_DISTANCE: u32 = 1 << 20;

/// The value of a path's "highest sequence number seen" word after datagram `path_seq`
/// arrived, if it changes. The word holds the number in its low 32 bits and, in bit 32,
/// whether any datagram arrived (0: nothing yet). The number moves forward only, by less
/// than [`RESTART_DISTANCE`]; a number far from it either way means the sender started again,
/// and becomes the new highest. Made for an atomic `fetch_update` on the datagram path.
pub(crate) fn advance_highest(word: u64, path_seq: u32) -> Option<u64> {
    let next = SEEN | u64::from(path_seq);
    if word & SEEN == 0 {
        return Some(next);
    }
    let highest = word as u32;
    let ahead = path_seq.wrapping_sub(highest);
    let behind = highest.wrapping_sub(path_seq);
    let forward = ahead != 0 && ahead < RESTART_DISTANCE;
    let restart = ahead >= RESTART_DISTANCE && behind >= RESTART_DISTANCE;
    (forward || restart).then_some(next)
}

/// Bit of the [`advance_highest`] word that says a datagram arrived.
pub(crate) const SEEN: u64 = 1 << 32;

/// One path's loss from readings, once per interval, of the two counters that the datagram
/// path keeps for it: the [`advance_highest`] word and the number of datagrams received.
///
/// Between two readings, `highest` moved by the datagrams sent (expected) and the count by
/// those that arrived. The loss is the share of the last [`LOSS_INTERVALS`] intervals'
/// expected datagrams that never arrived, in ppm. A datagram that arrives after the reading
/// that counted its gap fills it in the next interval; the window's sum absorbs that.
#[derive(Debug, Clone, Default)]
pub(crate) struct GapLoss {
    /// The previous reading: (highest, received), once a datagram had arrived.
    last: Option<(u32, u64)>,
    window: [(u64, u64); LOSS_INTERVALS],
    next_slot: usize,
}

impl GapLoss {
    /// Nothing read yet.
    pub(crate) const fn new() -> Self {
        Self {
            last: None,
            window: [(0, 0); LOSS_INTERVALS],
            next_slot: 0,
        }
    }

    /// Closes an interval with the counters' current values.
    pub(crate) fn read(&mut self, highest_word: u64, received: u64) {
        if highest_word & SEEN == 0 {
            return;
        }
        let highest = highest_word as u32;
        if let Some((last_highest, last_received)) = self.last {
            let expected = highest.wrapping_sub(last_highest);
            // A restart moved `highest` anywhere: that interval says nothing.
            if expected < RESTART_DISTANCE {
                self.window[self.next_slot] =
                    (u64::from(expected), received.wrapping_sub(last_received));
                self.next_slot = (self.next_slot + 1) % LOSS_INTERVALS;
            }
        }
        self.last = Some((highest, received));
    }

    /// Datagrams expected over the window.
    pub(crate) fn expected(&self) -> u64 {
        self.window.iter().map(|&(e, _)| e).sum()
    }

    /// The window's loss in ppm; `None` while nothing was expected.
    pub(crate) fn loss_ppm(&self) -> Option<u32> {
        let expected = self.expected();
        let received: u64 = self.window.iter().map(|&(_, r)| r).sum();
        let lost = expected.saturating_sub(received);
        lost.saturating_mul(1_000_000)
            .checked_div(expected)
            .map(|ppm| ppm.min(1_000_000) as u32)
    }
}
