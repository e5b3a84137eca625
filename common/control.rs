// SPDX-License-Identifier: GPL-2.0

//! In-band path control, pure logic: the control messages that travel in the tunnel's own
//! 5-tuple on each path, and the sender's view of whether the peer runs MPUDP.
//!
//! Only `core` is used, so everything here is unit-tested on the build host
//! (`selftests/unit.rs`). The modules send these with `udp_hooks::xmit` and take them in
//! their receive hooks before any socket sees them: probes go to `mpudp_recv`, which
//! answers each at once on the path it came by; replies go to `mpudp_send`'s prober.
//!
//! Every message starts like the data header (`seq.rs`): magic "MU", version 2 and kind,
//! path, and the sender's session token. Big-endian:
//!
//! | kind | length | fields after the 8-byte prefix |
//! |---|---|---|
//! | 1 probe | 32 | seq (4), send time ns on the prober's monotonic clock (8), the address the prober sends the primary path to (4), the sequence number the prober's next data datagram takes (4), zero (4) |
//! | 2 reply | 32 | (in the prefix's path byte, bit 7: the responder takes repair datagrams, `fec.rs`) the probe's seq (4), the path's loss at the responder in ppm, `0xffffffff` unknown (4), payload bytes the responder received on the path (8), datagrams, modulo 2^32 (4), the path's capacity as the responder measures it from the data in kbit/s, 0 unknown (4, `capacity.rs`) |
//! | 3 unknown session | 8 | none: "I hold no session with this token; say hello again" |
//! | 4 closing | 8 | none: "I stop answering and taking headers now (unload, `recv/probing 0`, another peer, namespace exit)" |
//!
//! A reply is never longer than the probe it answers, and the 8-byte messages are shorter
//! than any sequenced datagram: answering never amplifies. A closing message goes once per
//! path that this end answered a probe on, when it stops, never in answer to input. The responder answers a
//! probe at once, from the receive hook, so no hold time is reported or trusted: the prober
//! takes the RTT from its own send record.

use crate::parse::Ipv4;
use crate::seq::{be_u32, MAGIC, MAX_PATHS, VERSION};

/// [`Reply::loss_ppm`] when the responder has no measurement of the path.
pub(crate) const LOSS_UNKNOWN: u32 = u32::MAX;

/// Length of a probe and of a reply (the patch hands the hooks at most 32 bytes of a
/// payload, so a control message fits in that).
pub(crate) const PROBE_LEN: usize = 32;
/// Length of the messages that are only the prefix: unknown session and closing.
pub(crate) const SHORT_LEN: usize = 8;

const KIND_PROBE: u8 = 1;
const KIND_REPLY: u8 = 2;
const KIND_UNKNOWN_SESSION: u8 = 3;
const KIND_CLOSING: u8 = 4;

/// A path probe: the prober asks the responder to answer on the same path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) path: u8,
    pub(crate) token: u32,
    pub(crate) seq: u32,
    pub(crate) sent_ns: u64,
    /// The peer address the prober sends the primary path to: the responder's own primary
    /// address, which secondary-path datagrams are delivered to.
    pub(crate) primary_addr: [u8; 4],
    /// The per-peer sequence number of the prober's next sequenced datagram (as of the
    /// probe round): a responder that starts a session starts its reorder buffer there.
    pub(crate) next_seq: u32,
}

/// The answer to a probe, with what the responder measured on that path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) path: u8,
    pub(crate) token: u32,
    pub(crate) seq: u32,
    pub(crate) loss_ppm: u32,
    pub(crate) rx_bytes: u64,
    /// Datagrams the responder received on the path, modulo 2^32.
    pub(crate) rx_datagrams: u32,
    /// The path's capacity as the responder measures it from the data, kbit/s; 0 unknown.
    pub(crate) capacity_kbps: u32,
    /// Whether the responder takes repair datagrams (`recv/fec` 1): bit 7 of the path byte.
    /// A sender from before loss recovery refuses such a reply (its path byte reads 128 or
    /// more) and takes the peer for one without MPUDP: it never sends what the peer would
    /// hand its application.
    pub(crate) takes_repairs: bool,
}

/// The reply's flag in its path byte.
const TAKES_REPAIRS: u8 = 0x80;

/// A control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Probe(Probe),
    Reply(Reply),
    /// The sender of this message holds no session with `token`.
    UnknownSession {
        path: u8,
        token: u32,
    },
    /// The responder of session `token` stops answering probes and removing headers: the
    /// prober takes the peer for one without MPUDP at once, instead of after a second of
    /// silence and ten more probes that would reach the peer's application.
    Closing {
        path: u8,
        token: u32,
    },
}

fn prefix(out: &mut [u8], kind: u8, path: u8, token: u32) {
    out[0..2].copy_from_slice(&MAGIC.to_be_bytes());
    out[2] = VERSION << 4 | kind;
    out[3] = path;
    out[4..8].copy_from_slice(&token.to_be_bytes());
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    (u64::from(be_u32(bytes, at)) << 32) | u64::from(be_u32(bytes, at + 4))
}

impl Control {
    /// The message's wire form, in `out` (at least [`PROBE_LEN`] bytes); returns its length.
    pub(crate) fn encode(&self, out: &mut [u8; PROBE_LEN]) -> usize {
        *out = [0; PROBE_LEN];
        match *self {
            Control::Probe(p) => {
                prefix(out, KIND_PROBE, p.path, p.token);
                out[8..12].copy_from_slice(&p.seq.to_be_bytes());
                out[12..20].copy_from_slice(&p.sent_ns.to_be_bytes());
                out[20..24].copy_from_slice(&p.primary_addr);
                out[24..28].copy_from_slice(&p.next_seq.to_be_bytes());
                PROBE_LEN
            }
            Control::Reply(r) => {
                let flag = if r.takes_repairs { TAKES_REPAIRS } else { 0 };
                prefix(out, KIND_REPLY, r.path | flag, r.token);
                out[8..12].copy_from_slice(&r.seq.to_be_bytes());
                out[12..16].copy_from_slice(&r.loss_ppm.to_be_bytes());
                out[16..24].copy_from_slice(&r.rx_bytes.to_be_bytes());
                out[24..28].copy_from_slice(&r.rx_datagrams.to_be_bytes());
                out[28..32].copy_from_slice(&r.capacity_kbps.to_be_bytes());
                PROBE_LEN
            }
            Control::UnknownSession { path, token } => {
                prefix(out, KIND_UNKNOWN_SESSION, path, token);
                SHORT_LEN
            }
            Control::Closing { path, token } => {
                prefix(out, KIND_CLOSING, path, token);
                SHORT_LEN
            }
        }
    }

    /// The control message that `payload` is, if it is exactly one: right magic, version,
    /// kind, path and length, and zero where zero is due. Anything else is not control.
    pub(crate) fn decode(payload: &[u8]) -> Option<Self> {
        if payload.len() < SHORT_LEN
            || u16::from_be_bytes([payload[0], payload[1]]) != MAGIC
            || payload[2] >> 4 != VERSION
        {
            return None;
        }
        let (kind, token) = (payload[2] & 0xf, be_u32(payload, 4));
        // Only a reply has a flag in its path byte.
        let flags = if kind == KIND_REPLY {
            payload[3] & TAKES_REPAIRS
        } else {
            0
        };
        let path = payload[3] & !flags;
        if usize::from(path) >= MAX_PATHS {
            return None;
        }
        match (kind, payload.len()) {
            (KIND_PROBE, PROBE_LEN) if payload[28..].iter().all(|&b| b == 0) => {
                Some(Control::Probe(Probe {
                    path,
                    token,
                    seq: be_u32(payload, 8),
                    sent_ns: u64_at(payload, 12),
                    primary_addr: [payload[20], payload[21], payload[22], payload[23]],
                    next_seq: be_u32(payload, 24),
                }))
            }
            (KIND_REPLY, PROBE_LEN) => Some(Control::Reply(Reply {
                path,
                token,
                seq: be_u32(payload, 8),
                loss_ppm: match be_u32(payload, 12) {
                    LOSS_UNKNOWN => LOSS_UNKNOWN,
                    ppm => ppm.min(1_000_000),
                },
                rx_bytes: u64_at(payload, 16),
                rx_datagrams: be_u32(payload, 24),
                capacity_kbps: be_u32(payload, 28),
                takes_repairs: flags & TAKES_REPAIRS != 0,
            })),
            (KIND_UNKNOWN_SESSION, SHORT_LEN) => Some(Control::UnknownSession { path, token }),
            (KIND_CLOSING, SHORT_LEN) => Some(Control::Closing { path, token }),
            _ => None,
        }
    }
}

/// Whether the sender may put the sequencing header on its datagrams to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerKind {
    /// Not known yet: datagrams go without a header while probes ask.
    Unknown,
    /// The peer answered a probe of this session: datagrams carry the header.
    Mpudp,
    /// The peer answered none of [`Capability::GIVE_UP_AFTER`] probes: datagrams go without a
    /// header, and it is asked again only every [`Capability::RETRY_NS`].
    Plain,
}

/// The sender's knowledge of the peer, from probes sent and answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capability {
    pub(crate) kind: PeerKind,
    /// Probes sent since the last answer (or since the start).
    unanswered: u32,
    /// When the last answer arrived, ns.
    last_answer_ns: u64,
    /// When the peer was last judged plain, ns.
    plain_since_ns: u64,
    /// When the peer last said it was closing, ns (0: never): answers to probes sent before
    /// then are stale (sent on another path, they can overtake the closing message).
    closed_ns: u64,
}

impl Default for Capability {
    fn default() -> Self {
        Self::new()
    }
}

impl Capability {
    /// Unanswered probes after which an unknown peer is taken for one without MPUDP.
    pub(crate) const GIVE_UP_AFTER: u32 = 10;
    /// How long an MPUDP peer may answer nothing, on any path, before the header stops:
    /// if its module was unloaded, every sequenced datagram is garbage to its application.
    pub(crate) const SILENCE_NS: u64 = 1_000_000_000;
    /// How often a plain peer is asked again.
    pub(crate) const RETRY_NS: u64 = 10_000_000_000;

    /// Nothing known.
    pub(crate) const fn new() -> Self {
        Self {
            kind: PeerKind::Unknown,
            unanswered: 0,
            last_answer_ns: 0,
            plain_since_ns: 0,
            closed_ns: 0,
        }
    }

    /// Whether a probe should go out now (on a probe interval's tick).
    pub(crate) fn should_probe(&self, now_ns: u64) -> bool {
        self.kind != PeerKind::Plain || now_ns.saturating_sub(self.plain_since_ns) >= Self::RETRY_NS
    }

    /// A probe went out at `now_ns`.
    pub(crate) fn probe_sent(&mut self, now_ns: u64) {
        self.unanswered = self.unanswered.saturating_add(1);
        match self.kind {
            PeerKind::Unknown if self.unanswered >= Self::GIVE_UP_AFTER => {
                self.kind = PeerKind::Plain;
                self.plain_since_ns = now_ns;
            }
            PeerKind::Plain => self.plain_since_ns = now_ns,
            _ => {}
        }
    }

    /// A reply of this session arrived at `now_ns`, answering a probe sent at `sent_ns`.
    /// Returns `false`, and learns nothing, when the peer said it was closing after that
    /// probe went out.
    pub(crate) fn answered(&mut self, sent_ns: u64, now_ns: u64) -> bool {
        if sent_ns < self.closed_ns {
            return false;
        }
        self.kind = PeerKind::Mpudp;
        self.unanswered = 0;
        self.last_answer_ns = now_ns;
        true
    }

    /// The peer said at `now_ns` that it stops answering and taking headers: no header from
    /// now on, and it is asked again only after [`Capability::RETRY_NS`], as a peer that
    /// never answered.
    pub(crate) fn closing(&mut self, now_ns: u64) {
        self.kind = PeerKind::Plain;
        self.unanswered = 0;
        self.plain_since_ns = now_ns;
        self.closed_ns = now_ns;
    }

    /// The peer said it holds no session with our token (it restarted): stop the header at
    /// once and ask again.
    pub(crate) fn unknown_session(&mut self) {
        self.kind = PeerKind::Unknown;
        self.unanswered = 0;
    }

    /// Time passed (called on each probe tick): an MPUDP peer that has been silent for
    /// [`Capability::SILENCE_NS`] is no longer sent headers.
    pub(crate) fn tick(&mut self, now_ns: u64) {
        if self.kind == PeerKind::Mpudp
            && now_ns.saturating_sub(self.last_answer_ns) >= Self::SILENCE_NS
        {
            self.kind = PeerKind::Unknown;
            self.unanswered = 0;
        }
    }

    /// Whether datagrams to the peer carry the sequencing header now.
    pub(crate) fn sequenced(&self) -> bool {
        self.kind == PeerKind::Mpudp
    }
}

/// The way back to the prober on one path: where its latest answered probe came from, and
/// how it arrived. Ports in host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReturnRoute {
    /// This end's address and port the probe was sent to.
    pub(crate) local: (Ipv4, u16),
    /// The prober's address and port.
    pub(crate) remote: (Ipv4, u16),
    /// The interface the probe arrived on.
    pub(crate) ifindex: i32,
    /// The prober's session token.
    pub(crate) token: u32,
}

/// The responder's record of the paths it answered on, so that it can say "closing" on each
/// when it stops; and whether it stopped for good (unload, namespace exit), after which it
/// answers nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AnsweredPaths {
    routes: [Option<ReturnRoute>; MAX_PATHS],
    closed: bool,
}

impl Default for AnsweredPaths {
    fn default() -> Self {
        Self::new()
    }
}

impl AnsweredPaths {
    /// Nothing answered yet; open.
    pub(crate) const fn new() -> Self {
        Self {
            routes: [None; MAX_PATHS],
            closed: false,
        }
    }

    /// Whether probes may be answered: the responder has not closed for good. If so, the
    /// probe on path `path` about to be answered by `route` is recorded.
    pub(crate) fn answering(&mut self, path: usize, route: ReturnRoute) -> bool {
        if self.closed {
            return false;
        }
        if let Some(slot) = self.routes.get_mut(path) {
            *slot = Some(route);
        }
        true
    }

    /// The responder stops answering (for good when `for_good`). Returns, by path, where the
    /// closing message goes: once on each path answered since the last stop.
    pub(crate) fn close(&mut self, for_good: bool) -> [Option<ReturnRoute>; MAX_PATHS] {
        self.closed |= for_good;
        core::mem::replace(&mut self.routes, [None; MAX_PATHS])
    }
}
