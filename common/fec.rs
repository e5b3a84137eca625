// SPDX-License-Identifier: GPL-2.0

//! Forward error correction, pure logic: a systematic Reed-Solomon erasure code over
//! GF(2^8) with a Cauchy generator, applied to groups of a peer's sequenced datagrams, and
//! the wire form of its repair datagrams.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`).
//!
//! **The code.** A group is up to [`MAX_SPAN`] consecutive per-peer sequence numbers, of
//! which the datagrams that the sender coded are marked in a bitmap (`covered`). Each coded
//! datagram is a *symbol*: its payload length (2 bytes, big-endian) then its payload,
//! zero-padded to the group's longest. Repair `j` of a group is `Σ_i c(j, i) · s_i` over the
//! covered positions `i`, byte by byte in GF(2^8) (polynomial 0x11d). `c` is a Cauchy matrix
//! `1 / (x_j + y_i)` with `x_j = j`, `y_i = MAX_REPAIRS + i`, each column scaled by
//! `x_0 + y_i` so that repair 0 is the plain XOR of the symbols (one parity costs no
//! multiplication). Every square submatrix of a Cauchy matrix is invertible, and scaling
//! columns keeps it so: any `e` lost datagrams of a group are rebuilt from any `e` of its
//! repairs, whichever they are ([`recover`]). That is the best an `m`-repair code can do
//! (maximum distance separable), and it covers a burst of `m` losses in a group, which
//! single parity (XOR) does not: Gilbert-Elliott losses come in bursts.
//!
//! Work per datagram: `m` passes over its symbol (one XOR, `m - 1` table multiplications);
//! to rebuild `e` datagrams of a group of `k`, `e` passes per received symbol plus the
//! inversion of an `e × e` matrix. No floating point, no allocation; tables of 768 bytes.
//!
//! Repair datagram, big-endian (the whole UDP payload; the prefix is the data header's):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `MU` (0x4d55) |
//! | 2 | 1 | version 2 (high nibble), kind 5: repair (low nibble) |
//! | 3 | 1 | path index, below [`MAX_PATHS`] |
//! | 4 | 4 | the sender's session token |
//! | 8 | 4 | per-peer sequence number of the group's first datagram |
//! | 12 | 4 | sequence number per path (a repair takes its path's next, as a data datagram does: the path's loss and capacity count it) |
//! | 16 | 4 | covered: bit `i` set if sequence number `first + i` is in the group (bit 0 always) |
//! | 20 | 1 | the group's repair count `m` (high nibble, 1..=[`MAX_REPAIRS`]), this repair's index `j` (low nibble, below `m`) |
//! | 21 | 1 | zero |
//! | 22 | 2 + L | the repair symbol: `L` is the group's longest payload |
//!
//! So a repair is 4 bytes longer than its group's longest data datagram (20-byte header).

use crate::seq::{MAGIC, MAX_PATHS, VERSION};

/// The most consecutive sequence numbers a group spans (the `covered` bitmap's bits).
pub(crate) const MAX_SPAN: usize = 32;
/// The most repairs per group (`m`).
pub(crate) const MAX_REPAIRS: usize = 8;
/// The longest payload a coded datagram may have: one that fills a 1,500-byte path MTU
/// without any header. Longer datagrams are sent, sequenced, but not coded.
pub(crate) const MAX_PAYLOAD: usize = 1472;
/// The longest symbol: a length and the longest payload.
pub(crate) const MAX_SYMBOL: usize = 2 + MAX_PAYLOAD;
/// A repair datagram's header, before its symbol.
pub(crate) const REPAIR_HEADER_LEN: usize = 22;

const KIND_REPAIR: u8 = 5;

/// How long a group stays open before its repairs go, full or not: the tunnelled TCP's
/// reordering window (RACK, RFC 8985) is a quarter of its min RTT, 5 ms at 20 ms, and a lost
/// datagram rebuilt later than that is taken for a loss all the same. The receiver's
/// reorder buffer waits this much longer for a gap while it takes repairs.
pub(crate) const GROUP_FLUSH_NS: u64 = 5_000_000;

/// GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), generator 2.
pub(crate) mod gf {
    /// `EXP[i]` is 2^i, for i up to 509, so that a sum of two logarithms needs no reduction.
    pub(crate) static EXP: [u8; 512] = {
        let mut exp = [0u8; 512];
        let mut x: u16 = 1;
        let mut i = 0;
        while i < 512 {
            exp[i] = x as u8;
            x <<= 1;
            if x & 0x100 != 0 {
                x ^= 0x11d;
            }
            i += 1;
        }
        exp
    };

    /// `LOG[x]` is i with 2^i = x, for x ≠ 0 (`LOG[0]` is unused).
    pub(crate) static LOG: [u8; 256] = {
        let mut log = [0u8; 256];
        let mut x: u16 = 1;
        let mut i = 0;
        while i < 255 {
            log[x as usize] = i as u8;
            x <<= 1;
            if x & 0x100 != 0 {
                x ^= 0x11d;
            }
            i += 1;
        }
        log
    };

    /// a · b.
    pub(crate) fn mul(a: u8, b: u8) -> u8 {
        if a == 0 || b == 0 {
            return 0;
        }
        let i = usize::from(LOG[usize::from(a)]) + usize::from(LOG[usize::from(b)]);
        EXP.get(i).copied().unwrap_or(0)
    }

    /// 1 / a, for a ≠ 0 (0 for 0, which callers never pass).
    pub(crate) fn inv(a: u8) -> u8 {
        if a == 0 {
            return 0;
        }
        EXP.get(255 - usize::from(LOG[usize::from(a)]))
            .copied()
            .unwrap_or(0)
    }

    /// `out[b] ^= c · input[b]` over the shorter of the two.
    pub(crate) fn mul_add(out: &mut [u8], c: u8, input: &[u8]) {
        match c {
            0 => {}
            1 => out.iter_mut().zip(input).for_each(|(o, &x)| *o ^= x),
            c => {
                let log_c = usize::from(LOG[usize::from(c)]);
                for (o, &x) in out.iter_mut().zip(input) {
                    if x != 0 {
                        let i = log_c + usize::from(LOG[usize::from(x)]);
                        *o ^= EXP.get(i).copied().unwrap_or(0);
                    }
                }
            }
        }
    }

    /// `out[b] = c · out[b]`.
    pub(crate) fn scale(out: &mut [u8], c: u8) {
        if c != 1 {
            let copy = |x: &mut u8| *x = mul(c, *x);
            out.iter_mut().for_each(copy);
        }
    }
}

/// The coefficient of position `i` (below [`MAX_SPAN`]) in repair `j` (below
/// [`MAX_REPAIRS`]): the Cauchy `1 / (x_j + y_i)`, scaled by `x_0 + y_i` so that repair 0
/// is plain XOR. `x_j + y_i` (XOR) is never 0: `x_j < MAX_REPAIRS <= y_i`.
pub(crate) fn coefficient(j: usize, i: usize) -> u8 {
    let y = (MAX_REPAIRS + i) as u8;
    gf::mul(gf::inv(j as u8 ^ y), y)
}

/// Writes the symbol of `payload` (at most [`MAX_PAYLOAD`] bytes) at the start of `out`
/// (the rest is left as it is: code it as zeros); returns the symbol's length.
pub(crate) fn symbol_into(payload: &[u8], out: &mut [u8]) -> usize {
    let len = payload.len().min(MAX_PAYLOAD);
    if let Some(head) = out.get_mut(..2) {
        head.copy_from_slice(&(len as u16).to_be_bytes());
    }
    if let Some(body) = out.get_mut(2..2 + len) {
        body.copy_from_slice(payload.get(..len).unwrap_or(&[]));
    }
    2 + len
}

/// The payload that a rebuilt `symbol` holds, if its length field fits in it (a symbol
/// rebuilt from a forged or mismatched repair may not).
pub(crate) fn symbol_payload(symbol: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*symbol.first()?, *symbol.get(1)?]));
    symbol.get(2..2 + len)
}

/// What [`Encoder::add`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// Coded into the open group; `full` once it holds the group size.
    Coded { full: bool },
    /// Not coded: it does not fit the open group (outside its span, or its sequence number
    /// is in it already). Close the group and add it again.
    Outside,
    /// Not coded, ever: longer than [`MAX_PAYLOAD`], or FEC is off.
    NotCoded,
}

/// A closed group, as its repairs describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Group {
    /// Sequence number of its first datagram.
    pub(crate) first: u32,
    /// Which of the [`MAX_SPAN`] sequence numbers from `first` it holds.
    pub(crate) covered: u32,
    /// Its repairs.
    pub(crate) repairs: u8,
    /// Its repair symbols' length: 2 + its longest payload.
    pub(crate) symbol_len: usize,
}

/// The sender's open group: the repairs of the datagrams coded so far, built as each is
/// added, so that closing the group costs nothing but sending them.
pub(crate) struct Encoder {
    /// Datagrams per group (1..=[`MAX_SPAN`]) and repairs per group (1..=[`MAX_REPAIRS`]);
    /// 0 datagrams: FEC off.
    data: u8,
    repairs: u8,
    first: u32,
    covered: u32,
    count: u8,
    symbol_len: usize,
    opened_ns: u64,
    /// Repair `j`'s symbol so far; zero beyond `symbol_len`.
    repair: [[u8; MAX_SYMBOL]; MAX_REPAIRS],
    /// The symbol being added.
    scratch: [u8; MAX_SYMBOL],
}

impl Encoder {
    /// FEC off, no group open.
    pub(crate) const fn new() -> Self {
        Self {
            data: 0,
            repairs: 0,
            first: 0,
            covered: 0,
            count: 0,
            symbol_len: 0,
            opened_ns: 0,
            repair: [[0; MAX_SYMBOL]; MAX_REPAIRS],
            scratch: [0; MAX_SYMBOL],
        }
    }

    /// Codes groups of `data` datagrams with `repairs` repairs each from now on (0 data:
    /// off); the open group, if any, is dropped (close it first to send it). Out-of-range
    /// values are clamped.
    pub(crate) fn set_ratio(&mut self, data: u8, repairs: u8) {
        self.clear();
        self.data = data.min(MAX_SPAN as u8);
        self.repairs = repairs.clamp(1, MAX_REPAIRS as u8);
    }

    /// The group size and repairs per group; (0, _) when off.
    pub(crate) fn ratio(&self) -> (u8, u8) {
        (self.data, self.repairs)
    }

    /// Codes datagram `seq` with `payload` into the open group, opening one at `now_ns` if
    /// none is.
    pub(crate) fn add(&mut self, seq: u32, payload: &[u8], now_ns: u64) -> Added {
        if self.data == 0 || payload.len() > MAX_PAYLOAD {
            return Added::NotCoded;
        }
        if self.count == 0 {
            self.first = seq;
            self.opened_ns = now_ns;
        }
        let offset = seq.wrapping_sub(self.first) as usize;
        if offset >= MAX_SPAN || self.covered & (1 << offset) != 0 {
            return Added::Outside;
        }
        let len = symbol_into(payload, &mut self.scratch);
        let symbol = self.scratch.get(..len).unwrap_or(&[]);
        for (j, repair) in self.repair.iter_mut().enumerate().take(self.repairs.into()) {
            gf::mul_add(repair, coefficient(j, offset), symbol);
        }
        self.covered |= 1 << offset;
        self.count += 1;
        self.symbol_len = self.symbol_len.max(len);
        Added::Coded {
            full: self.count >= self.data,
        }
    }

    /// Whether a group is open and was opened `flush_ns` or more before `now_ns`: it is
    /// due to close, full or not.
    pub(crate) fn due(&self, now_ns: u64, flush_ns: u64) -> bool {
        self.count > 0 && now_ns.saturating_sub(self.opened_ns) >= flush_ns
    }

    /// When the open group was opened (its first datagram's `now_ns`), if one is.
    pub(crate) fn opened_ns(&self) -> Option<u64> {
        (self.count > 0).then_some(self.opened_ns)
    }

    /// The open group, if one is.
    pub(crate) fn group(&self) -> Option<Group> {
        (self.count > 0).then_some(Group {
            first: self.first,
            covered: self.covered,
            repairs: self.repairs,
            symbol_len: self.symbol_len,
        })
    }

    /// Repair `j`'s symbol of the open group ([`Group::symbol_len`] bytes).
    pub(crate) fn repair(&self, j: usize) -> &[u8] {
        self.repair
            .get(j)
            .and_then(|r| r.get(..self.symbol_len))
            .unwrap_or(&[])
    }

    /// Closes the open group (its repairs sent or given up): the next datagram opens one.
    pub(crate) fn clear(&mut self) {
        let len = self.symbol_len;
        for repair in &mut self.repair {
            if let Some(used) = repair.get_mut(..len) {
                used.fill(0);
            }
        }
        self.count = 0;
        self.covered = 0;
        self.symbol_len = 0;
    }
}

/// The header of one repair datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RepairHeader {
    /// The path it was sent on, below [`MAX_PATHS`].
    pub(crate) path: u8,
    /// The sender's session token.
    pub(crate) token: u32,
    /// Its place in the path's sequence.
    pub(crate) path_seq: u32,
    /// Its group's first sequence number and covered datagrams.
    pub(crate) first: u32,
    pub(crate) covered: u32,
    /// Its group's repair count, and its own index among them.
    pub(crate) repairs: u8,
    pub(crate) index: u8,
}

impl RepairHeader {
    /// The header's wire form.
    pub(crate) fn encode(&self) -> [u8; REPAIR_HEADER_LEN] {
        let mut out = [0u8; REPAIR_HEADER_LEN];
        out[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        out[2] = VERSION << 4 | KIND_REPAIR;
        out[3] = self.path;
        out[4..8].copy_from_slice(&self.token.to_be_bytes());
        out[8..12].copy_from_slice(&self.first.to_be_bytes());
        out[12..16].copy_from_slice(&self.path_seq.to_be_bytes());
        out[16..20].copy_from_slice(&self.covered.to_be_bytes());
        out[20] = self.repairs << 4 | self.index;
        out
    }

    /// The repair header at the start of `payload`, with the length of the symbol after it,
    /// if it is a well-formed one (whatever its session): magic, version, kind, a path below
    /// [`MAX_PATHS`], bit 0 of `covered` set, `1 <= m <= MAX_REPAIRS`, `j < m`, the zero
    /// byte zero, and a symbol of 2 to [`MAX_SYMBOL`] bytes.
    pub(crate) fn decode(payload: &[u8]) -> Option<(Self, usize)> {
        Self::decode_head(payload, payload.len())
    }

    /// As [`RepairHeader::decode`], from the payload's first bytes `head` (at least the
    /// header) and its whole length `len`: the receive hook sees only the first 32 bytes.
    pub(crate) fn decode_head(head: &[u8], len: usize) -> Option<(Self, usize)> {
        let bytes: &[u8; REPAIR_HEADER_LEN] = head.get(..REPAIR_HEADER_LEN)?.try_into().ok()?;
        let word = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let header = Self {
            path: bytes[3],
            token: word(4),
            first: word(8),
            path_seq: word(12),
            covered: word(16),
            repairs: bytes[20] >> 4,
            index: bytes[20] & 0xf,
        };
        let symbol_len = len.saturating_sub(REPAIR_HEADER_LEN);
        let valid = u16::from_be_bytes([bytes[0], bytes[1]]) == MAGIC
            && bytes[2] == VERSION << 4 | KIND_REPAIR
            && usize::from(header.path) < MAX_PATHS
            && header.covered & 1 != 0
            && (1..=MAX_REPAIRS as u8).contains(&header.repairs)
            && header.index < header.repairs
            && bytes[21] == 0
            && (2..=MAX_SYMBOL).contains(&symbol_len);
        valid.then_some((header, symbol_len))
    }
}

/// Why [`recover`] rebuilt nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unrecoverable {
    /// Fewer repairs than missing datagrams (so far).
    TooFewRepairs,
    /// More datagrams missing than the caller has room to rebuild, or than a group can have.
    TooManyMissing,
    /// A symbol longer than the repairs' (the group does not match them).
    Mismatch,
}

/// Rebuilds the missing datagrams of a group in place: the group's covered positions are
/// `covered`; `symbols[n]` holds position `positions[n]`'s symbol (zero-padded to
/// `symbol_len`) if `present[n]`, else it is to be rebuilt; `repairs` are the received
/// repair symbols, each `(j, symbol)` with distinct `j`, each `symbol_len` long (they are
/// consumed: overwritten with work).
///
/// On success every missing `symbols[n]` holds its rebuilt symbol ([`symbol_payload`] reads
/// its payload, `None` if the repairs were not of this group), and the count rebuilt is
/// returned. Work: for `e` missing, `e` passes over every present symbol and `e²` over the
/// repairs, plus an `e × e` inversion; `e` is at most [`MAX_REPAIRS`].
pub(crate) fn recover(
    positions: &[u8],
    present: &[bool],
    symbols: &mut [&mut [u8]],
    repairs: &mut [(u8, &mut [u8])],
    symbol_len: usize,
) -> Result<usize, Unrecoverable> {
    let mut missing = [0usize; MAX_REPAIRS];
    let mut missing_count = 0;
    for (n, &here) in present.iter().enumerate().take(positions.len()) {
        if !here {
            let slot = missing
                .get_mut(missing_count)
                .ok_or(Unrecoverable::TooManyMissing)?;
            *slot = n;
            missing_count += 1;
        }
    }
    if missing_count == 0 {
        return Ok(0);
    }
    if repairs.len() < missing_count {
        return Err(Unrecoverable::TooFewRepairs);
    }
    if symbols.iter().any(|s| s.len() < symbol_len)
        || repairs.iter().any(|(_, r)| r.len() < symbol_len)
    {
        return Err(Unrecoverable::Mismatch);
    }
    let used = repairs
        .get_mut(..missing_count)
        .ok_or(Unrecoverable::TooFewRepairs)?;
    // Each used repair less the present symbols' part: what is left is the missing ones'
    // part, Σ_missing c(j, i) · s_i.
    for (j, repair) in used.iter_mut() {
        let repair = repair.get_mut(..symbol_len).unwrap_or(&mut []);
        for (n, symbol) in symbols.iter().enumerate() {
            if present.get(n).copied().unwrap_or(false) {
                let i = usize::from(positions.get(n).copied().unwrap_or(0));
                gf::mul_add(
                    repair,
                    coefficient(usize::from(*j), i),
                    symbol.get(..symbol_len).unwrap_or(&[]),
                );
            }
        }
    }
    // Invert the e × e matrix A[r][c] = c(j_r, i_c) by Gauss-Jordan on [A | I].
    let e = missing_count;
    let mut a = [[0u8; MAX_REPAIRS]; MAX_REPAIRS];
    let mut inverse = [[0u8; MAX_REPAIRS]; MAX_REPAIRS];
    for r in 0..e {
        let j = usize::from(used.get(r).map_or(0, |(j, _)| *j));
        for c in 0..e {
            let n = missing[c];
            let i = usize::from(positions.get(n).copied().unwrap_or(0));
            a[r][c] = coefficient(j, i);
        }
        inverse[r][r] = 1;
    }
    for col in 0..e {
        let pivot = (col..e)
            .find(|&r| a[r][col] != 0)
            .ok_or(Unrecoverable::Mismatch)?;
        a.swap(col, pivot);
        inverse.swap(col, pivot);
        let scale = gf::inv(a[col][col]);
        gf::scale(&mut a[col][..e], scale);
        gf::scale(&mut inverse[col][..e], scale);
        for r in 0..e {
            let factor = a[r][col];
            if r != col && factor != 0 {
                let (pivot_a, pivot_inv) = (a[col], inverse[col]);
                gf::mul_add(&mut a[r][..e], factor, &pivot_a[..e]);
                gf::mul_add(&mut inverse[r][..e], factor, &pivot_inv[..e]);
            }
        }
    }
    // Missing symbol c = Σ_r inverse[c][r] · (repair r's remainder).
    for (c, &n) in missing.iter().enumerate().take(e) {
        let out = symbols.get_mut(n).ok_or(Unrecoverable::Mismatch)?;
        let out = out.get_mut(..symbol_len).unwrap_or(&mut []);
        out.fill(0);
        for (r, (_, repair)) in used.iter().enumerate() {
            gf::mul_add(out, inverse[c][r], repair.get(..symbol_len).unwrap_or(&[]));
        }
    }
    Ok(e)
}

/// The most loss [`residual_loss_ppb`] computes a residual for: 30 %.
pub(crate) const RESIDUAL_MAX_LOSS_PPM: u32 = 300_000;

/// The share of datagrams that a code of `data` + `repairs` per group leaves lost, in
/// parts per billion, when every datagram and repair is lost independently with
/// probability `loss_ppm`: a datagram stays lost when it is lost and at least `repairs` of
/// its group's other `data + repairs - 1` are too, `p · P(Bin(n - 1, p) >= m)`. Integer
/// arithmetic (probabilities scaled by 10^11); the tail is summed, not taken from 1, so
/// that small residuals keep their precision. Above [`RESIDUAL_MAX_LOSS_PPM`], where
/// `(1 - p)^39` falls below that scale, it returns the loss itself, an upper bound. What
/// `auto` aims with, and the bound a test of a code derives.
pub(crate) fn residual_loss_ppb(data: u32, repairs: u32, loss_ppm: u32) -> u64 {
    const ONE: u64 = 100_000_000_000;
    const MILLION: u64 = 1_000_000;
    let p = u64::from(loss_ppm.min(1_000_000));
    if loss_ppm > RESIDUAL_MAX_LOSS_PPM || data == 0 {
        return p * 1000;
    }
    // At least 700,000 here; the `max` tells the compiler so (no division-by-zero path).
    let q = (MILLION - p).max(1);
    // u32 counts, so that `e + 1` below is never 0 as a u64 (no division-by-zero path).
    let others: u32 = data.min(MAX_SPAN as u32) + repairs.min(MAX_REPAIRS as u32) - 1;
    // P(none of the others lost) = q^others.
    let mut term = ONE;
    for _ in 0..others {
        term = term * q / MILLION;
    }
    let mut tail = 0u64;
    for e in 0..=others {
        if e >= repairs {
            tail += term;
        }
        // P(e + 1) = P(e) · (others - e) / (e + 1) · p / q; term <= ONE and others < 40, so
        // term · (others - e) · p stays below 4 · 10^18.
        term = term * u64::from(others - e) / (u64::from(e) + 1) * p / q;
    }
    // p / 10^6 · tail / 10^11, in parts per 10^9.
    p * tail.min(ONE) / 100_000_000
}

/// The group span `auto` codes with: 16 datagrams. A group closes after
/// [`GROUP_FLUSH_NS`] anyway, and at 20 Mbit/s of 1,400-byte datagrams about 9 leave in that
/// time, so a longer span would rarely fill; a shorter one costs more repairs at the same
/// residual when it does fill.
pub(crate) const AUTO_SPAN: u8 = 16;

/// The segment size `auto` takes the tunnelled TCP to use: a 1,500-byte path MTU less the
/// tunnel's and the inner headers.
pub(crate) const AUTO_MSS_BYTES: u64 = 1_400;

/// How far below the loss the tunnelled TCP could stand `auto` aims: a quarter, so that
/// the loss that remains would let the TCP reach twice the paths' rate (rate ∝ 1/√p).
pub(crate) const AUTO_MARGIN: u64 = 4;

/// The residual loss `auto` aims for without an RTT or capacity reading, in ppb: 50 ppm,
/// what a TCP stands at 20 Mbit/s and 100 ms.
pub(crate) const AUTO_TARGET_DEFAULT_PPB: u64 = 50_000;

/// The least residual loss `auto` aims for (10 ppm): below it, a long fat pipe's target
/// would ask for more repairs than any loss is worth.
pub(crate) const AUTO_TARGET_MIN_PPB: u64 = 10_000;

/// The most residual loss `auto` leaves (0.2 %): a short, slow path stands more, but a
/// TCP's recovery of each loss still costs it a round trip of delay.
pub(crate) const AUTO_TARGET_MAX_PPB: u64 = 2_000_000;

/// The residual loss `auto` aims for, in ppb, on paths of round-trip time `rtt_us` and
/// capacity `capacity_kbps` together: the loss at which a TCP's rate limit,
/// `1.22 · MSS / (RTT · √p)` (Mathis et al.), equals the capacity, divided by
/// [`AUTO_MARGIN`]; within [`AUTO_TARGET_MIN_PPB`]..=[`AUTO_TARGET_MAX_PPB`], and
/// [`AUTO_TARGET_DEFAULT_PPB`] without a reading (0). At 20 Mbit/s: 292 ppm at 20 ms RTT,
/// 12 ppm at 100 ms. Integer arithmetic.
pub(crate) fn auto_target_ppb(rtt_us: u64, capacity_kbps: u64) -> u64 {
    // RTT · capacity in bits is rtt_us · kbps / 1000.
    let millibits = rtt_us.saturating_mul(capacity_kbps);
    if millibits == 0 {
        return AUTO_TARGET_DEFAULT_PPB;
    }
    // √p in ppm: 1.22 · MSS · 8 bits / (RTT · capacity), times 10^6.
    const NUMERATOR: u64 = 122 * AUTO_MSS_BYTES * 8 * 10_000 * 1000;
    let root_ppm = (NUMERATOR / millibits).min(1_000_000);
    // p in ppb = root_ppm² / 1000.
    (root_ppm * root_ppm / 1000 / AUTO_MARGIN).clamp(AUTO_TARGET_MIN_PPB, AUTO_TARGET_MAX_PPB)
}

/// The fewest repairs for a group of `data` datagrams that keep the residual loss at
/// independent loss `loss_ppm` within `target_ppb` ([`auto_target_ppb`]): 0 when the loss
/// already is, [`MAX_REPAIRS`] when no count is (the most this code can do). At most 8
/// residuals of at most 40 steps each.
pub(crate) fn auto_repairs(data: u32, loss_ppm: u32, target_ppb: u64) -> u8 {
    if u64::from(loss_ppm) * 1000 <= target_ppb || data == 0 {
        return 0;
    }
    (1..=MAX_REPAIRS as u8)
        .find(|&m| residual_loss_ppb(data, m.into(), loss_ppm) <= target_ppb)
        .unwrap_or(MAX_REPAIRS as u8)
}

/// The loss that the tunnel's datagrams met: each path's `(datagrams sent, loss_ppm)`,
/// weighted by the datagrams. A group spans the paths in these shares, and mixing
/// independent losses in fixed shares spreads a group's loss count less than one loss
/// at their mean would, so the mean is the conservative single figure for
/// [`auto_repairs`]. `None` when nothing was sent.
pub(crate) fn mixed_loss_ppm(paths: &[(u64, u32)]) -> Option<u32> {
    // Counts capped at 2^32 keep every product and sum in u64 (no 128-bit division in the
    // kernel); no probe round sends that many.
    let capped = |n: u64| n.min(u64::from(u32::MAX));
    let sent: u64 = paths.iter().map(|&(n, _)| capped(n)).sum();
    let lost: u64 = paths
        .iter()
        .map(|&(n, loss)| capped(n) * u64::from(loss.min(1_000_000)))
        .sum();
    lost.checked_div(sent).map(|ppm| ppm.min(1_000_000) as u32)
}
