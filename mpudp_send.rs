// SPDX-License-Identifier: GPL-2.0

//! MPUDP sender: spreads one UDP tunnel's datagrams over a primary and a secondary path.
//!
//! For every IPv4 datagram a socket sends to the configured peer's primary address on the
//! configured port, the credit-based split (see [`parse::on_secondary`]) decides the path, at
//! the share the scheduler sets: the fixed `split`, or the `rtt` scheduler's share from path
//! measurements. A datagram for the secondary path is sent to the peer's alternate address
//! over the secondary interface, from that interface's address. Everything else leaves exactly
//! as without MPUDP. If the secondary interface is gone, down, without carrier or without an
//! IPv4 address, the datagram stays on the primary path.
//!
//! With `probing` on, a soft hrtimer per namespace probes both paths every probe interval
//! (`common/control.rs`; the peer's `mpudp_recv` answers at once). Probes and their answers
//! travel in the tunnel's own 5-tuple on each path, so firewalls, NAT and ECMP treat them as
//! the data; this module's receive hook takes the answers before any socket sees them. The
//! prober keeps each path's RTT (from its own send times), loss and delivered rate, takes a
//! path that stops answering out of use (failover) and runs the `rtt` scheduler. The datagram
//! path only reads what the prober publishes.
//!
//! Once the peer has answered a probe carrying this namespace's session token, every in-scope
//! datagram that fits gets the sequencing header (`common/seq.rs`) before its payload: the
//! peer's sequence number and the path's, which the peer's `mpudp_recv` removes and measures
//! each path's loss from.

use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};

#[path = "common/ffi.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_recv, which uses the receive-side parts"
)]
mod ffi;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/parse.rs"]
mod parse;

#[path = "common/control.rs"]
#[allow(
    dead_code,
    reason = "the unknown-session message is not sent yet; the header hook reads the published kind"
)]
mod control;
#[path = "common/probe.rs"]
mod probe;
#[path = "common/seq.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_recv, which reads headers and measures loss"
)]
mod seq;
#[path = "common/udp_hooks.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_recv, which holds and delivers datagrams"
)]
mod udp_hooks;

use core::mem::offset_of;

use control::{Capability, Control, PeerKind, Probe, Reply, PROBE_LEN};
use ffi::{
    File, NetExit, NetId, PageWriter, SoftTimer, SoftirqLock, SysfsFiles, SysfsGroup, TimerOwner,
};
use netns::{LogLimit, NetnsTable, NsState, PathCounters};
use parse::{IfName, Ipv4, Peer, Scheduler};
use probe::{LossWindow, PathState, PathView, RttEstimator, PRIMARY, SECONDARY};
use seq::DataHeader;
use udp_hooks::{Arriving, Outgoing, RecvHook, Routed, SendHook, SendOps, Verdict};

module! {
    type: MpudpSend,
    name: "mpudp_send",
    authors: ["MPUDP developers"],
    description: "MPUDP: send one UDP tunnel's datagrams over two network paths",
    license: "GPL",
    params: {
        split: u32 {
            default: 50,
            description: "Percent of the tunnel's datagrams on the primary path (0..100); \
                          the default of every network namespace, changed at run time in \
                          /sys/kernel/mpudp/split",
        },
    },
}

/// The largest `split`.
const SPLIT_MAX: u32 = 100;
/// Default and bounds of `probe_interval_ms`.
const PROBE_INTERVAL_MS: (u32, u32, u32) = (100, 10, 10_000);
/// Default and bounds of `probe_down_after` (unanswered probe intervals before failover).
const PROBE_DOWN_AFTER: (u32, u32, u32) = (3, 1, 100);

/// What the sender knows about one path, published by the prober for the datagram path and
/// sysfs (all zero/unknown while probing is off).
struct PathStatus {
    /// [`PathState`] as `u32`.
    state: Atomic<u32>,
    srtt_us: Atomic<u64>,
    rttvar_us: Atomic<u64>,
    /// The loss the scheduler uses: `data_loss_ppm` while the peer reports one, else
    /// `probe_loss_ppm`.
    loss_ppm: Atomic<u32>,
    /// The share of unanswered probes.
    probe_loss_ppm: Atomic<u32>,
    /// The peer's loss reading from gaps in the data sequence; [`control::LOSS_UNKNOWN`] when
    /// it has none (datagrams not sequenced, or too few yet).
    data_loss_ppm: Atomic<u32>,
    /// The next per-path sequence number.
    next_path_seq: Atomic<u32>,
    /// What the peer reports receiving on this path, kbit/s.
    delivered_kbps: Atomic<u64>,
    /// What this host sent on the path over the same time, kbit/s.
    sent_kbps: Atomic<u64>,
    /// The peer's data counters for this path, from its latest answer.
    peer_rx_datagrams: Atomic<u64>,
    peer_rx_bytes: Atomic<u64>,
    probes_sent: Atomic<u64>,
    probes_answered: Atomic<u64>,
    down_events: Atomic<u64>,
    up_events: Atomic<u64>,
}

impl PathStatus {
    const fn new() -> Self {
        Self {
            state: Atomic::new(PathState::Unknown as u32),
            srtt_us: Atomic::new(0),
            rttvar_us: Atomic::new(0),
            loss_ppm: Atomic::new(0),
            probe_loss_ppm: Atomic::new(0),
            data_loss_ppm: Atomic::new(control::LOSS_UNKNOWN),
            next_path_seq: Atomic::new(0),
            delivered_kbps: Atomic::new(0),
            sent_kbps: Atomic::new(0),
            peer_rx_datagrams: Atomic::new(0),
            peer_rx_bytes: Atomic::new(0),
            probes_sent: Atomic::new(0),
            probes_answered: Atomic::new(0),
            down_events: Atomic::new(0),
            up_events: Atomic::new(0),
        }
    }

    fn state(&self) -> PathState {
        PathState::from_u32(self.state.load(Relaxed))
    }

    /// Forgets the measurements (probing stopped); the event counters only grow.
    fn forget(&self) {
        self.state.store(PathState::Unknown as u32, Relaxed);
        self.srtt_us.store(0, Relaxed);
        self.rttvar_us.store(0, Relaxed);
        self.loss_ppm.store(0, Relaxed);
        self.probe_loss_ppm.store(0, Relaxed);
        self.data_loss_ppm.store(control::LOSS_UNKNOWN, Relaxed);
        self.delivered_kbps.store(0, Relaxed);
        self.sent_kbps.store(0, Relaxed);
    }

    fn reset(&self) {
        self.forget();
        for counter in [
            &self.peer_rx_datagrams,
            &self.peer_rx_bytes,
            &self.probes_sent,
            &self.probes_answered,
            &self.down_events,
            &self.up_events,
        ] {
            counter.store(0, Relaxed);
        }
    }
}

/// The send-side configuration and counters of one network namespace.
struct SendState {
    /// Percent of eligible datagrams on the primary path.
    split: Atomic<u32>,
    /// Index of the secondary interface; 0 when multipath is off.
    secondary_ifindex: Atomic<i32>,
    /// Name of the secondary interface as written, for reading back.
    secondary_name: [Atomic<u64>; 2],
    /// The peer's addresses, packed by [`Peer::pack`]; 0 when unset.
    peer: Atomic<u64>,
    /// The tunnel's UDP port (source or destination); 0 when unset.
    port: Atomic<u32>,
    /// Number of the next eligible datagram, for the credit-based split.
    next_datagram: Atomic<u64>,
    primary: PathCounters,
    secondary: PathCounters,
    /// Datagrams the split put on the secondary path that had to stay on the primary one.
    fallback: Atomic<u64>,
    /// [`Scheduler`] as `u32`.
    scheduler: Atomic<u32>,
    /// Whether the paths are probed (`probing`).
    probing: Atomic<u32>,
    /// The tunnel's ports as its latest in-scope datagram used them, local in the high half;
    /// 0 until one was sent. Probes go in the same 5-tuple.
    tunnel_ports: Atomic<u32>,
    probe_interval_ms: Atomic<u32>,
    probe_down_after: Atomic<u32>,
    /// The `rtt` scheduler's current permille of datagrams on the secondary path.
    rtt_secondary_permille: Atomic<u32>,
    /// Indexed by [`PRIMARY`] and [`SECONDARY`].
    paths: [PathStatus; 2],
    /// Whether datagrams may be sequenced (the `sequencing` knob; 1 by default).
    sequencing: Atomic<u32>,
    /// [`PeerKind`] as `u32`, published by the prober: datagrams get the header only while
    /// it is [`PeerKind::Mpudp`].
    peer_kind: Atomic<u32>,
    /// The token this namespace's sequenced datagrams and probes carry; chosen at random when
    /// the namespace first configures MPUDP.
    token: Atomic<u32>,
    /// The next per-peer sequence number.
    next_seq: Atomic<u32>,
    /// In-scope datagrams sent with the sequencing header.
    sequenced: Atomic<u64>,
    /// In-scope datagrams to a sequencing peer sent without the header: it did not fit the
    /// route's MTU on a socket that may not fragment.
    unsequenced_no_room: Atomic<u64>,
    /// Answers taken off the wire that matched no probe of this session (late beyond the
    /// loss window, answered twice, an earlier session's, or a bad checksum).
    replies_ignored: Atomic<u64>,
    /// Fires every probe interval while probing is on ([`TimerOwner`]).
    probe_timer: SoftTimer,
    /// The prober's bookkeeping, shared by its timer and the receive hook (answers).
    prober: SoftirqLock<ProbeBooks>,
}

impl SendState {
    /// The configured secondary interface name (empty when none).
    fn secondary_name(&self) -> IfName {
        IfName::from_words([
            self.secondary_name[0].load(Relaxed),
            self.secondary_name[1].load(Relaxed),
        ])
    }
}

impl NsState for SendState {
    const FRESH: Self = Self {
        split: Atomic::new(50),
        secondary_ifindex: Atomic::new(0),
        secondary_name: [Atomic::new(0), Atomic::new(0)],
        peer: Atomic::new(0),
        port: Atomic::new(0),
        next_datagram: Atomic::new(0),
        primary: PathCounters::new(),
        secondary: PathCounters::new(),
        fallback: Atomic::new(0),
        scheduler: Atomic::new(Scheduler::Split as u32),
        probing: Atomic::new(0),
        tunnel_ports: Atomic::new(0),
        probe_interval_ms: Atomic::new(PROBE_INTERVAL_MS.0),
        probe_down_after: Atomic::new(PROBE_DOWN_AFTER.0),
        rtt_secondary_permille: Atomic::new(probe::RTT_START_PERMILLE),
        paths: [PathStatus::new(), PathStatus::new()],
        sequencing: Atomic::new(1),
        peer_kind: Atomic::new(PeerKind::Unknown as u32),
        token: Atomic::new(0),
        next_seq: Atomic::new(0),
        sequenced: Atomic::new(0),
        unsequenced_no_room: Atomic::new(0),
        replies_ignored: Atomic::new(0),
        probe_timer: SoftTimer::new(),
        prober: SoftirqLock::new(ProbeBooks::IDLE),
    };

    fn reset(&self) {
        self.split.store(DEFAULT_SPLIT.load(Relaxed), Relaxed);
        self.secondary_ifindex.store(0, Relaxed);
        for word in &self.secondary_name {
            word.store(0, Relaxed);
        }
        self.peer.store(0, Relaxed);
        self.port.store(0, Relaxed);
        self.next_datagram.store(0, Relaxed);
        self.primary.reset();
        self.secondary.reset();
        self.fallback.store(0, Relaxed);
        self.scheduler.store(Scheduler::Split as u32, Relaxed);
        self.probing.store(0, Relaxed);
        self.tunnel_ports.store(0, Relaxed);
        self.probe_interval_ms.store(PROBE_INTERVAL_MS.0, Relaxed);
        self.probe_down_after.store(PROBE_DOWN_AFTER.0, Relaxed);
        self.rtt_secondary_permille
            .store(probe::RTT_START_PERMILLE, Relaxed);
        for path in &self.paths {
            path.reset();
        }
        self.sequencing.store(1, Relaxed);
        self.peer_kind.store(PeerKind::Unknown as u32, Relaxed);
        self.token.store(ffi::random_u32(), Relaxed);
        self.next_seq.store(0, Relaxed);
        self.sequenced.store(0, Relaxed);
        self.unsequenced_no_room.store(0, Relaxed);
        self.replies_ignored.store(0, Relaxed);
        // A recycled slot's prober was stopped when its namespace exited.
        if let Some(mut books) = self.prober.lock_irq() {
            books.reset(None, 0, 0);
        }
    }
}

impl SendState {
    /// Permille of in-scope datagrams that should take the secondary path now: none if it is
    /// down and the primary is not, all if the primary is down and it is not, the `rtt`
    /// scheduler's share while both paths answer probes and `rtt` is selected, and the fixed
    /// `split` otherwise.
    fn secondary_permille(&self) -> u32 {
        let scheduler = Scheduler::from_u32(self.scheduler.load(Relaxed));
        match (self.paths[PRIMARY].state(), self.paths[SECONDARY].state()) {
            (PathState::Up, PathState::Down) => 0,
            (PathState::Down, PathState::Up) => 1000,
            (PathState::Up, PathState::Up) if scheduler == Scheduler::Rtt => {
                self.rtt_secondary_permille.load(Relaxed).min(1000)
            }
            _ => (SPLIT_MAX - self.split.load(Relaxed).min(SPLIT_MAX)) * 10,
        }
    }

    /// The data counters of path `i`.
    fn counters(&self, i: usize) -> &PathCounters {
        if i == SECONDARY {
            &self.secondary
        } else {
            &self.primary
        }
    }
}

/// The `split` module parameter, validated at load.
static DEFAULT_SPLIT: Atomic<u32> = Atomic::new(50);
static NAMESPACES: NetnsTable<SendState> = NetnsTable::new();
static REJECT_LOG: LogLimit = LogLimit::new();

struct Policy;

impl SendHook for Policy {
    fn steer(d: &mut Outgoing<'_>) -> bool {
        let Some(ns) = NAMESPACES.find(d.net) else {
            return false;
        };
        let Some(peer) = Peer::unpack(ns.peer.load(Relaxed)) else {
            return false;
        };
        if *d.daddr != peer.primary.0
            || !parse::on_tunnel_port(ns.port.load(Relaxed), d.sport, d.dport)
        {
            return false;
        }
        // Probes follow the tunnel's 5-tuple; written only when it changes (one cache line
        // that every CPU sending for the tunnel reads).
        let ports = u32::from(d.sport) << 16 | u32::from(d.dport);
        if ns.tunnel_ports.load(Relaxed) != ports {
            ns.tunnel_ports.store(ports, Relaxed);
        }
        let n = ns.next_datagram.fetch_add(1u64, Relaxed);
        if parse::on_secondary(n, ns.secondary_permille()) {
            let ifindex = ns.secondary_ifindex.load(Relaxed);
            let source = (ifindex != 0)
                // SAFETY: The hook runs for a datagram sent in `d.net`, alive for the call.
                .then(|| unsafe { d.net.usable_source(ifindex, peer.alternate) })
                .flatten();
            if let Some(source) = source {
                *d.daddr = peer.alternate.0;
                *d.saddr = source.0;
                *d.oif = ifindex;
                d.path = Some(SECONDARY as u8);
                ns.secondary.count(d.len);
                return true;
            }
            ns.fallback.add(1u64, Relaxed);
        }
        d.path = Some(PRIMARY as u8);
        ns.primary.count(d.len);
        false
    }

    fn header(d: Routed<'_>) -> usize {
        let Some(ns) = NAMESPACES.find(d.net) else {
            return 0;
        };
        let path = usize::from(d.path);
        if ns.sequencing.load(Relaxed) == 0
            || ns.peer_kind.load(Relaxed) != PeerKind::Mpudp as u32
            || path >= ns.paths.len()
        {
            return 0;
        }
        if d.room < seq::HEADER_LEN {
            ns.unsequenced_no_room.add(1u64, Relaxed);
            return 0;
        }
        // Numbers are taken only for datagrams that carry them: a datagram sent without the
        // header leaves no gap for the peer to wait on or count as loss.
        let header = DataHeader {
            path: d.path,
            token: ns.token.load(Relaxed),
            seq: ns.next_seq.fetch_add(1u32, Relaxed),
            path_seq: ns.paths[path].next_path_seq.fetch_add(1u32, Relaxed),
            // The receiver compares paths by it; wrapping microseconds are enough for that.
            sent_us: (ffi::now_ns() / 1000) as u32,
        };
        d.header[..seq::HEADER_LEN].copy_from_slice(&header.encode());
        ns.sequenced.add(1u64, Relaxed);
        seq::HEADER_LEN
    }
}

impl ffi::InterfacesChanged for Policy {
    /// Re-resolves every namespace's secondary interface by its configured name, so that an
    /// interface that is deleted stops being used and one re-created (or renamed) under that
    /// name is used again.
    fn interfaces_changed() {
        let _config = ffi::config_lock();
        NAMESPACES.for_each(|net, ns| {
            let name = ns.secondary_name();
            if !name.as_bytes().is_empty() {
                // SAFETY: A namespace holding state is alive: its exit removes the state under
                // the configuration lock, which this holds.
                let ifindex = unsafe { net.ifindex(&name) };
                ns.secondary_ifindex.store(ifindex.unwrap_or(0), Relaxed);
            }
        });
    }
}

impl RecvHook for Policy {
    /// Takes the peer's answers to this namespace's probes off the wire, before any socket
    /// sees them; everything else passes untouched (`mpudp_recv`'s hook, before or after
    /// this one, takes the peer's probes and data).
    fn arrive(d: &mut Arriving<'_>) -> Verdict {
        if d.len != PROBE_LEN {
            return Verdict::Deliver;
        }
        let Some(ns) = NAMESPACES.find(d.net) else {
            return Verdict::Deliver;
        };
        if ns.probing.load(Relaxed) == 0 {
            return Verdict::Deliver;
        }
        let Some(Control::Reply(reply)) = d.whole_payload().and_then(Control::decode) else {
            return Verdict::Deliver;
        };
        let Some(peer) = Peer::unpack(ns.peer.load(Relaxed)) else {
            return Verdict::Deliver;
        };
        // Only the peer's address on the probed path, on the tunnel's port, answers for it.
        let expected = match usize::from(reply.path) {
            PRIMARY => peer.primary,
            SECONDARY => peer.alternate,
            _ => return Verdict::Deliver,
        };
        if d.saddr != expected || !parse::on_tunnel_port(ns.port.load(Relaxed), d.sport, d.dport) {
            return Verdict::Deliver;
        }
        if d.verify_and_empty().is_err() {
            ns.replies_ignored.add(1u64, Relaxed);
            return Verdict::Drop;
        }
        let now = ffi::now_ns();
        // SAFETY: The receive hook runs in softirq context.
        if let Some(mut books) = unsafe { ns.prober.lock_in_softirq() } {
            if books.net.is_some() && ns.take_reply(&mut books, &reply, now) {
                books.capability.answered(now);
                ns.peer_kind.store(books.capability.kind as u32, Relaxed);
                return Verdict::Consumed;
            }
        }
        ns.replies_ignored.add(1u64, Relaxed);
        Verdict::Drop
    }
}

impl NetExit for Policy {
    fn net_exit(net: NetId) {
        let _config = ffi::config_lock();
        // The prober's timer sends in the namespace: it stops first.
        if let Some(ns) = NAMESPACES.find(net) {
            ns.stop_probing();
        }
        NAMESPACES.release(net, |_| {});
    }
}

/// Path names for the kernel log, by path index.
const PATH_NAMES: [&str; 2] = ["primary", "secondary"];

/// The prober's private bookkeeping for one path.
struct PathBook {
    rtt: RttEstimator,
    window: LossWindow,
    /// When a probe on this path was last answered (monotonic ns).
    answered_ns: Option<u64>,
    /// The last rate reading: (monotonic ns, peer's rx bytes, our tx bytes).
    rate_mark: Option<(u64, u64, u64)>,
}

impl PathBook {
    const fn new() -> Self {
        Self {
            rtt: RttEstimator {
                srtt_us: 0,
                rttvar_us: 0,
            },
            window: LossWindow::new(),
            answered_ns: None,
            rate_mark: None,
        }
    }

    /// Back to [`PathBook::new`], in place: the loss window is too large for a temporary on
    /// the stack of every caller.
    fn reset(&mut self) {
        self.rtt = RttEstimator::default();
        self.window = LossWindow::new();
        self.answered_ns = None;
        self.rate_mark = None;
    }
}

/// What the prober keeps between its rounds and the answers.
struct ProbeBooks {
    /// The namespace probed; `None` while probing is off (the timer then stops re-arming).
    net: Option<NetId>,
    paths: [PathBook; 2],
    capability: Capability,
    /// When probing started: a path never answered has been silent since then.
    started_ns: u64,
    /// The peer (packed) the capability was learned for: another peer must prove it again.
    peer: u64,
}

impl ProbeBooks {
    const IDLE: Self = Self {
        net: None,
        paths: [PathBook::new(), PathBook::new()],
        capability: Capability::new(),
        started_ns: 0,
        peer: 0,
    };

    /// Fresh measurements, probing `net` (or none) from `now_ns` for `peer`.
    fn reset(&mut self, net: Option<NetId>, now_ns: u64, peer: u64) {
        for path in &mut self.paths {
            path.reset();
        }
        self.net = net;
        self.capability = Capability::new();
        self.started_ns = now_ns;
        self.peer = peer;
    }
}

/// One probe, ready to go out once the prober's lock is dropped.
struct OutgoingProbe {
    from: (Ipv4, u16),
    to: (Ipv4, u16),
    oif: i32,
    wire: [u8; PROBE_LEN],
}

/// Rates are measured over at least this long, so that one probe interval's jitter and the
/// paths' one-way delay (the two ends count at different moments) do not dominate them.
const RATE_WINDOW_NS: u64 = 500_000_000;
/// How much later than asked a probe round may run, so that the kernel can batch timers.
const PROBE_SLACK_NS: u64 = 1_000_000;

impl TimerOwner for SendState {
    const TIMER_OFFSET: usize = offset_of!(SendState, probe_timer);

    fn fired(&'static self) {
        self.probe_round();
    }
}

impl SendState {
    /// Starts probing `net` afresh: fresh measurements, a fresh start for the `rtt`
    /// scheduler, the first round at once. Process context, configuration lock held.
    fn start_probing(&self, net: NetId) {
        self.stop_probing();
        self.rtt_secondary_permille
            .store(probe::RTT_START_PERMILLE, Relaxed);
        let now = ffi::now_ns();
        if let Some(mut books) = self.prober.lock_irq() {
            books.reset(Some(net), now, self.peer.load(Relaxed));
        }
        self.probe_timer.start_at(now, 0);
    }

    /// Stops probing and waits for a running round; without answers the peer may be gone, so
    /// the header stops and the paths' measurements are forgotten (back to the fixed split).
    /// Process context.
    fn stop_probing(&self) {
        if let Some(mut books) = self.prober.lock_irq() {
            books.net = None;
        }
        // A round that started before `net` was cleared may have re-armed the timer: the
        // cancel undoes that too, and no later round can re-arm it.
        self.probe_timer.cancel();
        self.peer_kind.store(PeerKind::Unknown as u32, Relaxed);
        for path in &self.paths {
            path.forget();
        }
    }

    /// One probe round, from the timer (softirq): a probe on each path, the failover rule, the
    /// `rtt` scheduler's step; then the timer is set for the next round.
    fn probe_round(&self) {
        let now = ffi::now_ns();
        {
            // SAFETY: Soft hrtimers fire in softirq context.
            let Some(mut books) = (unsafe { self.prober.lock_in_softirq() }) else {
                return;
            };
            if books.net.is_none() {
                return;
            }
            let interval_ms = self.probe_interval_ms.load(Relaxed);
            self.probe_timer
                .start_at(now + u64::from(interval_ms) * 1_000_000, PROBE_SLACK_NS);
            let peer = self.peer.load(Relaxed);
            if peer != books.peer {
                books.peer = peer;
                books.capability = Capability::new();
            }
            books.capability.tick(now);
            self.judge(&mut books, now, interval_ms);
            self.schedule();
            self.peer_kind.store(books.capability.kind as u32, Relaxed);
            // A peer taken for plain gets probes (in its application's port) only every
            // `Capability::RETRY_NS`.
            if !books.capability.should_probe(now) {
                return;
            }
            books.capability.probe_sent(now);
        }
        for path in [PRIMARY, SECONDARY] {
            // Each probe's send time is taken just before it goes, so that neither the round's
            // bookkeeping nor the other probe's sending enters its RTT.
            let (net, probe) = {
                // SAFETY: As above.
                let Some(mut books) = (unsafe { self.prober.lock_in_softirq() }) else {
                    return;
                };
                // Probing stopped since the lock was last held: nothing more goes out.
                let Some(net) = books.net else {
                    return;
                };
                // SAFETY: The namespace is alive while its prober's timer runs: its exit
                // stops the prober (`stop_probing`, which waits for this round) first.
                (net, unsafe {
                    self.prepare_probe(&mut books, net, path, ffi::now_ns())
                })
            };
            // Sent with the lock dropped: a probe to an address of this host comes straight
            // back as an answer, which takes the lock.
            if let Some(probe) = probe {
                // SAFETY: As above. A probe that cannot leave counts as sent and unanswered.
                let _ =
                    unsafe { udp_hooks::xmit(net, probe.from, probe.to, probe.oif, &probe.wire) };
            }
        }
    }

    /// Records a probe on path `i` as sent at `now` and returns it, if it can leave: the
    /// secondary one only while its interface is usable, none without a peer or tunnel port.
    /// It goes in the tunnel's 5-tuple as its latest datagram used it; until the tunnel has
    /// sent, from and to the tunnel port.
    ///
    /// # Safety
    ///
    /// The namespace `net` is alive for the duration of the call.
    unsafe fn prepare_probe(
        &self,
        books: &mut ProbeBooks,
        net: NetId,
        i: usize,
        now: u64,
    ) -> Option<OutgoingProbe> {
        let book = books.paths.get_mut(i)?;
        let seq = book.window.sent(now);
        self.paths[i].probes_sent.add(1u64, Relaxed);
        let port = u16::try_from(self.port.load(Relaxed)).unwrap_or(0);
        let peer = Peer::unpack(self.peer.load(Relaxed)).filter(|_| port != 0)?;
        let (local_port, remote_port) = match self.tunnel_ports.load(Relaxed) {
            0 => (port, port),
            ports => ((ports >> 16) as u16, ports as u16),
        };
        let (to, from, oif) = if i == PRIMARY {
            // Routing picks the source, as for the tunnel's own primary-path datagrams.
            (peer.primary, Ipv4(0), 0)
        } else {
            let ifindex = self.secondary_ifindex.load(Relaxed);
            if ifindex == 0 {
                return None;
            }
            // SAFETY: The namespace is alive (the caller's contract).
            let source = unsafe { net.usable_source(ifindex, peer.alternate) }?;
            (peer.alternate, source, ifindex)
        };
        let mut wire = [0u8; PROBE_LEN];
        Control::Probe(Probe {
            path: i as u8,
            token: self.token.load(Relaxed),
            seq,
            sent_ns: now,
            primary_addr: peer.primary.0.to_ne_bytes(),
        })
        .encode(&mut wire);
        Some(OutgoingProbe {
            from: (from, local_port),
            to: (to, remote_port),
            oif,
            wire,
        })
    }

    /// Takes in an answer that arrived at `now` from the peer's address on its path; returns
    /// whether it answered a probe of this session still in the loss window (once).
    fn take_reply(&self, books: &mut ProbeBooks, reply: &Reply, now: u64) -> bool {
        let i = usize::from(reply.path);
        let Some(book) = books.paths.get_mut(i) else {
            return false;
        };
        if reply.token != self.token.load(Relaxed) {
            return false;
        }
        let Some(sent_ns) = book.window.answered(reply.seq) else {
            return false;
        };
        let status = &self.paths[i];
        if let Some(sample) = probe::rtt_sample_us(sent_ns, now) {
            book.rtt.sample(sample);
            status.srtt_us.store(book.rtt.srtt_us, Relaxed);
            status.rttvar_us.store(book.rtt.rttvar_us, Relaxed);
        }
        book.answered_ns = Some(now);
        status.probes_answered.add(1u64, Relaxed);
        status.peer_rx_datagrams.store(reply.rx_datagrams, Relaxed);
        status.peer_rx_bytes.store(reply.rx_bytes, Relaxed);
        status.data_loss_ppm.store(reply.loss_ppm, Relaxed);
        let tx_bytes = self.counters(i).bytes.load(Relaxed);
        match book.rate_mark {
            Some((at, peer_bytes, our_bytes)) if now.saturating_sub(at) >= RATE_WINDOW_NS => {
                let elapsed = now - at;
                let delivered = probe::kbps(peer_bytes, reply.rx_bytes, elapsed);
                status.delivered_kbps.store(delivered, Relaxed);
                let sent = probe::kbps(our_bytes, tx_bytes, elapsed);
                status.sent_kbps.store(sent, Relaxed);
                book.rate_mark = Some((now, reply.rx_bytes, tx_bytes));
            }
            Some(_) => {}
            None => book.rate_mark = Some((now, reply.rx_bytes, tx_bytes)),
        }
        if status.state() != PathState::Up {
            if status.state() == PathState::Down {
                status.up_events.add(1u64, Relaxed);
                pr_info!(
                    "path {} up again: probes answered, srtt {} us\n",
                    PATH_NAMES[i],
                    book.rtt.srtt_us
                );
            }
            status.state.store(PathState::Up as u32, Relaxed);
        }
        true
    }

    /// Applies the failover rule and refreshes the loss estimates.
    fn judge(&self, books: &mut ProbeBooks, now: u64, interval_ms: u32) {
        let down_after = self.probe_down_after.load(Relaxed);
        for (i, book) in books.paths.iter().enumerate() {
            let status = &self.paths[i];
            let other_up = self.paths[1 - i].state() == PathState::Up;
            let overdue = probe::overdue_ns(down_after, interval_ms, &book.rtt);
            let silent_since = book.answered_ns.unwrap_or(books.started_ns);
            let before = status.state();
            let after = probe::judge(before, silent_since, now, overdue, other_up);
            if after == PathState::Down && before != PathState::Down {
                status.down_events.add(1u64, Relaxed);
                status.state.store(PathState::Down as u32, Relaxed);
                pr_warn!(
                    "path {} down: no probe answered for {} ms; it carries no data until one is\n",
                    PATH_NAMES[i],
                    now.saturating_sub(silent_since) / 1_000_000
                );
            }
            if let Some(loss) = book.window.loss_ppm(now, overdue) {
                status.probe_loss_ppm.store(loss, Relaxed);
            }
            // The data's own loss resolves 100 ppm where 100 probes resolve 1 %.
            let loss = match status.data_loss_ppm.load(Relaxed) {
                control::LOSS_UNKNOWN => status.probe_loss_ppm.load(Relaxed),
                data => data,
            };
            status.loss_ppm.store(loss, Relaxed);
        }
    }

    /// One step of the `rtt` scheduler, while both paths answer.
    fn schedule(&self) {
        let [p, s] = &self.paths;
        if p.state() != PathState::Up || s.state() != PathState::Up {
            return;
        }
        let view = |path: &PathStatus| PathView {
            srtt_us: path.srtt_us.load(Relaxed),
            loss_ppm: path.loss_ppm.load(Relaxed),
            sent_kbps: path.sent_kbps.load(Relaxed),
            delivered_kbps: path.delivered_kbps.load(Relaxed),
        };
        let current = self.rtt_secondary_permille.load(Relaxed);
        let next = probe::rtt_step(current, &view(p), &view(s));
        self.rtt_secondary_permille.store(next, Relaxed);
    }
}

static FILES: SysfsGroup = SysfsGroup::new(
    None,
    &[
        File {
            name: c"split",
            writable: true,
        },
        File {
            name: c"secondary",
            writable: true,
        },
        File {
            name: c"peer",
            writable: true,
        },
        File {
            name: c"port",
            writable: true,
        },
        File {
            name: c"scheduler",
            writable: true,
        },
        File {
            name: c"probing",
            writable: true,
        },
        File {
            name: c"probe_interval_ms",
            writable: true,
        },
        File {
            name: c"probe_down_after",
            writable: true,
        },
        File {
            name: c"tx_primary_datagrams",
            writable: false,
        },
        File {
            name: c"tx_primary_bytes",
            writable: false,
        },
        File {
            name: c"tx_secondary_datagrams",
            writable: false,
        },
        File {
            name: c"tx_secondary_bytes",
            writable: false,
        },
        File {
            name: c"tx_fallback_datagrams",
            writable: false,
        },
        File {
            name: c"sequencing",
            writable: true,
        },
        File {
            name: c"peer_kind",
            writable: false,
        },
        File {
            name: c"tx_sequenced_datagrams",
            writable: false,
        },
        File {
            name: c"tx_unsequenced_no_room",
            writable: false,
        },
        File {
            name: c"probe_replies_ignored",
            writable: false,
        },
    ],
);

/// The read-only files of `paths/primary` and `paths/secondary`.
const PATH_FILES: &[File] = &[
    File {
        name: c"state",
        writable: false,
    },
    File {
        name: c"srtt_us",
        writable: false,
    },
    File {
        name: c"rttvar_us",
        writable: false,
    },
    File {
        name: c"loss_ppm",
        writable: false,
    },
    File {
        name: c"probe_loss_ppm",
        writable: false,
    },
    File {
        name: c"data_loss_ppm",
        writable: false,
    },
    File {
        name: c"share_permille",
        writable: false,
    },
    File {
        name: c"tx_datagrams",
        writable: false,
    },
    File {
        name: c"tx_bytes",
        writable: false,
    },
    File {
        name: c"rx_datagrams",
        writable: false,
    },
    File {
        name: c"rx_bytes",
        writable: false,
    },
    File {
        name: c"sent_kbps",
        writable: false,
    },
    File {
        name: c"delivered_kbps",
        writable: false,
    },
    File {
        name: c"probes_sent",
        writable: false,
    },
    File {
        name: c"probes_answered",
        writable: false,
    },
    File {
        name: c"down_events",
        writable: false,
    },
    File {
        name: c"up_events",
        writable: false,
    },
];

static PATH_GROUPS: [SysfsGroup; 2] = [
    SysfsGroup::new(Some(c"primary"), PATH_FILES),
    SysfsGroup::new(Some(c"secondary"), PATH_FILES),
];

/// The files of path `I` ([`PRIMARY`] or [`SECONDARY`]).
struct PathFiles<const I: usize>;

impl<const I: usize> SysfsFiles for PathFiles<I> {
    fn show(name: &CStr, out: &mut PageWriter<'_>) -> Result {
        use core::fmt::Write;
        let ns = NAMESPACES.view(NetId::current()?);
        let path = &ns.paths[I];
        let share = match I {
            SECONDARY => ns.secondary_permille(),
            _ => 1000 - ns.secondary_permille(),
        };
        let value = match name.to_bytes() {
            b"state" => return writeln!(out, "{}", path.state().name()).map_err(|_| EINVAL),
            b"data_loss_ppm" => {
                return match path.data_loss_ppm.load(Relaxed) {
                    control::LOSS_UNKNOWN => writeln!(out),
                    ppm => writeln!(out, "{ppm}"),
                }
                .map_err(|_| EINVAL)
            }
            b"probe_loss_ppm" => path.probe_loss_ppm.load(Relaxed).into(),
            b"srtt_us" => path.srtt_us.load(Relaxed),
            b"rttvar_us" => path.rttvar_us.load(Relaxed),
            b"loss_ppm" => path.loss_ppm.load(Relaxed).into(),
            b"share_permille" => share.into(),
            b"tx_datagrams" => ns.counters(I).datagrams.load(Relaxed),
            b"tx_bytes" => ns.counters(I).bytes.load(Relaxed),
            b"rx_datagrams" => path.peer_rx_datagrams.load(Relaxed),
            b"rx_bytes" => path.peer_rx_bytes.load(Relaxed),
            b"sent_kbps" => path.sent_kbps.load(Relaxed),
            b"delivered_kbps" => path.delivered_kbps.load(Relaxed),
            b"probes_sent" => path.probes_sent.load(Relaxed),
            b"probes_answered" => path.probes_answered.load(Relaxed),
            b"down_events" => path.down_events.load(Relaxed),
            b"up_events" => path.up_events.load(Relaxed),
            _ => return Err(ENOENT),
        };
        writeln!(out, "{value}").map_err(|_| EINVAL)
    }

    fn store(_name: &CStr, _input: &[u8]) -> Result {
        Err(EACCES)
    }
}

impl SysfsFiles for Policy {
    fn show(name: &CStr, out: &mut PageWriter<'_>) -> Result {
        use core::fmt::Write;
        let ns = NAMESPACES.view(NetId::current()?);
        let written = match name.to_bytes() {
            b"split" => writeln!(out, "{}", ns.split.load(Relaxed)),
            b"secondary" => {
                let words = [
                    ns.secondary_name[0].load(Relaxed),
                    ns.secondary_name[1].load(Relaxed),
                ];
                writeln!(out, "{}", IfName::from_words(words))
            }
            b"peer" => match Peer::unpack(ns.peer.load(Relaxed)) {
                Some(peer) => writeln!(out, "{peer}"),
                None => writeln!(out),
            },
            b"port" => writeln!(out, "{}", ns.port.load(Relaxed)),
            b"scheduler" => writeln!(
                out,
                "{}",
                Scheduler::from_u32(ns.scheduler.load(Relaxed)).name()
            ),
            b"probing" => writeln!(out, "{}", ns.probing.load(Relaxed)),
            b"probe_interval_ms" => writeln!(out, "{}", ns.probe_interval_ms.load(Relaxed)),
            b"probe_down_after" => writeln!(out, "{}", ns.probe_down_after.load(Relaxed)),
            b"tx_primary_datagrams" => writeln!(out, "{}", ns.primary.datagrams.load(Relaxed)),
            b"tx_primary_bytes" => writeln!(out, "{}", ns.primary.bytes.load(Relaxed)),
            b"tx_secondary_datagrams" => writeln!(out, "{}", ns.secondary.datagrams.load(Relaxed)),
            b"tx_secondary_bytes" => writeln!(out, "{}", ns.secondary.bytes.load(Relaxed)),
            b"tx_fallback_datagrams" => writeln!(out, "{}", ns.fallback.load(Relaxed)),
            b"sequencing" => writeln!(out, "{}", ns.sequencing.load(Relaxed)),
            b"peer_kind" => writeln!(
                out,
                "{}",
                match ns.peer_kind.load(Relaxed) {
                    k if k == PeerKind::Mpudp as u32 => "mpudp",
                    k if k == PeerKind::Plain as u32 => "plain",
                    _ => "unknown",
                }
            ),
            b"tx_sequenced_datagrams" => writeln!(out, "{}", ns.sequenced.load(Relaxed)),
            b"tx_unsequenced_no_room" => {
                writeln!(out, "{}", ns.unsequenced_no_room.load(Relaxed))
            }
            b"probe_replies_ignored" => writeln!(out, "{}", ns.replies_ignored.load(Relaxed)),
            _ => return Err(ENOENT),
        };
        written.map_err(|_| EINVAL)
    }

    fn store(name: &CStr, input: &[u8]) -> Result {
        let path = name.to_str().unwrap_or("?");
        let net = NetId::current()?;
        let _config = ffi::config_lock();
        match name.to_bytes() {
            b"split" => {
                let split = parse::parse_u32(input, SPLIT_MAX)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES.claim(net)?.split.store(split, Relaxed);
            }
            b"secondary" => {
                let parsed =
                    parse::parse_ifname(input).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let (ifindex, ifname) = match parsed {
                    // SAFETY: `net` is the writing task's namespace, alive while it writes.
                    Some(ifname) => match unsafe { net.ifindex(&ifname) } {
                        Some(ifindex) => (ifindex, ifname),
                        None => {
                            if REJECT_LOG.allow() {
                                pr_warn!(
                                    "secondary: no interface {} in this namespace\n",
                                    ifname.as_str()
                                );
                            }
                            return Err(ENODEV);
                        }
                    },
                    None => (0, IfName::default()),
                };
                let ns = NAMESPACES.claim(net)?;
                let [lo, hi] = ifname.to_words();
                ns.secondary_ifindex.store(ifindex, Relaxed);
                ns.secondary_name[0].store(lo, Relaxed);
                ns.secondary_name[1].store(hi, Relaxed);
            }
            b"peer" => {
                let peer =
                    parse::parse_peer(input).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES
                    .claim(net)?
                    .peer
                    .store(peer.map_or(0, Peer::pack), Relaxed);
            }
            b"port" => {
                let port = parse::parse_u32(input, u16::MAX.into())
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = NAMESPACES.claim(net)?;
                ns.port.store(port, Relaxed);
                // The tunnel's ports are learned again from its next datagram.
                ns.tunnel_ports.store(0, Relaxed);
            }
            b"scheduler" => {
                let scheduler =
                    parse::parse_scheduler(input).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES
                    .claim(net)?
                    .scheduler
                    .store(scheduler as u32, Relaxed);
            }
            b"probing" => {
                let on =
                    parse::parse_u32(input, 1).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = NAMESPACES.claim(net)?;
                ns.probing.store(on, Relaxed);
                // Writing 1 again restarts the measurements.
                if on == 1 {
                    ns.start_probing(net);
                } else {
                    ns.stop_probing();
                }
            }
            b"probe_interval_ms" => {
                let (_, min, max) = PROBE_INTERVAL_MS;
                let ms = parse::parse_in_range(input, min, max)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES.claim(net)?.probe_interval_ms.store(ms, Relaxed);
            }
            b"sequencing" => {
                let on =
                    parse::parse_u32(input, 1).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES.claim(net)?.sequencing.store(on, Relaxed);
            }
            b"probe_down_after" => {
                let (_, min, max) = PROBE_DOWN_AFTER;
                let count = parse::parse_in_range(input, min, max)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES
                    .claim(net)?
                    .probe_down_after
                    .store(count, Relaxed);
            }
            _ => return Err(EACCES),
        }
        Ok(())
    }
}

static SEND_OPS: SendOps = SendOps::new::<Policy>();
static PERNET: ffi::PernetOps = ffi::PernetOps::new();
static NETDEV: ffi::NetdevNotifier = ffi::NetdevNotifier::new();

/// Stops every prober when dropped (module unload, after the files are gone, so that no
/// write starts one again).
struct StopProbers;

impl Drop for StopProbers {
    fn drop(&mut self) {
        let _config = ffi::config_lock();
        NAMESPACES.for_every_state(|ns| ns.stop_probing());
    }
}

struct MpudpSend {
    // Dropped in this order: the send hook first, so no datagram is steered while the rest
    // goes; the files before the probers, so that no write starts one again; the receive
    // hook after the probers, so that answers still on their way are taken off the wire
    // (and ignored) rather than handed to the tunnel's socket.
    _hook: udp_hooks::SendHookRegistration,
    _files: ffi::SysfsRegistration,
    _path_files: [ffi::SysfsRegistration; 2],
    _paths_dir: ffi::SysfsDir,
    _probers: StopProbers,
    _recv_hook: udp_hooks::RecvHookRegistration<Policy>,
    _netdev: ffi::NetdevRegistration,
    _pernet: ffi::PernetRegistration,
}

impl kernel::Module for MpudpSend {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let split = module_parameters::split.value();
        if split > SPLIT_MAX {
            pr_err!(
                "split={split} is out of range: use 0..{SPLIT_MAX} (percent on the primary path)\n"
            );
            return Err(EINVAL);
        }
        DEFAULT_SPLIT.store(split, Relaxed);
        // What a namespace without configuration reads, with the `split` just set.
        NAMESPACES.init_defaults();
        let key = kernel::static_lock_class!();
        NAMESPACES.for_every_state(|ns| {
            // SAFETY: Module init, before the hooks, files and notifier that reach the prober
            // exist; the state is static and never moves, and `StopProbers` cancels every
            // timer before unload.
            unsafe {
                ns.prober.init(c"mpudp_prober", key);
                ns.probe_timer.setup::<SendState>();
            }
        });
        ffi::init_config_lock();
        let pernet = PERNET.register::<Policy>()?;
        let netdev = NETDEV.register::<Policy>()?;
        let probers = StopProbers;
        let paths_dir = ffi::SysfsDir::create(c"paths")?;
        let path_files = [
            PATH_GROUPS[PRIMARY].register_in::<PathFiles<PRIMARY>>(&paths_dir)?,
            PATH_GROUPS[SECONDARY].register_in::<PathFiles<SECONDARY>>(&paths_dir)?,
        ];
        let files = FILES.register::<Policy>()?;
        let recv_hook = udp_hooks::RecvHookRegistration::<Policy>::new().inspect_err(|_| {
            pr_err!("both UDP receive hook slots are taken by other modules\n");
        })?;
        let hook = SEND_OPS.register().inspect_err(|_| {
            pr_err!("the UDP send hook is already taken by another module\n");
        })?;
        pr_info!("loaded, split {split}\n");
        Ok(Self {
            _hook: hook,
            _files: files,
            _path_files: path_files,
            _paths_dir: paths_dir,
            _probers: probers,
            _recv_hook: recv_hook,
            _netdev: netdev,
            _pernet: pernet,
        })
    }
}
