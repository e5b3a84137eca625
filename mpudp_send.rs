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
//! With `probe_port` set, a worker thread per namespace probes both paths (the peer's
//! `mpudp_recv` answers), keeps each path's RTT, loss and delivered rate, takes a path that
//! stops answering out of use (failover) and runs the `rtt` scheduler. The datagram path only
//! reads what the worker publishes.
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
    reason = "the in-band messages are not sent yet; the capability rule is"
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
    reason = "shared with mpudp_recv, which uses the receive hook"
)]
mod udp_hooks;

use control::{Capability, PeerKind};
use ffi::{
    ConfigGuard, File, NetExit, NetId, PageWriter, ProbeSocket, SysfsFiles, SysfsGroup, WorkerBody,
    Workers,
};
use netns::{LogLimit, NetnsTable, NsState, PathCounters};
use parse::{IfName, Peer, Scheduler};
use probe::{LossWindow, Message, PathState, PathView, RttEstimator, PRIMARY, SECONDARY};
use seq::DataHeader;
use udp_hooks::{Outgoing, Routed, SendHook, SendOps};

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

/// What the sender knows about one path, published by the probe worker for the datagram path
/// and sysfs (all zero/unknown while probing is off).
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
    /// The peer's loss reading from gaps in the data sequence; [`probe::LOSS_UNKNOWN`] when
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
            data_loss_ppm: Atomic::new(probe::LOSS_UNKNOWN),
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
        self.data_loss_ppm.store(probe::LOSS_UNKNOWN, Relaxed);
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
    /// The peer's probe responder port; 0 when probing is off.
    probe_port: Atomic<u32>,
    probe_interval_ms: Atomic<u32>,
    probe_down_after: Atomic<u32>,
    /// The `rtt` scheduler's current permille of datagrams on the secondary path.
    rtt_secondary_permille: Atomic<u32>,
    /// Indexed by [`PRIMARY`] and [`SECONDARY`].
    paths: [PathStatus; 2],
    /// Whether datagrams may be sequenced (the `sequencing` knob; 1 by default).
    sequencing: Atomic<u32>,
    /// [`PeerKind`] as `u32`, published by the probe worker: datagrams get the header only
    /// while it is [`PeerKind::Mpudp`].
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
        probe_port: Atomic::new(0),
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
        self.probe_port.store(0, Relaxed);
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
static PROBERS: Workers<Prober> = Workers::new();

struct Policy;

impl SendHook for Policy {
    fn steer(d: &mut Outgoing<'_>) -> bool {
        let Some(ns) = NAMESPACES.find(d.net) else {
            return false;
        };
        let Some(peer) = Peer::unpack(ns.peer.load(Relaxed)) else {
            return false;
        };
        let port = ns.port.load(Relaxed);
        let in_scope = *d.daddr == peer.primary.0
            && port != 0
            && (u32::from(d.dport) == port || u32::from(d.sport) == port);
        if !in_scope {
            return false;
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

impl NetExit for Policy {
    fn net_exit(net: NetId) {
        let config = ffi::config_lock();
        // The worker uses the namespace's socket: it goes first.
        PROBERS.stop(&config, net);
        NAMESPACES.release(net, |_| {});
    }
}

/// Path names for the kernel log, by path index.
const PATH_NAMES: [&str; 2] = ["primary", "secondary"];

/// A namespace's probe worker: sends probes on both paths, reads the answers, and publishes
/// path state and the `rtt` share in the namespace's [`SendState`].
struct Prober {
    net: NetId,
    ns: &'static SendState,
    socket: ProbeSocket,
}

/// The worker's private bookkeeping for one path.
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
}

/// Rates are measured over at least this long, so that one probe interval's jitter and the
/// paths' one-way delay (the two ends count at different moments) do not dominate them.
const RATE_WINDOW_NS: u64 = 500_000_000;

impl WorkerBody for Prober {
    fn run(&self, thread: &ffi::WorkerThread) {
        let Ok(mut books) = KBox::new([PathBook::new(), PathBook::new()], GFP_KERNEL) else {
            pr_err!("probing: out of memory; paths are not measured\n");
            return;
        };
        let started = ffi::now_ns();
        let mut next_probe = started;
        let mut buf = [0u8; probe::WIRE_LEN + 1];
        let mut capability = Capability::new();
        let mut peer = self.ns.peer.load(Relaxed);
        while !thread.should_stop() {
            // Answers first: the wait ends as one arrives (its arrival time was taken in
            // softirq when it was queued), and the sooner it is read the sooner a path is up.
            self.socket.wait_and_drain(&mut buf, |data, rx| {
                if self.answer(&mut books, data, rx) {
                    capability.answered(ffi::now_ns());
                }
            });
            let now = ffi::now_ns();
            if now >= next_probe {
                let interval_ms = self.ns.probe_interval_ms.load(Relaxed);
                next_probe = now + u64::from(interval_ms) * 1_000_000;
                // Another peer must prove again that it runs MPUDP.
                let current_peer = self.ns.peer.load(Relaxed);
                if current_peer != peer {
                    peer = current_peer;
                    capability = Capability::new();
                }
                capability.tick(now);
                capability.probe_sent(now);
                self.send_probes(&mut books, now);
                self.judge(&mut books, now, started, interval_ms);
                self.schedule();
            }
            self.ns.peer_kind.store(capability.kind as u32, Relaxed);
        }
        // Without answers, the peer may be gone: no header, and back to the fixed split.
        self.ns.peer_kind.store(PeerKind::Unknown as u32, Relaxed);
        for path in &self.ns.paths {
            path.forget();
        }
    }
}

impl Prober {
    /// Sends one probe on each path. A probe that cannot leave (no peer, secondary interface
    /// unusable) still counts as sent, so that the path is judged unanswered.
    fn send_probes(&self, books: &mut [PathBook; 2], now: u64) {
        let peer = Peer::unpack(self.ns.peer.load(Relaxed));
        let port = u16::try_from(self.ns.probe_port.load(Relaxed)).unwrap_or(0);
        for (i, book) in books.iter_mut().enumerate() {
            let seq = book.window.sent(now);
            self.ns.paths[i].probes_sent.add(1u64, Relaxed);
            let Some(peer) = peer else { continue };
            let token = self.ns.token.load(Relaxed);
            let msg = Message::probe(i, seq, ffi::now_ns(), token).encode();
            let _ = if i == PRIMARY {
                self.socket.send(peer.primary, port, None, &msg)
            } else {
                let ifindex = self.ns.secondary_ifindex.load(Relaxed);
                match (ifindex != 0)
                    // SAFETY: A namespace's prober is stopped before the namespace exits.
                    .then(|| unsafe { self.net.usable_source(ifindex, peer.alternate) })
                    .flatten()
                {
                    Some(source) => {
                        self.socket
                            .send(peer.alternate, port, Some((ifindex, source)), &msg)
                    }
                    None => Err(ENETUNREACH),
                }
            };
        }
    }

    /// Takes in one datagram that arrived on the probe socket; returns whether it was a reply
    /// of this session (the peer runs MPUDP and knows the token).
    fn answer(&self, books: &mut [PathBook; 2], data: &[u8], rx: &ffi::Received) -> bool {
        let Some(msg) = Message::decode(data) else {
            return false;
        };
        let Some(peer) = Peer::unpack(self.ns.peer.load(Relaxed)) else {
            return false;
        };
        // Only the peer's address on the probed path answers for that path.
        let expected = if msg.path == PRIMARY {
            peer.primary
        } else {
            peer.alternate
        };
        let book = &mut books[msg.path];
        if msg.kind != probe::Kind::Reply || rx.from != expected || !book.window.answered(msg.seq) {
            return false;
        }
        let now = ffi::now_ns();
        let status = &self.ns.paths[msg.path];
        if let Some(sample) = probe::rtt_sample_us(msg.sent_ns, rx.arrived_ns, msg.hold_ns) {
            book.rtt.sample(sample);
            status.srtt_us.store(book.rtt.srtt_us, Relaxed);
            status.rttvar_us.store(book.rtt.rttvar_us, Relaxed);
        }
        book.answered_ns = Some(now);
        status.probes_answered.add(1u64, Relaxed);
        status.peer_rx_datagrams.store(msg.rx_datagrams, Relaxed);
        status.peer_rx_bytes.store(msg.rx_bytes, Relaxed);
        status.data_loss_ppm.store(msg.data_loss_ppm, Relaxed);
        let tx_bytes = self.ns.counters(msg.path).bytes.load(Relaxed);
        match book.rate_mark {
            Some((at, peer_bytes, our_bytes)) if now.saturating_sub(at) >= RATE_WINDOW_NS => {
                let elapsed = now - at;
                let delivered = probe::kbps(peer_bytes, msg.rx_bytes, elapsed);
                status.delivered_kbps.store(delivered, Relaxed);
                let sent = probe::kbps(our_bytes, tx_bytes, elapsed);
                status.sent_kbps.store(sent, Relaxed);
                book.rate_mark = Some((now, msg.rx_bytes, tx_bytes));
            }
            Some(_) => {}
            None => book.rate_mark = Some((now, msg.rx_bytes, tx_bytes)),
        }
        if status.state() != PathState::Up {
            if status.state() == PathState::Down {
                status.up_events.add(1u64, Relaxed);
                pr_info!(
                    "path {} up again: probes answered, srtt {} us\n",
                    PATH_NAMES[msg.path],
                    book.rtt.srtt_us
                );
            }
            status.state.store(PathState::Up as u32, Relaxed);
        }
        msg.token == self.ns.token.load(Relaxed)
    }

    /// Applies the failover rule and refreshes the loss estimates.
    fn judge(&self, books: &mut [PathBook; 2], now: u64, started: u64, interval_ms: u32) {
        let down_after = self.ns.probe_down_after.load(Relaxed);
        for (i, book) in books.iter().enumerate() {
            let status = &self.ns.paths[i];
            let other_up = self.ns.paths[1 - i].state() == PathState::Up;
            let overdue = probe::overdue_ns(down_after, interval_ms, &book.rtt);
            let silent_since = book.answered_ns.unwrap_or(started);
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
                probe::LOSS_UNKNOWN => status.probe_loss_ppm.load(Relaxed),
                data => data,
            };
            status.loss_ppm.store(loss, Relaxed);
        }
    }

    /// One step of the `rtt` scheduler, while both paths answer.
    fn schedule(&self) {
        let [p, s] = &self.ns.paths;
        if p.state() != PathState::Up || s.state() != PathState::Up {
            return;
        }
        let view = |path: &PathStatus| PathView {
            srtt_us: path.srtt_us.load(Relaxed),
            loss_ppm: path.loss_ppm.load(Relaxed),
            sent_kbps: path.sent_kbps.load(Relaxed),
            delivered_kbps: path.delivered_kbps.load(Relaxed),
        };
        let current = self.ns.rtt_secondary_permille.load(Relaxed);
        let next = probe::rtt_step(current, &view(p), &view(s));
        self.ns.rtt_secondary_permille.store(next, Relaxed);
    }
}

/// Starts or stops `net`'s probe worker to match `port` (0: off).
fn apply_probe_port(config: &ConfigGuard, net: NetId, ns: &'static SendState, port: u32) -> Result {
    if port == 0 {
        PROBERS.stop(config, net);
        return Ok(());
    }
    // The socket gets an ephemeral port: answers come back to it.
    let socket = ProbeSocket::open(net, 0).inspect_err(|e| {
        pr_warn!(
            "probe_port: cannot open the probe socket: error {}\n",
            e.to_errno()
        );
    })?;
    let prober = KBox::new(Prober { net, ns, socket }, GFP_KERNEL)?;
    // Fresh measurements, fresh start for the rtt scheduler.
    ns.rtt_secondary_permille
        .store(probe::RTT_START_PERMILLE, Relaxed);
    PROBERS.start(config, net, c"mpudp_probe", prober)
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
            name: c"probe_port",
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
                    probe::LOSS_UNKNOWN => writeln!(out),
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
            b"probe_port" => writeln!(out, "{}", ns.probe_port.load(Relaxed)),
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
            _ => return Err(ENOENT),
        };
        written.map_err(|_| EINVAL)
    }

    fn store(name: &CStr, input: &[u8]) -> Result {
        let path = name.to_str().unwrap_or("?");
        let net = NetId::current()?;
        let config = ffi::config_lock();
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
                    .and_then(|port| {
                        parse::distinct_ports(port, NAMESPACES.view(net).probe_port.load(Relaxed))
                    })
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES.claim(net)?.port.store(port, Relaxed);
            }
            b"scheduler" => {
                let scheduler =
                    parse::parse_scheduler(input).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES
                    .claim(net)?
                    .scheduler
                    .store(scheduler as u32, Relaxed);
            }
            b"probe_port" => {
                let port = parse::parse_u32(input, u16::MAX.into())
                    .and_then(|port| {
                        parse::distinct_ports(port, NAMESPACES.view(net).port.load(Relaxed))
                    })
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = NAMESPACES.claim(net)?;
                let old = ns.probe_port.xchg(port, Relaxed);
                if let Err(e) = apply_probe_port(&config, net, ns, port) {
                    // The old worker survives a failure to open the new socket, but not one to
                    // start the new thread.
                    let running = PROBERS.running(&config, net);
                    ns.probe_port.store(if running { old } else { 0 }, Relaxed);
                    return Err(e);
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

/// Stops every probe worker when dropped (module unload, after the files are gone).
struct StopProbers;

impl Drop for StopProbers {
    fn drop(&mut self) {
        PROBERS.stop_all(&ffi::config_lock());
    }
}

struct MpudpSend {
    // Dropped in this order: the hook first, so no datagram sees state being torn down; the
    // files before the workers, so that no write starts one again.
    _hook: udp_hooks::SendHookRegistration,
    _files: ffi::SysfsRegistration,
    _path_files: [ffi::SysfsRegistration; 2],
    _paths_dir: ffi::SysfsDir,
    _probers: StopProbers,
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
            _netdev: netdev,
            _pernet: pernet,
        })
    }
}
