// SPDX-License-Identifier: GPL-2.0

//! MPUDP receiver: makes datagrams that arrive over the other paths look like they came over
//! the primary one, so the tunnel application sees one peer over all paths.
//!
//! Before the socket lookup, a datagram from one of the peer's alternate addresses gets the peer's
//! primary address as its source and, once learned, the local address the primary path
//! arrives at as its destination. Connected and dual-stack sockets, encapsulation sockets and
//! `IP_PKTINFO` then see the primary path's addresses. Only datagrams whose source or local
//! port is the configured tunnel port, and whose source is one of the configured peer's
//! addresses, are touched or counted.
//!
//! With `recv/probing` on, the receive hook answers the peer's path probes
//! (`common/control.rs`), which travel in the tunnel's own 5-tuple, at once and on the path
//! each arrived on, reporting what this end received from the peer on that path; no socket
//! sees a probe. A probe carries the peer's session token; once it is known, the peer's
//! datagrams that carry the sequencing header with that token (`common/seq.rs`) have it
//! removed before the socket lookup, and each path's loss (from the gaps in its sequence
//! numbers) and capacity (from the dispersion of its datagrams, `common/capacity.rs`) are
//! measured and reported in the replies. Those datagrams then go through the peer's
//! reorder buffer (`common/peer_reorder.rs`), which delivers them in the sender's order.

use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};

#[path = "common/ffi.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_send, which uses the send-side parts"
)]
mod ffi;
#[path = "common/netns.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_send, which walks every namespace's state"
)]
mod netns;
#[path = "common/parse.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_send, which uses the interface-name parts"
)]
mod parse;

#[path = "common/capacity.rs"]
mod capacity;
#[path = "common/control.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_send, which sends probes and reads replies"
)]
mod control;
#[path = "common/peer_reorder.rs"]
mod peer_reorder;
#[path = "common/reorder.rs"]
mod reorder;

#[path = "common/fec.rs"]
#[allow(dead_code, reason = "shared with mpudp_send, which codes the groups")]
mod fec;
#[path = "common/fec_rx.rs"]
#[allow(
    dead_code,
    reason = "the host unit tests copy from slices, the kernel from skbs"
)]
mod fec_rx;
#[path = "common/probe.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_send, which measures paths and schedules"
)]
mod probe;
#[path = "common/seq.rs"]
#[allow(dead_code, reason = "shared with mpudp_send, which writes the headers")]
mod seq;
#[path = "common/udp_hooks.rs"]
#[allow(dead_code, reason = "shared with mpudp_send, which uses the send hook")]
mod udp_hooks;

use capacity::PathRate;
use control::{AnsweredPaths, Control, Probe, Reply, ReturnRoute, PROBE_LEN};
use fec::{RepairHeader, REPAIR_HEADER_LEN};
use fec_rx::{DataVerdict, FecWindow, Outcome};
use ffi::{File, NetExit, NetId, PageWriter, RcuValue, SoftirqLock, SysfsFiles, SysfsGroup};
use kernel::alloc::KVBox;
use netns::{LogLimit, NetnsStates, NsState, PathCounters};
use parse::{Ipv4, Peer};
use peer_reorder::PeerReorder;
use probe::PRIMARY;
use seq::{DataHeader, GapLoss, HEADER_LEN, MAX_PATHS};
use udp_hooks::{Arriving, HeldDatagram, RecvHook, Verdict};

module! {
    type: MpudpRecv,
    name: "mpudp_recv",
    authors: ["MPUDP developers"],
    description: "MPUDP: deliver a UDP tunnel's datagrams from all its network paths as one peer",
    license: "GPL",
}

/// What the receiver measures of one path for the peer's prober: its loss window and when it
/// was last read (monotonic ns), and its capacity from the data's dispersion.
struct PathMeasures {
    loss: GapLoss,
    loss_read_ns: u64,
    rate: PathRate,
}

/// The measures of a new session: nothing expected, never read, nothing arrived.
const NO_MEASURES: [PathMeasures; MAX_PATHS] = [const {
    PathMeasures {
        loss: GapLoss::new(),
        loss_read_ns: 0,
        rate: PathRate::new(),
    }
}; MAX_PATHS];

/// What one namespace configured for its receiver. Published whole ([`RcuValue`]): a datagram
/// is judged by one version, never by a new peer with an old port.
#[derive(Clone, Copy)]
struct RecvConfig {
    peer: Option<Peer>,
    /// The tunnel's UDP port (source or local); 0 when unset.
    port: u32,
    /// Whether this end answers the peer's probes and takes its sequenced datagrams
    /// (`recv/probing`).
    probing: bool,
    /// Whether sequenced datagrams go through the reorder buffer (`recv/reorder`).
    reorder: bool,
    /// Whether this end takes the peer's repair datagrams and rebuilds lost datagrams from
    /// them (`recv/fec`); its replies say so, and only then does the peer send any.
    fec: bool,
}

impl RecvConfig {
    /// A namespace's configuration before its first write.
    const DEFAULTS: Self = Self {
        peer: None,
        port: 0,
        probing: false,
        reorder: true,
        fec: false,
    };
}

/// The receive-side configuration and counters of one network namespace.
struct RecvState {
    config: RcuValue<RecvConfig>,
    /// Datagrams by path: the header's path index, or without one the address they came
    /// from (the primary path's, or the alternate, delivered as from the primary one).
    paths: [PathCounters; MAX_PATHS],
    /// The local address the peer's primary-path datagrams arrive at (as on the wire); 0
    /// until one has arrived since `peer` was written. Secondary-path datagrams get it as
    /// their destination.
    primary_local: Atomic<u32>,
    /// Secondary-path datagrams delivered unchanged because their headers could not be made
    /// writable (no memory).
    rewrite_errors: Atomic<u64>,
    probes_answered: Atomic<u64>,
    /// Probes from the peer dropped unanswered: bad checksum, not sent to one of this host's
    /// addresses, the answer could not be sent (no route, no memory), or this end is closing
    /// (module unload, namespace exit).
    probe_drops: Atomic<u64>,
    /// The paths answered on, where the closing message goes when this end stops answering.
    answered: SoftirqLock<AnsweredPaths>,
    /// Closing messages sent (`control::Control::Closing`).
    closings_sent: Atomic<u64>,
    /// Each path's loss from the gaps in its sequence numbers, and its capacity.
    measures: SoftirqLock<[PathMeasures; MAX_PATHS]>,
    /// The peer's session token from its latest probe, with [`seq::SEEN`] set; 0 while none
    /// is known (sequenced datagrams are then not recognised).
    peer_token: Atomic<u64>,
    /// Per path (by the header's path index): the highest sequence number seen
    /// ([`seq::advance_highest`]) and the datagrams that carried one.
    highest: [Atomic<u64>; MAX_PATHS],
    received: [Atomic<u64>; MAX_PATHS],
    /// Datagrams whose sequencing header was removed.
    sequenced: Atomic<u64>,
    /// Sequenced datagrams dropped: their token is not the peer's (this end restarted, and
    /// the peer's next probe tells it the token), or no token is known yet.
    unknown_session: Atomic<u64>,
    /// Sequenced datagrams dropped because the header could not be removed (bad checksum,
    /// inconsistent lengths, no memory).
    header_errors: Atomic<u64>,
    /// The peer's sequenced datagrams, put back in the sender's order.
    reorder: PeerReorder,
    /// Loss recovery's window (`fec_rx.rs`) while `recv/fec` is 1; allocated by the write
    /// that turns it on (it is about 425 KiB), freed by the one that turns it off.
    fec: SoftirqLock<Option<KVBox<FecWindow>>>,
    fec_counters: FecCounters,
}

/// What loss recovery did, for sysfs.
struct FecCounters {
    /// Repair datagrams of the peer's session taken off the wire.
    repairs: Atomic<u64>,
    /// Datagrams rebuilt from them and handed on (to the reorder buffer or the socket).
    rebuilt: Atomic<u64>,
    /// Repairs dropped unused: nothing of their group was missing (or a copy failed).
    unneeded: Atomic<u64>,
    /// Repairs whose group could not be rebuilt: its datagrams left the window, or they did
    /// not match it.
    unrecoverable: Atomic<u64>,
    /// Repairs dropped unused to make room for newer groups'.
    evicted: Atomic<u64>,
    /// Sequenced datagrams dropped because the window held them already: the original of a
    /// rebuilt one, arriving after all.
    duplicates: Atomic<u64>,
    /// Rebuilt datagrams lost for want of memory (or because their route was going away).
    rebuild_errors: Atomic<u64>,
}

impl FecCounters {
    const fn new() -> Self {
        Self {
            repairs: Atomic::new(0),
            rebuilt: Atomic::new(0),
            unneeded: Atomic::new(0),
            unrecoverable: Atomic::new(0),
            evicted: Atomic::new(0),
            duplicates: Atomic::new(0),
            rebuild_errors: Atomic::new(0),
        }
    }

    fn count(&self, outcome: &Outcome) {
        self.unneeded.add(u64::from(outcome.unneeded), Relaxed);
        self.unrecoverable
            .add(u64::from(outcome.unrecoverable), Relaxed);
        self.evicted.add(u64::from(outcome.evicted), Relaxed);
    }
}

/// The datagrams one call rebuilt, by sequence number, to hand on once the window's lock is
/// dropped (handing on may deliver, and delivery may come back into the hook).
type Rebuilt = [Option<(u32, HeldDatagram)>; fec::MAX_REPAIRS];

impl NsState for RecvState {
    const FRESH: Self = Self {
        config: RcuValue::new(),
        paths: [const { PathCounters::new() }; MAX_PATHS],
        primary_local: Atomic::new(0),
        rewrite_errors: Atomic::new(0),
        probes_answered: Atomic::new(0),
        probe_drops: Atomic::new(0),
        answered: SoftirqLock::new(AnsweredPaths::new()),
        closings_sent: Atomic::new(0),
        measures: SoftirqLock::new(NO_MEASURES),
        peer_token: Atomic::new(0),
        highest: [const { Atomic::new(0) }; MAX_PATHS],
        received: [const { Atomic::new(0) }; MAX_PATHS],
        sequenced: Atomic::new(0),
        unknown_session: Atomic::new(0),
        header_errors: Atomic::new(0),
        reorder: PeerReorder::new(),
        fec: SoftirqLock::new(None),
        fec_counters: FecCounters::new(),
    };

    unsafe fn set_up(&self) -> Result {
        let reorder_key = kernel::static_lock_class!();
        let measures_key = kernel::static_lock_class!();
        let answered_key = kernel::static_lock_class!();
        let fec_key = kernel::static_lock_class!();
        // SAFETY: The caller's contract: once, before anything can reach the state, which
        // never moves and is torn down (the buffer shut down) before it is freed.
        unsafe {
            self.reorder.init(reorder_key);
            self.measures.init(c"mpudp_measures", measures_key);
            self.answered.init(c"mpudp_answered", answered_key);
            self.fec.init(c"mpudp_fec", fec_key);
        }
        self.config.init(RecvConfig::DEFAULTS)
    }

    fn quiesce(&self, net: NetId) {
        // The peer stops sending headers now, not after a second of silence.
        // SAFETY: `net` is whole during its first exit step.
        unsafe { self.say_closing(net, true) };
    }

    fn tear_down(&self) {
        // Its sockets are gone (namespace exit), or what it held was delivered already
        // (module unload, `StopReorder`): what the buffer still holds is freed.
        self.reorder.shut_down(false);
        // SAFETY: Torn down once nothing reaches the state (see `NsState::tear_down`).
        unsafe { self.config.release() };
    }
}

impl RecvState {
    /// The configuration now; a torn-down state's reads as the defaults.
    fn config(&self) -> RecvConfig {
        self.config.load().unwrap_or(RecvConfig::DEFAULTS)
    }

    /// Forgets the peer's token and its sequence numbers (a new peer); what the reorder
    /// buffer held of the old session is delivered. Process context.
    fn forget_session(&self) {
        self.peer_token.store(0, Relaxed);
        self.forget_path_numbers();
        if let Some(mut measures) = self.measures.lock_irq() {
            *measures = NO_MEASURES;
        }
        self.reorder.flush(true);
        self.reorder.forget_session();
        if let Some(mut fec) = self.fec.lock_irq() {
            if let Some(window) = fec.as_mut() {
                window.reset();
            }
        }
    }

    fn forget_path_numbers(&self) {
        for counter in Iterator::chain(self.highest.iter(), &self.received) {
            counter.store(0, Relaxed);
        }
    }

    /// Learns the peer's session token from a probe, in the receive hook: a new one starts
    /// the sequence, the loss windows and the reorder buffer afresh (what it held of the old
    /// session is delivered first), the buffer at the probe's `next_seq`.
    fn learn_token(&self, token: u32, next_seq: u32) {
        let word = seq::SEEN | u64::from(token);
        if self.peer_token.load(Relaxed) == word {
            return;
        }
        self.forget_path_numbers();
        // SAFETY: The receive hook runs in softirq context.
        if let Some(mut measures) = unsafe { self.measures.lock_in_softirq() } {
            *measures = NO_MEASURES;
        }
        self.reorder.new_session(next_seq);
        // SAFETY: The receive hook runs in softirq context.
        if let Some(mut fec) = unsafe { self.fec.lock_in_softirq() } {
            if let Some(window) = fec.as_mut() {
                window.reset();
            }
        }
        self.peer_token.store(word, Relaxed);
    }

    /// What a reply reports of path `path`: its loss from gaps in its data sequence, read at
    /// most once per [`LOSS_INTERVAL_NS`] ([`control::LOSS_UNKNOWN`] while nothing was
    /// expected), and its capacity in kbit/s (0 unknown). In the receive hook.
    fn path_report(&self, path: usize) -> (u32, u32) {
        const UNKNOWN: (u32, u32) = (control::LOSS_UNKNOWN, 0);
        // SAFETY: The receive hook runs in softirq context.
        let Some(mut measures) = (unsafe { self.measures.lock_in_softirq() }) else {
            return UNKNOWN;
        };
        let (Some(measures), Some(highest), Some(received)) = (
            measures.get_mut(path),
            self.highest.get(path),
            self.received.get(path),
        ) else {
            return UNKNOWN;
        };
        let now = ffi::now_ns();
        if now.saturating_sub(measures.loss_read_ns) >= LOSS_INTERVAL_NS {
            measures.loss_read_ns = now;
            measures
                .loss
                .read(highest.load(Relaxed), received.load(Relaxed));
        }
        (
            measures.loss.loss_ppm().unwrap_or(control::LOSS_UNKNOWN),
            measures.rate.capacity_kbps(now).unwrap_or(0),
        )
    }

    /// Takes in a sequenced datagram of `wire_bytes` (IP packet) with `header`, for its path's
    /// capacity. In the receive hook.
    fn measure_rate(&self, header: &DataHeader, wire_bytes: usize) {
        let now = ffi::now_ns();
        // SAFETY: The receive hook runs in softirq context.
        let Some(mut measures) = (unsafe { self.measures.lock_in_softirq() }) else {
            return;
        };
        if let Some(measures) = measures.get_mut(usize::from(header.path)) {
            let bytes = u32::try_from(wire_bytes).unwrap_or(u32::MAX);
            measures
                .rate
                .arrive(header.path_seq, header.sent_us, now, bytes);
        }
    }

    /// Answers probe `probe`, which arrived as `d` from the peer, on the path it came by:
    /// from the address and port it was sent to, to the ones it came from, out of the
    /// interface it arrived on. The answer is as long as the probe: never an amplifier.
    fn answer(&self, d: &mut Arriving<'_>, probe: &Probe) -> Verdict {
        // A corrupted probe teaches nothing; one not sent to this host (a broadcast) is not
        // answered.
        // SAFETY: The hook runs for a datagram in `d.net`, which is alive for the call.
        if d.verify_and_empty().is_err() || !unsafe { d.net.is_local_address(d.daddr) } {
            self.probe_drops.add(1u64, Relaxed);
            return Verdict::Drop;
        }
        let path = usize::from(probe.path);
        let back = ReturnRoute {
            local: (d.daddr, d.dport),
            remote: (d.saddr, d.sport),
            ifindex: d.iif,
            token: probe.token,
        };
        // SAFETY: The receive hook runs in softirq context.
        let open = unsafe { self.answered.lock_in_softirq() }
            .is_some_and(|mut answered| answered.answering(path, back));
        if !open {
            self.probe_drops.add(1u64, Relaxed);
            return Verdict::Drop;
        }
        self.learn_token(probe.token, probe.next_seq);
        let counters = self.path_counters(path);
        let (loss_ppm, capacity_kbps) = self.path_report(path);
        let reply = Control::Reply(Reply {
            path: probe.path,
            token: probe.token,
            seq: probe.seq,
            loss_ppm,
            rx_bytes: counters.bytes.load(Relaxed),
            // The wire carries the low 32 bits.
            rx_datagrams: counters.datagrams.load(Relaxed) as u32,
            capacity_kbps,
            takes_repairs: self.config().fec,
        });
        let mut wire = [0u8; PROBE_LEN];
        let len = reply.encode(&mut wire);
        // SAFETY: As above.
        let sent = unsafe {
            udp_hooks::xmit(
                d.net,
                (d.daddr, d.dport),
                (d.saddr, d.sport),
                d.iif,
                &wire[..len],
            )
        };
        match sent {
            Ok(()) => {
                self.probes_answered.add(1u64, Relaxed);
                Verdict::Consumed
            }
            Err(_) => {
                self.probe_drops.add(1u64, Relaxed);
                Verdict::Drop
            }
        }
    }

    /// Tells the prober, on each path answered since the last time, that this end stops
    /// answering its probes and taking its headers; for good (no probe answered again) when
    /// `for_good`. Process context.
    ///
    /// # Safety
    ///
    /// The namespace `net`, whose state this is, is alive for the duration of the call.
    unsafe fn say_closing(&self, net: NetId, for_good: bool) {
        let Some(routes) = self.answered.lock_irq().map(|mut a| a.close(for_good)) else {
            return;
        };
        for (path, route) in routes.iter().enumerate() {
            let Some(route) = route else {
                continue;
            };
            let mut wire = [0u8; PROBE_LEN];
            let len = Control::Closing {
                path: path as u8,
                token: route.token,
            }
            .encode(&mut wire);
            // SAFETY: The caller's contract.
            let sent = unsafe {
                udp_hooks::xmit(net, route.local, route.remote, route.ifindex, &wire[..len])
            };
            if sent.is_ok() {
                self.closings_sent.add(1u64, Relaxed);
            }
        }
    }

    /// Takes in path `path`'s sequence number `path_seq`, for its loss.
    fn count_path_seq(&self, path: usize, path_seq: u32) {
        let (Some(highest), Some(received)) = (self.highest.get(path), self.received.get(path))
        else {
            return;
        };
        let mut word = highest.load(Relaxed);
        // Each failed exchange means another CPU moved the word on: bounded by concurrency.
        while let Some(next) = seq::advance_highest(word, path_seq) {
            match highest.cmpxchg(word, next, Relaxed) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        received.add(1u64, Relaxed);
    }

    /// Takes sequenced datagram `seq` (header removed, addresses rewritten) into the FEC
    /// window, if there is one: `Duplicate` if it held it already; what it rebuilt from
    /// waiting repairs is handed on before this returns. In the receive hook.
    fn fec_data(&self, d: &Arriving<'_>, seq: u32, reorder: bool) -> DataVerdict {
        let mut rebuilt: Rebuilt = Default::default();
        let verdict = {
            // SAFETY: The receive hook runs in softirq context.
            let Some(mut fec) = (unsafe { self.fec.lock_in_softirq() }) else {
                return DataVerdict::New;
            };
            let Some(window) = fec.as_mut() else {
                return DataVerdict::New;
            };
            let (verdict, outcome) =
                window.data_from(seq, d.len, |out| d.copy_payload(0, out).is_ok());
            self.fec_counters.count(&outcome);
            self.rebuild(d, window, &mut rebuilt);
            verdict
        };
        self.hand_on(rebuilt, reorder);
        if verdict == DataVerdict::Duplicate {
            self.fec_counters.duplicates.add(1u64, Relaxed);
        }
        verdict
    }

    /// Takes repair `header` (its header already removed: the payload is its symbol, of
    /// `symbol_len` bytes) into the FEC window, and hands on what it rebuilt. In the receive
    /// hook.
    fn fec_repair(
        &self,
        d: &Arriving<'_>,
        header: &RepairHeader,
        symbol_len: usize,
        reorder: bool,
    ) {
        self.fec_counters.repairs.add(1u64, Relaxed);
        let mut rebuilt: Rebuilt = Default::default();
        {
            // SAFETY: The receive hook runs in softirq context.
            let Some(mut fec) = (unsafe { self.fec.lock_in_softirq() }) else {
                return;
            };
            let Some(window) = fec.as_mut() else {
                self.fec_counters.unneeded.add(1u64, Relaxed);
                return;
            };
            let outcome =
                window.repair_from(header, symbol_len, |out| d.copy_payload(0, out).is_ok());
            self.fec_counters.count(&outcome);
            self.rebuild(d, window, &mut rebuilt);
        }
        self.hand_on(rebuilt, reorder);
    }

    /// Makes datagrams of what `window` just rebuilt, each a copy of `d` (same path and
    /// addresses) with the rebuilt payload.
    fn rebuild(&self, d: &Arriving<'_>, window: &FecWindow, out: &mut Rebuilt) {
        for ((seq, payload), slot) in window.rebuilt().zip(out.iter_mut()) {
            match d.rebuild(payload) {
                Some(held) => *slot = Some((seq, held)),
                None => self.fec_counters.rebuild_errors.add(1u64, Relaxed),
            }
        }
    }

    /// Hands rebuilt datagrams on: to the reorder buffer, or to their socket at once.
    fn hand_on(&self, rebuilt: Rebuilt, reorder: bool) {
        for (seq, held) in rebuilt.into_iter().flatten() {
            self.fec_counters.rebuilt.add(1u64, Relaxed);
            if reorder {
                self.reorder.arrive_rebuilt(seq, held);
            } else {
                held.deliver();
            }
        }
    }

    /// Rewrites a datagram from one of the peer's alternate addresses as if it had come
    /// over the primary path: from the peer's primary address, to the learned local primary
    /// address (until one is learned, its destination stays). Data and repairs alike, so
    /// that a datagram rebuilt from a repair looks as the data of its path does.
    fn rewrite_as_primary(&self, d: &mut Arriving<'_>, peer: &Peer) -> Result {
        let learned = self.primary_local.load(Relaxed);
        let local = if learned != 0 { Ipv4(learned) } else { d.daddr };
        let (sport, dport) = (d.sport, d.dport);
        d.rewrite(peer.primary, sport, local, dport)
    }

    /// The counters of the path with index `path` (the header's numbering).
    fn path_counters(&self, path: usize) -> &PathCounters {
        // The header's path is below MAX_PATHS (`DataHeader::decode`), a probe's too.
        self.paths.get(path).unwrap_or(&self.paths[PRIMARY])
    }
}

static NAMESPACES: NetnsStates<RecvState> = NetnsStates::new();
static REJECT_LOG: LogLimit = LogLimit::new();

/// IPv4 and UDP headers (no IP options), which a path's capacity carries besides the payload.
const IP_UDP_HEADERS: usize = 28;

/// Each path's loss is read over intervals of at least this long.
const LOSS_INTERVAL_NS: u64 = 1_000_000_000;

struct Policy;

impl RecvHook for Policy {
    fn arrive(d: &mut Arriving<'_>) -> Verdict {
        // SAFETY: Hooks run under RCU for a datagram of `d.net`, alive for the call, and are
        // unregistered before the namespace states are.
        let Some(ns) = (unsafe { NAMESPACES.find(d.net) }) else {
            return Verdict::Deliver;
        };
        let Some(config) = ns.config.load() else {
            return Verdict::Deliver;
        };
        let Some(peer) = config.peer else {
            return Verdict::Deliver;
        };
        if !parse::on_tunnel_port(config.port, d.sport, d.dport) {
            return Verdict::Deliver;
        }
        // The path whose peer address sent it (0 for the primary address).
        let Some(from_path) = peer.path_of(d.saddr) else {
            return Verdict::Deliver;
        };
        let probing = config.probing;
        match d.whole_payload().and_then(Control::decode) {
            Some(Control::Probe(probe)) if probing => return ns.answer(d, &probe),
            // Answers to this host's own probes are its sender's (mpudp_send's hook, before
            // or after this one): left as they arrived, addresses too.
            Some(_) => return Verdict::Deliver,
            None => {}
        }
        let token = ns.peer_token.load(Relaxed);
        if let Some((repair, symbol_len)) = RepairHeader::decode_head(d.head(), d.len) {
            if repair.token != token as u32 || token & seq::SEEN == 0 {
                if !probing {
                    return Verdict::Deliver;
                }
                ns.unknown_session.add(1u64, Relaxed);
                return Verdict::Drop;
            }
            if d.strip(REPAIR_HEADER_LEN).is_err() {
                ns.header_errors.add(1u64, Relaxed);
                return Verdict::Drop;
            }
            // A repair takes its path's next number, as data does: the path's loss counts it.
            ns.count_path_seq(repair.path.into(), repair.path_seq);
            // Rebuilt datagrams are copies of this one: they must look as data from this
            // path does.
            if from_path != PRIMARY && ns.rewrite_as_primary(d, &peer).is_err() {
                ns.rewrite_errors.add(1u64, Relaxed);
                return Verdict::Drop;
            }
            ns.fec_repair(d, &repair, symbol_len, config.reorder);
            return Verdict::Consumed;
        }
        // The header of a sequenced datagram; `None` for a plain one.
        let mut sequenced = None;
        if let Some(header) = DataHeader::decode(d.head()) {
            if header.of_session(token) {
                if d.strip(HEADER_LEN).is_err() {
                    ns.header_errors.add(1u64, Relaxed);
                    return Verdict::Drop;
                }
                ns.sequenced.add(1u64, Relaxed);
                ns.count_path_seq(header.path.into(), header.path_seq);
                ns.measure_rate(&header, d.len + HEADER_LEN + IP_UDP_HEADERS);
                sequenced = Some(header);
            } else if probing {
                // Only a peer that this end answers probes for sends headers: without
                // probing, a datagram shaped like one is the application's own.
                ns.unknown_session.add(1u64, Relaxed);
                return Verdict::Drop;
            }
        }
        if from_path != PRIMARY {
            if ns.rewrite_as_primary(d, &peer).is_ok() {
                ns.path_counters(sequenced.map_or(from_path, |h| h.path.into()))
                    .count(d.len);
            } else {
                ns.rewrite_errors.add(1u64, Relaxed);
            }
        } else {
            // Learned only from datagrams to one of this host's own addresses: a spoofed
            // broadcast must not become every secondary datagram's destination.
            // SAFETY: The hook runs for a datagram in `d.net`, which is alive for the call.
            let to_local = || unsafe { d.net.is_local_address(d.daddr) };
            if ns.primary_local.load(Relaxed) != d.daddr.0 && to_local() {
                ns.primary_local.store(d.daddr.0, Relaxed);
            }
            // With one address for several paths, only the header tells them apart.
            ns.path_counters(sequenced.map_or(PRIMARY, |h| h.path.into()))
                .count(d.len);
        }
        if let Some(header) = sequenced.filter(|_| config.fec) {
            if ns.fec_data(d, header.seq, config.reorder) == DataVerdict::Duplicate {
                return Verdict::Drop;
            }
        }
        match sequenced {
            // Rewritten and stripped: the buffer delivers it as the socket would have got it.
            Some(header) if config.reorder => ns.reorder.arrive(d, &header),
            _ => Verdict::Deliver,
        }
    }
}

impl ffi::InterfacesChanged for Policy {
    fn interface_unregistering() {
        // Held datagrams point to the interface they arrived on: they go before it does. A
        // namespace being dismantled is still in the registry while its interfaces go.
        let config = ffi::config_lock();
        NAMESPACES.for_each(&config, |_, ns| ns.reorder.flush(true));
    }
}

impl NetExit for Policy {
    fn net_pre_exit(net: NetId) {
        NAMESPACES.pre_exit(net, &ffi::config_lock());
    }

    fn net_exit(net: NetId) {
        NAMESPACES.exit(net, &ffi::config_lock());
    }
}

static FILES: SysfsGroup = SysfsGroup::new(
    Some(c"recv"),
    &[
        File {
            name: c"peer",
            writable: true,
        },
        File {
            name: c"port",
            writable: true,
        },
        File {
            name: c"probing",
            writable: true,
        },
        File {
            name: c"probes_answered",
            writable: false,
        },
        File {
            name: c"probe_drops",
            writable: false,
        },
        File {
            name: c"closings_sent",
            writable: false,
        },
        File {
            name: c"rx_primary_datagrams",
            writable: false,
        },
        File {
            name: c"rx_primary_bytes",
            writable: false,
        },
        File {
            name: c"rx_secondary_datagrams",
            writable: false,
        },
        File {
            name: c"rx_secondary_bytes",
            writable: false,
        },
        File {
            name: c"primary_local",
            writable: false,
        },
        File {
            name: c"rx_rewrite_errors",
            writable: false,
        },
        File {
            name: c"rx_sequenced_datagrams",
            writable: false,
        },
        File {
            name: c"rx_unknown_session_drops",
            writable: false,
        },
        File {
            name: c"rx_header_error_drops",
            writable: false,
        },
        File {
            name: c"reorder",
            writable: true,
        },
        File {
            name: c"fec",
            writable: true,
        },
        File {
            name: c"rx_fec_repairs",
            writable: false,
        },
        File {
            name: c"rx_fec_rebuilt",
            writable: false,
        },
        File {
            name: c"rx_fec_unneeded",
            writable: false,
        },
        File {
            name: c"rx_fec_unrecoverable",
            writable: false,
        },
        File {
            name: c"rx_fec_evicted",
            writable: false,
        },
        File {
            name: c"rx_fec_duplicates",
            writable: false,
        },
        File {
            name: c"rx_fec_rebuild_errors",
            writable: false,
        },
        File {
            name: c"reorder_max_ms",
            writable: true,
        },
        File {
            name: c"reorder_max_kb",
            writable: true,
        },
        File {
            name: c"reorder_in_order",
            writable: false,
        },
        File {
            name: c"reorder_held",
            writable: false,
        },
        File {
            name: c"reorder_filled",
            writable: false,
        },
        File {
            name: c"reorder_timeout",
            writable: false,
        },
        File {
            name: c"reorder_overflow",
            writable: false,
        },
        File {
            name: c"reorder_late",
            writable: false,
        },
        File {
            name: c"reorder_skipped",
            writable: false,
        },
        File {
            name: c"reorder_resyncs",
            writable: false,
        },
        File {
            name: c"reorder_deepest",
            writable: false,
        },
        File {
            name: c"reorder_holding",
            writable: false,
        },
        File {
            name: c"reorder_holding_bytes",
            writable: false,
        },
        File {
            name: c"reorder_queue_drops",
            writable: false,
        },
        File {
            name: c"reorder_unheld",
            writable: false,
        },
        File {
            name: c"reorder_wait_us",
            writable: false,
        },
        File {
            name: c"delay_spread_us",
            writable: false,
        },
    ],
);

impl SysfsFiles for Policy {
    fn show(name: &CStr, out: &mut PageWriter<'_>) -> Result {
        use core::fmt::Write;
        // SAFETY: A sysfs callback of a task in the namespace; the files go before the states.
        let ns = unsafe { NAMESPACES.view(NetId::current()?) };
        let counter = name.to_bytes().strip_prefix(b"rx_");
        if let Some(value) = counter.and_then(|c| PathCounters::file_value(&ns.paths, c)) {
            return writeln!(out, "{value}").map_err(|_| EINVAL);
        }
        let config = ns.config();
        let written = match name.to_bytes() {
            b"peer" => match config.peer {
                Some(peer) => writeln!(out, "{peer}"),
                None => writeln!(out),
            },
            b"port" => writeln!(out, "{}", config.port),
            b"probing" => writeln!(out, "{}", u32::from(config.probing)),
            b"probes_answered" => writeln!(out, "{}", ns.probes_answered.load(Relaxed)),
            b"probe_drops" => writeln!(out, "{}", ns.probe_drops.load(Relaxed)),
            b"closings_sent" => writeln!(out, "{}", ns.closings_sent.load(Relaxed)),
            b"primary_local" => match ns.primary_local.load(Relaxed) {
                0 => writeln!(out),
                addr => writeln!(out, "{}", Ipv4(addr)),
            },
            b"rx_rewrite_errors" => writeln!(out, "{}", ns.rewrite_errors.load(Relaxed)),
            b"rx_sequenced_datagrams" => writeln!(out, "{}", ns.sequenced.load(Relaxed)),
            b"rx_unknown_session_drops" => writeln!(out, "{}", ns.unknown_session.load(Relaxed)),
            b"rx_header_error_drops" => writeln!(out, "{}", ns.header_errors.load(Relaxed)),
            b"reorder" => writeln!(out, "{}", u32::from(config.reorder)),
            b"fec" => writeln!(out, "{}", u32::from(config.fec)),
            name if name.starts_with(b"rx_fec_") => {
                let c = &ns.fec_counters;
                let counter = match name {
                    b"rx_fec_repairs" => &c.repairs,
                    b"rx_fec_rebuilt" => &c.rebuilt,
                    b"rx_fec_unneeded" => &c.unneeded,
                    b"rx_fec_unrecoverable" => &c.unrecoverable,
                    b"rx_fec_evicted" => &c.evicted,
                    b"rx_fec_duplicates" => &c.duplicates,
                    b"rx_fec_rebuild_errors" => &c.rebuild_errors,
                    _ => return Err(ENOENT),
                };
                writeln!(out, "{}", counter.load(Relaxed))
            }
            b"reorder_max_ms" => writeln!(out, "{}", ns.reorder.max_wait_ms.load(Relaxed)),
            b"reorder_max_kb" => writeln!(out, "{}", ns.reorder.max_kb.load(Relaxed)),
            name if name.starts_with(b"reorder_") || name == b"delay_spread_us" => {
                let snap = ns.reorder.snapshot();
                let c = snap.counters;
                let value = match name {
                    b"reorder_in_order" => c.in_order,
                    b"reorder_held" => c.held,
                    b"reorder_filled" => c.filled,
                    b"reorder_timeout" => c.timeout,
                    b"reorder_overflow" => c.overflow,
                    b"reorder_late" => c.late,
                    b"reorder_skipped" => c.skipped,
                    b"reorder_resyncs" => c.resyncs,
                    b"reorder_deepest" => c.deepest,
                    b"reorder_holding" => snap.held as u64,
                    b"reorder_holding_bytes" => snap.held_bytes as u64,
                    b"reorder_queue_drops" => snap.queue_drops,
                    b"reorder_unheld" => snap.unheld,
                    b"reorder_wait_us" => snap.wait_us,
                    b"delay_spread_us" => snap.spread_us,
                    _ => return Err(ENOENT),
                };
                writeln!(out, "{value}")
            }
            _ => return Err(ENOENT),
        };
        written.map_err(|_| EINVAL)
    }

    fn store(name: &CStr, input: &[u8]) -> Result {
        let path = match name.to_bytes() {
            b"peer" => "recv/peer",
            b"port" => "recv/port",
            b"probing" => "recv/probing",
            b"reorder" => "recv/reorder",
            b"fec" => "recv/fec",
            b"reorder_max_ms" => "recv/reorder_max_ms",
            b"reorder_max_kb" => "recv/reorder_max_kb",
            _ => "recv/?",
        };
        let net = NetId::current()?;
        let lock = ffi::config_lock();
        // SAFETY: A sysfs callback of a task in `net`; the files go before the states.
        let claim = || unsafe { NAMESPACES.claim(net, &lock) };
        // Publishes a new version of the writer's configuration (`ENOMEM` keeps the old one).
        let configure = |change: &dyn Fn(&mut RecvConfig)| {
            let ns = claim()?;
            ns.config.update(&lock, change)?;
            Ok::<_, Error>(ns)
        };
        match name.to_bytes() {
            b"peer" => {
                let peer =
                    parse::parse_peer(input).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = claim()?;
                let old = ns.config().peer;
                ns.config.update(&lock, |c| c.peer = peer)?;
                if old != peer {
                    // The old peer stops sending headers this end would no longer remove.
                    // SAFETY: A sysfs callback of a task in `net`.
                    unsafe { ns.say_closing(net, false) };
                }
                // Learned again from the new peer's primary path, and its token from its probes.
                ns.primary_local.store(0, Relaxed);
                ns.forget_session();
            }
            b"port" => {
                let port = parse::parse_u32(input, u16::MAX.into())
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                configure(&|c| c.port = port)?;
            }
            b"probing" => {
                let on =
                    parse::parse_u32(input, 1).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = configure(&|c| c.probing = on == 1)?;
                if on == 0 {
                    // The peer stops sending headers that this end no longer removes.
                    // SAFETY: A sysfs callback of a task in `net`.
                    unsafe { ns.say_closing(net, false) };
                }
            }
            b"reorder" => {
                let on =
                    parse::parse_u32(input, 1).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = configure(&|c| c.reorder = on == 1)?;
                if on == 0 {
                    // Nothing waits for a buffer that no longer takes datagrams in.
                    ns.reorder.flush(true);
                }
            }
            b"fec" => {
                let on =
                    parse::parse_u32(input, 1).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = claim()?;
                if on == 1 {
                    let has_window = ns.fec.lock_irq().is_some_and(|fec| fec.is_some());
                    if !has_window {
                        let window = new_fec_window()?;
                        if let Some(mut fec) = ns.fec.lock_irq() {
                            *fec = Some(window);
                        }
                    }
                    ns.config.update(&lock, |c| c.fec = true)?;
                    ns.reorder.extra_wait_ns.store(fec::GROUP_FLUSH_NS, Relaxed);
                } else {
                    // Replies stop offering first; repairs already on their way find no
                    // window and are dropped (counted unneeded).
                    ns.config.update(&lock, |c| c.fec = false)?;
                    ns.reorder.extra_wait_ns.store(0, Relaxed);
                    let window = ns.fec.lock_irq().and_then(|mut fec| fec.take());
                    // Freed here, with the lock dropped: only the lock's holders use it.
                    drop(window);
                }
            }
            b"reorder_max_ms" => {
                let ms = parse::parse_u32(input, MAX_REORDER_WAIT_MS)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                claim()?.reorder.max_wait_ms.store(ms, Relaxed);
            }
            b"reorder_max_kb" => {
                let kb = parse::parse_u32(input, MAX_REORDER_KB)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                claim()?.reorder.max_kb.store(kb, Relaxed);
            }
            _ => return Err(EACCES),
        }
        Ok(())
    }
}

/// An empty FEC window, allocated zeroed in place (`ENOMEM` if memory is short). Process
/// context.
fn new_fec_window() -> Result<KVBox<FecWindow>> {
    let mut uninit = KVBox::<FecWindow>::new_uninit(GFP_KERNEL)?;
    // SAFETY: `as_mut_ptr` is valid for writing one `FecWindow`.
    unsafe { uninit.as_mut_ptr().write_bytes(0, 1) };
    // SAFETY: All-zero bytes are a valid empty window (`FecWindow`'s documented invariant,
    // unit-tested on the host).
    Ok(unsafe { uninit.assume_init() })
}

/// Largest `recv/reorder_max_ms`: a wait longer than this outlasts any tunnel's retransmit.
const MAX_REORDER_WAIT_MS: u32 = 10_000;
/// Largest `recv/reorder_max_kb` (64 MiB per peer).
const MAX_REORDER_KB: u32 = 65_536;

static NETDEV: ffi::NetdevNotifier = ffi::NetdevNotifier::new();

/// Delivers what every reorder buffer holds and stops their timers when dropped (module
/// unload, once nothing can hand them datagrams, flush them or arm their timers: the hook
/// and the files are gone).
struct StopReorder;

impl Drop for StopReorder {
    fn drop(&mut self) {
        let config = ffi::config_lock();
        NAMESPACES.for_each(&config, |_, ns| ns.reorder.shut_down(true));
    }
}

/// Tells every namespace's peer that this end closes, and stops answering probes, when
/// dropped (module unload, while the hook still removes the headers already on their way).
struct SayClosing;

impl Drop for SayClosing {
    fn drop(&mut self) {
        let config = ffi::config_lock();
        NAMESPACES.for_each(&config, |net, ns| {
            // SAFETY: A namespace in the registry is alive: its exit takes the state out
            // under the configuration lock held here.
            unsafe { ns.say_closing(net, true) }
        });
    }
}

struct MpudpRecv {
    // Dropped in this order: the closing messages first, while the hook still takes the
    // datagrams sent before they arrive; the hook, so no datagram sees state being torn down; the
    // reorder buffers once nothing else can reach them (hook and files gone), and before the
    // notifier that flushes them when an interface goes; the namespace states last, once
    // nothing reaches them (their slots are freed with the registration).
    _closing: SayClosing,
    _hook: udp_hooks::RecvHookRegistration<Policy>,
    _files: ffi::SysfsRegistration,
    _reorder: StopReorder,
    _netdev: ffi::NetdevRegistration,
    _states: netns::NetnsRegistration<RecvState>,
}

impl kernel::Module for MpudpRecv {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        ffi::init_config_lock();
        let states = NAMESPACES.register::<Policy>()?;
        let netdev = NETDEV.register::<Policy>()?;
        let reorder = StopReorder;
        let files = FILES.register::<Policy>()?;
        let hook = udp_hooks::RecvHookRegistration::<Policy>::new().inspect_err(|_| {
            pr_err!("both UDP receive hook slots are taken by other modules\n");
        })?;
        pr_info!("loaded\n");
        Ok(Self {
            _closing: SayClosing,
            _hook: hook,
            _files: files,
            _reorder: reorder,
            _netdev: netdev,
            _states: states,
        })
    }
}
