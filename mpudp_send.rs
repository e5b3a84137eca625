// SPDX-License-Identifier: GPL-2.0

//! MPUDP sender: spreads one UDP tunnel's datagrams over a primary path and one path per
//! `secondary` interface (up to 8 in all).
//!
//! For every IPv4 datagram a socket sends to the configured peer's primary address on the
//! configured port, the path schedule (`common/spread.rs`: smooth weighted round robin over one
//! cycle of 1000 datagrams, read without a lock) decides the path, at the shares the scheduler
//! sets: the fixed `split`, the `rtt` scheduler's share from path measurements, or the
//! `rate` scheduler's weights from the paths' capacity (`common/rate_sched.rs`). A datagram for another path than the primary is sent to the peer's alternate
//! address for that path over that path's interface, from that interface's address.
//! Everything else leaves exactly as without MPUDP. If the path's interface is gone, down,
//! without carrier or without an IPv4 address, the datagram stays on the primary path.
//!
//! With `probing` on, a soft hrtimer per namespace probes every path each probe interval
//! (`common/prober.rs`, messages in `common/control.rs`; the peer's `mpudp_recv` answers at
//! once). Probes and their answers travel in the tunnel's own 5-tuple on each path, so
//! firewalls, NAT and ECMP treat them as the data; this module's receive hook takes the
//! answers before any socket sees them. The prober keeps each path's RTT (from its own send
//! times), loss and delivered rate and takes a path that stops answering out of use
//! (failover); after each round this module runs the schedulers' steps. The datagram
//! path only reads what the prober publishes.
//!
//! Once the peer has answered a probe carrying this namespace's session token, every in-scope
//! datagram that fits gets the sequencing header (`common/seq.rs`) before its payload: the
//! peer's sequence number and the path's, which the peer's `mpudp_recv` removes and measures
//! each path's loss from.

use kernel::prelude::*;
use kernel::sync::atomic::{Acquire, Atomic, Relaxed, Release};

#[path = "common/ffi.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_recv, which uses the receive-side parts"
)]
mod ffi;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/parse.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_recv, which finds the path of a peer's address"
)]
mod parse;

#[path = "common/control.rs"]
#[allow(
    dead_code,
    reason = "the unknown-session message is not sent yet; the header hook reads the published kind"
)]
mod control;
#[path = "common/fec.rs"]
#[allow(dead_code, reason = "shared with mpudp_recv, which rebuilds")]
mod fec;
#[path = "common/probe.rs"]
mod probe;
#[path = "common/prober.rs"]
mod prober;
#[path = "common/rate_sched.rs"]
mod rate_sched;
#[path = "common/seq.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_recv, which reads headers and measures loss"
)]
mod seq;
#[path = "common/spread.rs"]
mod spread;
#[path = "common/spread_table.rs"]
mod spread_table;
#[path = "common/udp_hooks.rs"]
#[allow(
    dead_code,
    reason = "shared with mpudp_recv, which holds and delivers datagrams"
)]
mod udp_hooks;

use core::mem::offset_of;

use control::{Control, PeerKind, PROBE_LEN, SHORT_LEN};
use fec::{Added, Encoder, RepairHeader, MAX_PAYLOAD, MAX_SYMBOL, REPAIR_HEADER_LEN};
use ffi::{
    File, NetExit, NetId, PageWriter, RcuValue, SoftTimer, SoftirqLock, SysfsFiles, SysfsGroup,
    TimerOwner,
};
use netns::{LogLimit, NetnsStates, NsState, PathCounters};
use parse::{Fec, IfNames, Peer, Scheduler, MAX_EXTRA_PATHS};
use probe::{PathState, PathView, PRIMARY, SECONDARY};
use prober::{PathStatus, Prober, Tunnel, PROBE_DOWN_AFTER, PROBE_INTERVAL_MS};
use rate_sched::PathReading;
use seq::DataHeader;
use seq::MAX_PATHS;
use spread::Shares;
use spread_table::SpreadTable;
use udp_hooks::{Arriving, Built, Outgoing, RecvHook, Routed, SendHook, SendOps, Verdict};

module! {
    type: MpudpSend,
    name: "mpudp_send",
    authors: ["MPUDP developers"],
    description: "MPUDP: send one UDP tunnel's datagrams over several network paths",
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

/// When a full group's repairs go if no datagram comes first (they go with the next one's
/// hook, after the group's last datagram left).
const FEC_FULL_NS: u64 = 1_000_000;

/// Loss recovery at the sender (`fec.rs`): the open group, and what sending its repairs
/// needs. Taken by the send path (the built hook) and the FEC timer (softirq).
struct FecSender {
    /// The namespace the repairs go out in, while probing runs (set by `start_probing`,
    /// cleared by `stop_fec`): without it nothing is coded and the timer sends nothing.
    net: Option<NetId>,
    encoder: Encoder,
    /// The open group's datagrams on each path, for where its repairs go.
    group_paths: [u8; MAX_PATHS],
    /// Whether the open group is full: its repairs go at the next datagram's hook (after
    /// the group's last datagram has left) or from the timer.
    full: bool,
    /// The payload being coded, copied out of the skb.
    payload: [u8; MAX_PAYLOAD],
    /// A repair datagram being sent.
    wire: [u8; REPAIR_HEADER_LEN + MAX_SYMBOL],
}

impl FecSender {
    const fn new() -> Self {
        Self {
            net: None,
            encoder: Encoder::new(),
            group_paths: [0; MAX_PATHS],
            full: false,
            payload: [0; MAX_PAYLOAD],
            wire: [0; REPAIR_HEADER_LEN + MAX_SYMBOL],
        }
    }

    /// Drops the open group unsent.
    fn drop_group(&mut self) {
        self.encoder.clear();
        self.group_paths = [0; MAX_PATHS];
        self.full = false;
    }
}

/// What loss recovery sent, for sysfs.
struct FecSent {
    /// Groups whose repairs were sent.
    groups: Atomic<u64>,
    /// Repair datagrams handed to the IP layer.
    repairs: Atomic<u64>,
    /// Repair datagrams that could not be sent (no usable path, no route, no memory).
    repair_errors: Atomic<u64>,
    /// Sequenced datagrams not coded (or not copied, in redundant mode): longer than a
    /// symbol takes.
    uncoded: Atomic<u64>,
    /// Redundant mode's copies handed to the IP layer, one per other usable path.
    copies: Atomic<u64>,
    /// Copies that could not be sent (no route, no memory).
    copy_errors: Atomic<u64>,
}

/// The FEC timer's owner: the state it is a field of, seen through the timer's offset.
#[repr(transparent)]
struct FecTimer(SendState);

impl TimerOwner for FecTimer {
    const TIMER_OFFSET: usize = offset_of!(SendState, fec_timer);

    fn fired(&self) {
        self.0.fec_timer_fired();
    }
}

/// The shortest probe round whose load [`SendState::offered_kbps`] takes: with
/// `probe_interval_ms` 10, a round of a bursty load would read the burst.
const ROUND_LOAD_MIN_NS: u64 = 90_000_000;

/// What one namespace configured for its sender. Published whole ([`RcuValue`]): a datagram
/// is steered by one version, never by a new peer with an old interface.
#[derive(Clone, Copy)]
struct SendConfig {
    /// Percent of in-scope datagrams on the primary path.
    split: u32,
    /// The interfaces of the paths after the primary one (`secondary`), as written, for
    /// reading back and re-resolving; none when multipath is off.
    secondary: IfNames,
    /// Their indices, in the same order; 0 where a name is not resolved.
    secondary_ifindex: [i32; MAX_EXTRA_PATHS],
    peer: Option<Peer>,
    /// The tunnel's UDP port (source or destination); 0 when unset.
    port: u32,
    scheduler: Scheduler,
    /// Whether the paths are probed (`probing`).
    probing: bool,
    /// Whether datagrams may be sequenced (the `sequencing` knob; on by default).
    sequencing: bool,
    /// Loss recovery (`fec`): off, or groups of datagrams with their repairs.
    fec: Fec,
}

impl SendConfig {
    /// A namespace's configuration before its first write, with the module's `split`.
    fn defaults() -> Self {
        Self {
            split: DEFAULT_SPLIT.load(Relaxed),
            secondary: IfNames::default(),
            secondary_ifindex: [0; MAX_EXTRA_PATHS],
            peer: None,
            port: 0,
            scheduler: Scheduler::Split,
            probing: false,
            sequencing: true,
            fec: Fec::Off,
        }
    }

    /// How many paths the tunnel has: the primary, and one per `secondary` interface (at
    /// least one: without an interface the secondary path's share stays on the primary, as
    /// `tx_fallback_datagrams` counts).
    fn paths(&self) -> usize {
        1 + self.secondary.names().len().max(1)
    }

    /// The interface of path `path`: 0 for the primary path (routing picks it) and for a
    /// path without one.
    fn ifindex(&self, path: usize) -> i32 {
        path.checked_sub(1)
            .and_then(|i| self.secondary_ifindex.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// The send-side configuration and counters of one network namespace.
struct SendState {
    config: RcuValue<SendConfig>,
    /// Number of the next eligible datagram: it takes slot `n % 1000` of the schedule.
    next_datagram: Atomic<u64>,
    /// Which path each slot of the schedule's cycle takes, for the shares now.
    spread: SpreadTable,
    /// What each path carried, by path index.
    paths: [PathCounters; MAX_PATHS],
    /// Datagrams the schedule put on another path that had to stay on the primary one.
    fallback: Atomic<u64>,
    /// The tunnel's ports as its latest in-scope datagram used them, local in the high half;
    /// 0 until one was sent. Probes go in the same 5-tuple.
    tunnel_ports: Atomic<u32>,
    /// The `rtt` scheduler's current permille of datagrams on the secondary path.
    rtt_secondary_permille: Atomic<u32>,
    /// The `rate` scheduler's weight for each path (`common/rate_sched.rs`), and their
    /// generation: 0 until the first weights (the fixed split applies), one more each time
    /// they change. Written by the timer only, weights first.
    rate_weights: [Atomic<u32>; MAX_PATHS],
    rate_generation: Atomic<u32>,
    /// The lesser load of the latest two probe rounds, kbit/s; the latest round's; and
    /// where the next reading starts (monotonic ns, 0 for not yet; bytes sent on all
    /// paths): the paths' rate windows lag a growing load by up to a second. Written by the
    /// timer only.
    round_load_kbps: Atomic<u64>,
    last_round_kbps: Atomic<u64>,
    round_load_mark_ns: Atomic<u64>,
    round_load_mark_bytes: Atomic<u64>,
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
    /// Probes the paths and publishes what it measures (`common/prober.rs`); its timer is
    /// this state's ([`TimerOwner`]).
    prober: Prober,
    /// Loss recovery: the open group, its timer (closing groups that do not fill) and its
    /// counters.
    fec: SoftirqLock<FecSender>,
    fec_timer: SoftTimer,
    fec_sent: FecSent,
    /// `auto`'s reading: the loss the tunnel's datagrams met over the latest probe round
    /// that sent any (each path's data loss weighted by its datagrams), in ppm; the
    /// residual loss it aims for, in ppb; the repairs a full group of [`fec::AUTO_SPAN`]
    /// needs at that loss; and each path's datagram count at that round's end. Written by
    /// the timer only.
    fec_auto_loss_ppm: Atomic<u32>,
    fec_auto_target_ppb: Atomic<u64>,
    fec_auto_repairs: Atomic<u32>,
    fec_auto_marks: [Atomic<u64>; MAX_PATHS],
}

impl NsState for SendState {
    const FRESH: Self = Self {
        config: RcuValue::new(),
        next_datagram: Atomic::new(0),
        spread: SpreadTable::new(),
        paths: [const { PathCounters::new() }; MAX_PATHS],
        fallback: Atomic::new(0),
        tunnel_ports: Atomic::new(0),
        rtt_secondary_permille: Atomic::new(probe::RTT_START_PERMILLE),
        rate_weights: [const { Atomic::new(0) }; MAX_PATHS],
        rate_generation: Atomic::new(0),
        round_load_kbps: Atomic::new(0),
        last_round_kbps: Atomic::new(0),
        round_load_mark_ns: Atomic::new(0),
        round_load_mark_bytes: Atomic::new(0),
        token: Atomic::new(0),
        next_seq: Atomic::new(0),
        sequenced: Atomic::new(0),
        unsequenced_no_room: Atomic::new(0),
        prober: Prober::new(),
        fec: SoftirqLock::new(FecSender::new()),
        fec_timer: SoftTimer::new(),
        fec_sent: FecSent {
            groups: Atomic::new(0),
            repairs: Atomic::new(0),
            repair_errors: Atomic::new(0),
            uncoded: Atomic::new(0),
            copies: Atomic::new(0),
            copy_errors: Atomic::new(0),
        },
        fec_auto_loss_ppm: Atomic::new(0),
        fec_auto_target_ppb: Atomic::new(fec::AUTO_TARGET_DEFAULT_PPB),
        fec_auto_repairs: Atomic::new(0),
        fec_auto_marks: [const { Atomic::new(0) }; MAX_PATHS],
    };

    unsafe fn set_up(&self) -> Result {
        let key = kernel::static_lock_class!();
        // SAFETY: The caller's contract: once, before anything can reach the state, which
        // never moves and is torn down (the prober stopped) before it is freed.
        unsafe { self.prober.init::<SendState>(key) };
        let fec_key = kernel::static_lock_class!();
        // SAFETY: As above; the timer is the field at `FecTimer`'s offset of this state,
        // which `FecTimer` wraps transparently, and `stop_fec` cancels it before the state
        // is freed.
        unsafe {
            self.fec.init(c"mpudp_fec", fec_key);
            self.fec_timer.setup::<FecTimer>();
        }
        self.token.store(ffi::random_u32(), Relaxed);
        self.config.init(SendConfig::defaults())
    }

    fn quiesce(&self, _net: NetId) {
        // The prober's timer sends in the namespace: it stops while the namespace is whole.
        self.prober.stop();
        self.stop_fec();
    }

    fn tear_down(&self) {
        self.prober.stop();
        self.stop_fec();
        // SAFETY: Torn down once nothing reaches the state (see `NsState::tear_down`).
        unsafe { self.config.release() };
    }
}

impl SendState {
    /// The configuration now; a torn-down state's reads as the defaults.
    fn config(&self) -> SendConfig {
        self.config.load().unwrap_or_else(SendConfig::defaults)
    }

    /// What each path's share of the in-scope datagrams depends on now, under `config`.
    fn share_inputs(&self, config: &SendConfig) -> ShareInputs {
        let paths = config.paths();
        let (mut up, mut down) = (0u8, 0u8);
        for (i, path) in self.prober.paths.iter().enumerate().take(paths) {
            match path.state() {
                PathState::Up => up |= 1 << i,
                PathState::Down => down |= 1 << i,
                PathState::Unknown => {}
            }
        }
        let rtt_both_up = config.scheduler == Scheduler::Rtt && paths == 2 && up == 0b11;
        // Acquire: a datagram that reads a generation reads its weights, or newer ones (which
        // then come with a newer generation, so the next datagram rebuilds once more).
        let generation = self.rate_generation.load(Acquire);
        ShareInputs {
            paths,
            up,
            down,
            split: config.split.min(SPLIT_MAX),
            rtt_secondary_permille: rtt_both_up
                .then(|| self.rtt_secondary_permille.load(Relaxed).min(1000)),
            rate_generation: (config.scheduler == Scheduler::Rate && generation != 0)
                .then_some(generation),
        }
    }

    /// Each path's share under `inputs` (see [`ShareInputs::shares`]).
    fn shares(&self, inputs: &ShareInputs) -> Shares {
        let rate = inputs
            .rate_generation
            .map(|_| core::array::from_fn(|i| self.rate_weights[i].load(Relaxed)));
        inputs.shares(rate)
    }

    /// The load: what this host sent on the tunnel's first `paths` paths over their last
    /// rate windows (≥ 500 ms), or, if more, the lesser of the latest two probe rounds'
    /// loads, kbit/s (the delay preference weighs it; sysfs `offered_kbps`). The rounds see a
    /// load that grows within two rounds: a tunnelled TCP starting up must not be held on
    /// the preferred paths, filling their queues, for the second the rate windows take to
    /// follow it. The lesser of two, because one round of a bursty load (tunnelled TCP sends
    /// 64 KiB at once) may catch one burst more than its mean.
    fn offered_kbps(&self, paths: usize) -> u64 {
        let windows = self
            .prober
            .paths
            .iter()
            .take(paths)
            .fold(0u64, |sum, path| {
                sum.saturating_add(path.sent_kbps.load(Relaxed))
            });
        windows.max(self.round_load_kbps.load(Relaxed))
    }

    /// Takes the load of the probe round that ended at `now` from the first `paths` paths'
    /// byte counters. Timer only.
    fn measure_round_load(&self, paths: usize, now: u64) {
        let bytes = self.paths.iter().take(paths).fold(0u64, |sum, path| {
            sum.saturating_add(path.bytes.load(Relaxed))
        });
        let mark = self.round_load_mark_ns.load(Relaxed);
        let elapsed = now.saturating_sub(mark);
        if mark != 0 && elapsed < ROUND_LOAD_MIN_NS {
            return;
        }
        if mark != 0 {
            let before = self.round_load_mark_bytes.load(Relaxed);
            let kbps = probe::kbps(before, bytes, elapsed);
            let last = self.last_round_kbps.load(Relaxed);
            self.last_round_kbps.store(kbps, Relaxed);
            self.round_load_kbps.store(kbps.min(last), Relaxed);
        }
        self.round_load_mark_ns.store(now.max(1), Relaxed);
        self.round_load_mark_bytes.store(bytes, Relaxed);
    }

    /// The data counters of path `i`.
    fn counters(&self, i: usize) -> Option<&PathCounters> {
        self.paths.get(i)
    }
}

/// Everything the paths' shares are computed from; the send hook keys its schedule by it.
struct ShareInputs {
    /// The tunnel's paths (at most [`MAX_PATHS`]).
    paths: usize,
    /// A bit per path: answering probes, judged down.
    up: u8,
    down: u8,
    /// Percent on the primary path, at most [`SPLIT_MAX`].
    split: u32,
    /// The `rtt` scheduler's permille on the secondary path while it is selected and both
    /// paths answer; at most 1000.
    rtt_secondary_permille: Option<u32>,
    /// The generation of the `rate` scheduler's weights while it is selected and has any.
    rate_generation: Option<u32>,
}

impl ShareInputs {
    /// The inputs packed in one word: equal keys, equal shares.
    fn key(&self) -> u64 {
        let scheduler = match (self.rtt_secondary_permille, self.rate_generation) {
            (Some(permille), _) => 1 | u64::from(permille) << 2,
            (None, Some(generation)) => 2 | u64::from(generation) << 2,
            (None, None) => 0,
        };
        (self.paths as u64 & 0xf)
            | u64::from(self.up) << 4
            | u64::from(self.down) << 12
            | u64::from(self.split & 0x7f) << 20
            | scheduler << 27
    }

    /// Each path's share: the weights are the `rtt` scheduler's while it applies, the `rate`
    /// scheduler's (`rate`, read for [`ShareInputs::rate_generation`]) while it applies, else
    /// the fixed `split`: that percent on the primary path and the rest in equal parts on the
    /// others. The failover rule ([`Shares::with_failover`]) then takes out the paths judged
    /// down while another answers.
    fn shares(&self, rate: Option<[u32; MAX_PATHS]>) -> Shares {
        let mut weights = [0u32; MAX_PATHS];
        if let Some(rate) = rate.filter(|_| self.rate_generation.is_some()) {
            weights = rate;
        } else if let Some(secondary) = self.rtt_secondary_permille {
            weights[PRIMARY] = 1000 - secondary;
            weights[SECONDARY] = secondary;
        } else {
            for (i, weight) in weights.iter_mut().enumerate().take(self.paths) {
                *weight = match i {
                    PRIMARY => self.split * (self.paths as u32 - 1),
                    _ => SPLIT_MAX - self.split,
                };
            }
        }
        Shares::with_failover(weights, self.paths, self.up, self.down)
    }
}

/// The `split` module parameter, validated at load.
static DEFAULT_SPLIT: Atomic<u32> = Atomic::new(50);
static NAMESPACES: NetnsStates<SendState> = NetnsStates::new();
static REJECT_LOG: LogLimit = LogLimit::new();

struct Policy;

impl SendHook for Policy {
    fn steer(d: &mut Outgoing<'_>) -> bool {
        // SAFETY: Hooks run under RCU for a datagram of `d.net`, alive for the call, and are
        // unregistered before the namespace states are.
        let Some(ns) = (unsafe { NAMESPACES.find(d.net) }) else {
            return false;
        };
        let Some(config) = ns.config.load() else {
            return false;
        };
        let Some(peer) = config.peer else {
            return false;
        };
        if *d.daddr != peer.primary.0 || !parse::on_tunnel_port(config.port, d.sport, d.dport) {
            return false;
        }
        // Probes follow the tunnel's 5-tuple; written only when it changes (one cache line
        // that every CPU sending for the tunnel reads).
        let ports = u32::from(d.sport) << 16 | u32::from(d.dport);
        if ns.tunnel_ports.load(Relaxed) != ports {
            ns.tunnel_ports.store(ports, Relaxed);
        }
        let n = ns.next_datagram.fetch_add(1u64, Relaxed);
        let inputs = ns.share_inputs(&config);
        let path = ns.spread.path(n, inputs.key(), || ns.shares(&inputs));
        if path != PRIMARY {
            let ifindex = config.ifindex(path);
            let to = peer.addr(path);
            let source = (ifindex != 0)
                // SAFETY: The hook runs for a datagram sent in `d.net`, alive for the call.
                .then(|| unsafe { d.net.usable_source(ifindex, to) })
                .flatten();
            if let (Some(source), Some(counters)) = (source, ns.counters(path)) {
                *d.daddr = to.0;
                *d.saddr = source.0;
                *d.oif = ifindex;
                d.path = Some(path as u8);
                counters.count(d.len);
                return true;
            }
            ns.fallback.add(1u64, Relaxed);
        }
        d.path = Some(PRIMARY as u8);
        ns.paths[PRIMARY].count(d.len);
        false
    }

    fn header(d: Routed<'_>) -> usize {
        // SAFETY: As in `steer`.
        let Some(ns) = (unsafe { NAMESPACES.find(d.net) }) else {
            return 0;
        };
        let path = usize::from(d.path);
        if !ns.config.load().is_some_and(|c| c.sequencing)
            || ns.prober.peer_kind.load(Relaxed) != PeerKind::Mpudp as u32
            || path >= ns.prober.paths.len()
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
            path_seq: ns.prober.paths[path].next_path_seq.fetch_add(1u32, Relaxed),
            // The receiver compares paths by it; wrapping microseconds are enough for that.
            sent_us: (ffi::now_ns() / 1000) as u32,
        };
        d.header[..seq::HEADER_LEN].copy_from_slice(&header.encode());
        ns.sequenced.add(1u64, Relaxed);
        seq::HEADER_LEN
    }

    fn built(d: &Built<'_>) {
        // SAFETY: As in `steer`.
        let Some(ns) = (unsafe { NAMESPACES.find(d.net) }) else {
            return;
        };
        if let Some(config) = ns.config.load() {
            ns.fec_built(d, &config);
        }
    }
}

impl ffi::InterfacesChanged for Policy {
    /// Re-resolves every namespace's secondary interface by its configured name, so that an
    /// interface that is deleted stops being used and one re-created (or renamed) under that
    /// name is used again.
    fn interfaces_changed() {
        let lock = ffi::config_lock();
        NAMESPACES.for_each(&lock, |net, ns| {
            let config = ns.config();
            let mut ifindex = [0; MAX_EXTRA_PATHS];
            for (index, name) in ifindex.iter_mut().zip(config.secondary.names()) {
                // SAFETY: A namespace holding state is alive: its exit removes the state
                // under the configuration lock, which this holds.
                *index = unsafe { net.ifindex(name) }.unwrap_or(0);
            }
            if ifindex == config.secondary_ifindex {
                return;
            }
            let resolved = ns.config.update(&lock, |c| c.secondary_ifindex = ifindex);
            if resolved.is_err() && REJECT_LOG.allow() {
                pr_warn!("secondary: interface change not taken (no memory)\n");
            }
        });
    }
}

impl RecvHook for Policy {
    /// Takes the peer's answers to this namespace's probes off the wire, before any socket
    /// sees them; everything else passes untouched (`mpudp_recv`'s hook, before or after
    /// this one, takes the peer's probes and data).
    fn arrive(d: &mut Arriving<'_>) -> Verdict {
        if d.len != PROBE_LEN && d.len != SHORT_LEN {
            return Verdict::Deliver;
        }
        // SAFETY: As in `steer`.
        let Some(ns) = (unsafe { NAMESPACES.find(d.net) }) else {
            return Verdict::Deliver;
        };
        let Some(config) = ns.config.load().filter(|c| c.probing) else {
            return Verdict::Deliver;
        };
        let (path, message) = match d.whole_payload().and_then(Control::decode) {
            Some(Control::Reply(reply)) => (reply.path, Control::Reply(reply)),
            Some(closing @ Control::Closing { path, .. }) => (path, closing),
            _ => return Verdict::Deliver,
        };
        let Some(peer) = config.peer else {
            return Verdict::Deliver;
        };
        // Only the peer's address on the path named, on the tunnel's port, speaks for it.
        let path = usize::from(path);
        if path >= config.paths()
            || d.saddr != peer.addr(path)
            || !parse::on_tunnel_port(config.port, d.sport, d.dport)
        {
            return Verdict::Deliver;
        }
        if d.verify_and_empty().is_ok() {
            let now = ffi::now_ns();
            let token = ns.token.load(Relaxed);
            let taken = match message {
                Control::Reply(reply) => {
                    let tx_bytes = ns.counters(path).map_or(0, |c| c.bytes.load(Relaxed));
                    ns.prober.take_reply(&reply, now, token, tx_bytes)
                }
                Control::Closing { token: theirs, .. } => {
                    ns.prober.take_closing(theirs, now, token)
                }
                _ => false,
            };
            if taken {
                return Verdict::Consumed;
            }
        }
        ns.prober.replies_ignored.add(1u64, Relaxed);
        Verdict::Drop
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

impl TimerOwner for SendState {
    const TIMER_OFFSET: usize = offset_of!(SendState, prober.timer);

    fn fired(&self) {
        if self.prober.round(|| self.tunnel()) {
            self.schedule();
        }
    }
}

impl SendState {
    /// Where the prober sends, as configured now.
    fn tunnel(&self) -> Tunnel {
        self.tunnel_of(&self.config())
    }

    /// The tunnel as configuration `config` describes it.
    fn tunnel_of(&self, config: &SendConfig) -> Tunnel {
        Tunnel {
            peer: config.peer,
            port: config.port,
            ports: self.tunnel_ports.load(Relaxed),
            paths: config.paths(),
            ifindex: core::array::from_fn(|path| config.ifindex(path)),
            token: self.token.load(Relaxed),
            next_seq: self.next_seq.load(Relaxed),
        }
    }

    /// Starts probing `net` for `peer` afresh, with a fresh start for the schedulers.
    /// Process context, configuration lock held.
    fn start_probing(&self, net: NetId, peer: Option<Peer>) {
        self.prober.stop();
        self.stop_fec();
        if let Some(mut fec) = self.fec.lock_bh() {
            fec.net = Some(net);
        }
        self.rtt_secondary_permille
            .store(probe::RTT_START_PERMILLE, Relaxed);
        self.rate_generation.store(0, Release);
        self.round_load_kbps.store(0, Relaxed);
        self.last_round_kbps.store(0, Relaxed);
        self.round_load_mark_ns.store(0, Relaxed);
        self.fec_auto_loss_ppm.store(0, Relaxed);
        self.fec_auto_target_ppb
            .store(fec::AUTO_TARGET_DEFAULT_PPB, Relaxed);
        self.fec_auto_repairs.store(0, Relaxed);
        self.prober.start(net, peer);
    }

    /// Stops loss recovery sending in its namespace: the open group is dropped and the timer
    /// cancelled; nothing is coded until probing starts again. Process context.
    fn stop_fec(&self) {
        if let Some(mut fec) = self.fec.lock_bh() {
            fec.net = None;
            fec.drop_group();
        }
        // A timer that fired before `net` was cleared may have re-armed itself: the cancel
        // undoes that too, and it finds no `net` from now on.
        self.fec_timer.cancel();
    }

    /// Loss recovery for datagram `d` (the built hook): codes it into the open group,
    /// sending the group's repairs first if it was full, or if `d` does not fit it; or, in
    /// redundant mode, sends its copies. Only for a peer that takes repairs.
    fn fec_built(&self, d: &Built<'_>, config: &SendConfig) {
        let wanted = match config.fec {
            Fec::Off => return,
            Fec::Ratio { data, repairs } => (data, repairs),
            // At most 8: `auto_repairs`.
            Fec::Auto => (fec::AUTO_SPAN, self.fec_auto_repairs.load(Relaxed) as u8),
            Fec::Redundant => (0, 0),
        };
        if !self.peer_takes_repairs() {
            return;
        }
        let Some(header) = DataHeader::decode(d.header) else {
            return;
        };
        let Some(mut guard) = self.fec.lock_bh() else {
            return;
        };
        let fec = &mut *guard;
        let Some(net) = fec.net else {
            return;
        };
        if fec.encoder.ratio() != wanted && fec.encoder.group().is_some() {
            // The setting, or `auto`'s need, changed: the open group was coded under the old
            // one, and its repairs go as they are.
            self.send_repairs(fec, net, config);
        }
        if config.fec == Fec::Redundant {
            self.send_copies(fec, net, d, header, config);
            return;
        }
        if wanted.1 == 0 {
            return;
        }
        if fec.encoder.ratio() != wanted {
            fec.encoder.set_ratio(wanted.0, wanted.1);
        }
        if fec.full {
            self.send_repairs(fec, net, config);
        }
        let Some(payload) = fec.payload.get_mut(..d.len) else {
            self.fec_sent.uncoded.add(1u64, Relaxed);
            return;
        };
        if d.copy_payload(payload).is_err() {
            return;
        }
        let now = ffi::now_ns();
        for _ in 0..2 {
            match fec
                .encoder
                .add(header.seq, fec.payload.get(..d.len).unwrap_or(&[]), now)
            {
                Added::Coded { full } => {
                    if let Some(count) = fec.group_paths.get_mut(usize::from(d.path)) {
                        *count = count.saturating_add(1);
                    }
                    if full {
                        fec.full = true;
                        self.fec_timer.start_at(now + FEC_FULL_NS, 0);
                    } else if fec
                        .encoder
                        .group()
                        .is_some_and(|g| g.covered.count_ones() == 1)
                    {
                        self.fec_timer.start_at(now + fec::GROUP_FLUSH_NS, 0);
                    }
                    return;
                }
                // Not in the open group: it goes now, and the datagram opens the next.
                Added::Outside => self.send_repairs(fec, net, config),
                Added::NotCoded => return,
            }
        }
    }

    /// Whether repairs (and copies) may go to the peer: it is an MPUDP peer whose replies
    /// say it takes them.
    fn peer_takes_repairs(&self) -> bool {
        self.prober.peer_takes_repairs.load(Relaxed)
            && self.prober.peer_kind.load(Relaxed) == PeerKind::Mpudp as u32
    }

    /// Redundant mode: sends a copy of datagram `d` (whose header is `header`) on every
    /// other path of the tunnel that is not down, with that path's header: the same
    /// per-peer sequence number, the path's next number. The receiver's FEC window
    /// delivers whichever comes first and drops the rest as duplicates. With the FEC lock
    /// held and softirqs off.
    fn send_copies(
        &self,
        fec: &mut FecSender,
        net: NetId,
        d: &Built<'_>,
        header: DataHeader,
        config: &SendConfig,
    ) {
        let Some(body) = fec.wire.get_mut(seq::HEADER_LEN..seq::HEADER_LEN + d.len) else {
            self.fec_sent.uncoded.add(1u64, Relaxed);
            return;
        };
        if d.copy_payload(body).is_err() {
            self.fec_sent.copy_errors.add(1u64, Relaxed);
            return;
        }
        let tunnel = self.tunnel_of(config);
        let sent_us = (ffi::now_ns() / 1000) as u32;
        let wire = fec
            .wire
            .get_mut(..seq::HEADER_LEN + d.len)
            .unwrap_or(&mut []);
        for (path, status) in self.prober.paths.iter().enumerate().take(config.paths()) {
            if path == usize::from(d.path) || status.state() == PathState::Down {
                continue;
            }
            let write_header = |path_seq, head: &mut [u8]| {
                let copy = DataHeader {
                    path: path as u8,
                    path_seq,
                    sent_us,
                    ..header
                };
                head.copy_from_slice(&copy.encode());
            };
            // SAFETY: `net` is alive: `stop_fec` clears it (under the FEC lock, held here)
            // before its namespace goes.
            match unsafe { self.send_own(net, &tunnel, path, wire, seq::HEADER_LEN, write_header) }
            {
                Ok(()) => self.fec_sent.copies.add(1u64, Relaxed),
                Err(_) => self.fec_sent.copy_errors.add(1u64, Relaxed),
            }
        }
    }

    /// Sends `wire`, a datagram of this module's own (a repair, a copy) whose first
    /// `header_len` bytes are its header, on path `path` of `tunnel`. `write_header` writes
    /// the header with the path's next sequence number, taken only once the path has a
    /// route: a datagram that cannot go leaves the peer no gap to count as loss.
    ///
    /// # Safety
    ///
    /// The namespace `net` is alive for the duration of the call.
    unsafe fn send_own(
        &self,
        net: NetId,
        tunnel: &Tunnel,
        path: usize,
        wire: &mut [u8],
        header_len: usize,
        write_header: impl FnOnce(u32, &mut [u8]),
    ) -> Result {
        let status = self.prober.paths.get(path).ok_or(EINVAL)?;
        // SAFETY: `net` is alive (the caller's contract).
        let route = unsafe { prober::path_route(net, tunnel, path) }.ok_or(EHOSTUNREACH)?;
        let head = wire.get_mut(..header_len).ok_or(EINVAL)?;
        write_header(status.next_path_seq.fetch_add(1u32, Relaxed), head);
        // SAFETY: As above.
        unsafe { udp_hooks::xmit(net, route.from, route.to, route.oif, wire) }
    }

    /// From the FEC timer (softirq): sends the open group's repairs if it is full or has
    /// been open for the flush time; otherwise sets the timer for when it will have.
    fn fec_timer_fired(&self) {
        // SAFETY: The timer fires in softirq context.
        let Some(mut guard) = (unsafe { self.fec.lock_in_softirq() }) else {
            return;
        };
        let fec = &mut *guard;
        let Some(net) = fec.net else {
            return;
        };
        let now = ffi::now_ns();
        if fec.full || fec.encoder.due(now, fec::GROUP_FLUSH_NS) {
            let config = self.config();
            self.send_repairs(fec, net, &config);
        } else if let Some(opened) = fec.encoder.opened_ns() {
            self.fec_timer.start_at(opened + fec::GROUP_FLUSH_NS, 0);
        }
    }

    /// Sends the open group's repairs and closes it. Repair `j` goes on the `j`-th path in
    /// order of fewest of the group's datagrams (a burst of loss on one path then takes
    /// fewer of them with it), among the tunnel's paths that are not down; each takes its
    /// path's next sequence number, as a data datagram does. With the FEC lock held and
    /// softirqs off.
    fn send_repairs(&self, fec: &mut FecSender, net: NetId, config: &SendConfig) {
        let Some(group) = fec.encoder.group() else {
            fec.drop_group();
            return;
        };
        let tunnel = self.tunnel_of(config);
        let paths = config.paths().min(MAX_PATHS);
        let usable_path = |i: usize| {
            self.prober
                .paths
                .get(i)
                .is_some_and(|p| p.state() != PathState::Down)
        };
        // By selection, fewest of the group's datagrams first, then by index: at most
        // MAX_PATHS² steps, and no panic path (the slice sorts' order check has one).
        let mut order = [0usize; MAX_PATHS];
        let mut taken = [false; MAX_PATHS];
        let mut usable = 0;
        for slot in order.iter_mut() {
            let next = (0..paths)
                .filter(|&i| usable_path(i) && !taken.get(i).copied().unwrap_or(true))
                .min_by_key(|&i| (fec.group_paths.get(i).copied().unwrap_or(0), i));
            let Some(i) = next else {
                break;
            };
            if let Some(t) = taken.get_mut(i) {
                *t = true;
            }
            *slot = i;
            usable += 1;
        }
        let order = order.get(..usable).unwrap_or(&[]);
        let token = self.token.load(Relaxed);
        let len = group.symbol_len;
        // `auto` sends what this group's size needs at the measured loss (a group that the
        // flush closed early needs fewer than a full one); a fixed ratio, all it has.
        let count = match config.fec {
            Fec::Auto => group.repairs.min(fec::auto_repairs(
                group.covered.count_ones(),
                self.fec_auto_loss_ppm.load(Relaxed),
                self.fec_auto_target_ppb.load(Relaxed),
            )),
            _ => group.repairs,
        };
        for j in 0..count {
            let Some(&path) = order.get(usize::from(j) % usable.max(1)) else {
                self.fec_sent.repair_errors.add(1u64, Relaxed);
                continue;
            };
            let Some(wire) = fec.wire.get_mut(..REPAIR_HEADER_LEN + len) else {
                continue;
            };
            let symbol = fec.encoder.repair(usize::from(j));
            if let Some(body) = wire.get_mut(REPAIR_HEADER_LEN..) {
                body.copy_from_slice(symbol.get(..len).unwrap_or(&[]));
            }
            let write_header = |path_seq, head: &mut [u8]| {
                let header = RepairHeader {
                    path: path as u8,
                    token,
                    path_seq,
                    first: group.first,
                    covered: group.covered,
                    repairs: group.repairs,
                    index: j,
                };
                head.copy_from_slice(&header.encode());
            };
            // SAFETY: `net` is alive: `stop_fec` clears it (under the FEC lock, held here)
            // before its namespace goes.
            match unsafe {
                self.send_own(net, &tunnel, path, wire, REPAIR_HEADER_LEN, write_header)
            } {
                Ok(()) => self.fec_sent.repairs.add(1u64, Relaxed),
                Err(_) => self.fec_sent.repair_errors.add(1u64, Relaxed),
            }
        }
        self.fec_sent.groups.add(1u64, Relaxed);
        fec.drop_group();
    }

    /// After each probe round: the path-aware schedulers' steps.
    fn schedule(&self) {
        // Both take their steps whichever is selected, so that selecting one applies its
        // current shares at once.
        self.rtt_step();
        let paths = self.config().paths();
        self.rate_step(paths);
        self.fec_auto_step(paths);
    }

    /// `auto`'s reading after each probe round: the tunnel's loss over the round's
    /// datagrams; the residual it aims for, from the base round trip and capacity of the
    /// paths that carried them (`fec::auto_target_ppb`); and the repairs a full group needs. A
    /// round that sent nothing on a path with a loss reading keeps the last reading.
    /// Bounded: one residual per repair count (`fec::auto_repairs`).
    fn fec_auto_step(&self, paths: usize) {
        let mut sent = [(0u64, 0u32); MAX_PATHS];
        // The longest base round trip (min RTT) among the paths used, and their capacity
        // together (0: one of them has no reading). Not srtt: under a bulk transfer it
        // holds the queue the transfer builds itself (up to a second behind netem's 1,000
        // packets), which tightened the target 5-fold for nothing (BENCHMARKS, loss
        // recovery: the same goodput with half the repairs at 10 ms).
        let (mut rtt_us, mut capacity_kbps, mut capacity_known) = (0u64, 0u64, true);
        for (((slot, counters), mark), status) in sent
            .iter_mut()
            .zip(&self.paths)
            .zip(&self.fec_auto_marks)
            .zip(&self.prober.paths)
            .take(paths)
        {
            let now = counters.datagrams.load(Relaxed);
            let sent = now.wrapping_sub(mark.load(Relaxed));
            mark.store(now, Relaxed);
            // A path the peer has no reading of (none yet, or idle for the whole window)
            // says nothing: counted as loss-free, it would turn repairs off at the start of
            // every stream that follows a pause.
            let loss = status.data_loss_ppm.load(Relaxed);
            if loss != control::LOSS_UNKNOWN {
                *slot = (sent, loss);
            }
            if sent > 0 {
                rtt_us = rtt_us.max(status.min_rtt_us.load(Relaxed));
                let capacity = status.capacity_kbps.load(Relaxed);
                capacity_known &= capacity != 0;
                capacity_kbps = capacity_kbps.saturating_add(capacity.into());
            }
        }
        let Some(loss) = fec::mixed_loss_ppm(sent.get(..paths).unwrap_or(&[])) else {
            return;
        };
        let target = fec::auto_target_ppb(rtt_us, if capacity_known { capacity_kbps } else { 0 });
        self.fec_auto_loss_ppm.store(loss, Relaxed);
        self.fec_auto_target_ppb.store(target, Relaxed);
        self.fec_auto_repairs.store(
            fec::auto_repairs(fec::AUTO_SPAN.into(), loss, target).into(),
            Relaxed,
        );
    }

    /// What loss recovery does now, for `fec_active`: off (also while the peer does not
    /// take repairs, or `auto` measures no loss to repair), the ratio in use, or
    /// redundant.
    fn fec_active(&self, config: &SendConfig) -> Fec {
        if !self.peer_takes_repairs() {
            return Fec::Off;
        }
        match config.fec {
            // At most 8: `auto_repairs`.
            Fec::Auto => match self.fec_auto_repairs.load(Relaxed) as u8 {
                0 => Fec::Off,
                repairs => Fec::Ratio {
                    data: fec::AUTO_SPAN,
                    repairs,
                },
            },
            other => other,
        }
    }

    /// The `rate` scheduler: new weights from the tunnel's first `paths` paths' capacity,
    /// loss and delay readings and the load, published with a new generation when they
    /// change.
    fn rate_step(&self, paths: usize) {
        self.measure_round_load(paths, ffi::now_ns());
        let mut readings = [PathReading {
            capacity_kbps: None,
            loss_ppm: 0,
            queue_us: 0,
            min_rtt_us: 0,
        }; MAX_PATHS];
        for (reading, path) in readings.iter_mut().zip(&self.prober.paths).take(paths) {
            let capacity = path.capacity_kbps.load(Relaxed);
            reading.capacity_kbps = (capacity != 0).then_some(capacity);
            reading.loss_ppm = path.loss_ppm.load(Relaxed);
            let min_rtt = path.min_rtt_us.load(Relaxed);
            if min_rtt != 0 {
                reading.queue_us = path.srtt_us.load(Relaxed).saturating_sub(min_rtt);
            }
            reading.min_rtt_us = min_rtt;
        }
        let readings = readings.get(..paths).unwrap_or(&[]);
        let Some(weights) = rate_sched::weights(readings) else {
            return;
        };
        let weights = rate_sched::prefer_low_delay(weights, readings, self.offered_kbps(paths));
        let unchanged = self.rate_generation.load(Relaxed) != 0
            && weights
                .iter()
                .zip(&self.rate_weights)
                .all(|(&w, now)| now.load(Relaxed) == w);
        if unchanged {
            return;
        }
        for (&weight, slot) in weights.iter().zip(&self.rate_weights) {
            slot.store(weight, Relaxed);
        }
        // Release: whoever reads the new generation reads these weights. 0 means "none yet".
        let next = self.rate_generation.load(Relaxed).wrapping_add(1).max(1);
        self.rate_generation.store(next, Release);
    }

    /// One step of the `rtt` scheduler, while both paths answer.
    fn rtt_step(&self) {
        let [p, s, ..] = &self.prober.paths;
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
            name: c"fec",
            writable: true,
        },
        File {
            name: c"peer_fec",
            writable: false,
        },
        File {
            name: c"fec_active",
            writable: false,
        },
        File {
            name: c"fec_loss_ppm",
            writable: false,
        },
        File {
            name: c"fec_target_ppm",
            writable: false,
        },
        File {
            name: c"tx_fec_copies",
            writable: false,
        },
        File {
            name: c"tx_fec_copy_errors",
            writable: false,
        },
        File {
            name: c"tx_fec_groups",
            writable: false,
        },
        File {
            name: c"tx_fec_repairs",
            writable: false,
        },
        File {
            name: c"tx_fec_repair_errors",
            writable: false,
        },
        File {
            name: c"tx_fec_uncoded",
            writable: false,
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
        File {
            name: c"peer_closings",
            writable: false,
        },
        File {
            name: c"offered_kbps",
            writable: false,
        },
    ],
);

/// The read-only files of each path's directory in `paths/`.
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
        name: c"min_rtt_us",
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
        name: c"capacity_kbps",
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

/// A directory per path, by path index: the primary path, then one per `secondary`
/// interface (the first keeps the name `secondary`).
static PATH_GROUPS: [SysfsGroup; MAX_PATHS] = [
    SysfsGroup::new(Some(c"primary"), PATH_FILES),
    SysfsGroup::new(Some(c"secondary"), PATH_FILES),
    SysfsGroup::new(Some(c"path2"), PATH_FILES),
    SysfsGroup::new(Some(c"path3"), PATH_FILES),
    SysfsGroup::new(Some(c"path4"), PATH_FILES),
    SysfsGroup::new(Some(c"path5"), PATH_FILES),
    SysfsGroup::new(Some(c"path6"), PATH_FILES),
    SysfsGroup::new(Some(c"path7"), PATH_FILES),
];

/// The files of path `I` (below [`MAX_PATHS`]).
struct PathFiles<const I: usize>;

impl<const I: usize> SysfsFiles for PathFiles<I> {
    fn show(name: &CStr, out: &mut PageWriter<'_>) -> Result {
        use core::fmt::Write;
        // SAFETY: A sysfs callback of a task in the namespace; the files go before the states.
        let ns = unsafe { NAMESPACES.view(NetId::current()?) };
        let path = &ns.prober.paths[I];
        let counters = &ns.paths[I];
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
            b"min_rtt_us" => path.min_rtt_us.load(Relaxed),
            b"loss_ppm" => path.loss_ppm.load(Relaxed).into(),
            b"share_permille" => ns.shares(&ns.share_inputs(&ns.config())).0[I].into(),
            b"capacity_kbps" => path.capacity_kbps.load(Relaxed).into(),
            b"tx_datagrams" => counters.datagrams.load(Relaxed),
            b"tx_bytes" => counters.bytes.load(Relaxed),
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
        // SAFETY: A sysfs callback of a task in the namespace; the files go before the states.
        let ns = unsafe { NAMESPACES.view(NetId::current()?) };
        let counter = name.to_bytes().strip_prefix(b"tx_");
        if let Some(value) = counter.and_then(|c| PathCounters::file_value(&ns.paths, c)) {
            return writeln!(out, "{value}").map_err(|_| EINVAL);
        }
        let config = ns.config();
        let written = match name.to_bytes() {
            b"split" => writeln!(out, "{}", config.split),
            b"secondary" => writeln!(out, "{}", config.secondary),
            b"peer" => match config.peer {
                Some(peer) => writeln!(out, "{peer}"),
                None => writeln!(out),
            },
            b"port" => writeln!(out, "{}", config.port),
            b"scheduler" => writeln!(out, "{}", config.scheduler.name()),
            b"fec" => writeln!(out, "{}", config.fec),
            b"peer_fec" => writeln!(
                out,
                "{}",
                u32::from(ns.prober.peer_takes_repairs.load(Relaxed))
            ),
            b"tx_fec_groups" => writeln!(out, "{}", ns.fec_sent.groups.load(Relaxed)),
            b"tx_fec_repairs" => writeln!(out, "{}", ns.fec_sent.repairs.load(Relaxed)),
            b"tx_fec_repair_errors" => {
                writeln!(out, "{}", ns.fec_sent.repair_errors.load(Relaxed))
            }
            b"tx_fec_uncoded" => writeln!(out, "{}", ns.fec_sent.uncoded.load(Relaxed)),
            b"fec_active" => writeln!(out, "{}", ns.fec_active(&config)),
            b"fec_loss_ppm" => writeln!(out, "{}", ns.fec_auto_loss_ppm.load(Relaxed)),
            // Shown to three decimals: the target goes down to 10 ppm.
            b"fec_target_ppm" => {
                let ppb = ns.fec_auto_target_ppb.load(Relaxed);
                writeln!(out, "{}.{:03}", ppb / 1000, ppb % 1000)
            }
            b"tx_fec_copies" => writeln!(out, "{}", ns.fec_sent.copies.load(Relaxed)),
            b"tx_fec_copy_errors" => {
                writeln!(out, "{}", ns.fec_sent.copy_errors.load(Relaxed))
            }
            b"probing" => writeln!(out, "{}", u32::from(config.probing)),
            b"probe_interval_ms" => writeln!(out, "{}", ns.prober.interval_ms.load(Relaxed)),
            b"probe_down_after" => writeln!(out, "{}", ns.prober.down_after.load(Relaxed)),
            b"tx_fallback_datagrams" => writeln!(out, "{}", ns.fallback.load(Relaxed)),
            b"sequencing" => writeln!(out, "{}", u32::from(config.sequencing)),
            b"peer_kind" => writeln!(
                out,
                "{}",
                match ns.prober.peer_kind.load(Relaxed) {
                    k if k == PeerKind::Mpudp as u32 => "mpudp",
                    k if k == PeerKind::Plain as u32 => "plain",
                    _ => "unknown",
                }
            ),
            b"tx_sequenced_datagrams" => writeln!(out, "{}", ns.sequenced.load(Relaxed)),
            b"tx_unsequenced_no_room" => {
                writeln!(out, "{}", ns.unsequenced_no_room.load(Relaxed))
            }
            b"probe_replies_ignored" => {
                writeln!(out, "{}", ns.prober.replies_ignored.load(Relaxed))
            }
            b"peer_closings" => writeln!(out, "{}", ns.prober.peer_closings.load(Relaxed)),
            b"offered_kbps" => writeln!(out, "{}", ns.offered_kbps(config.paths())),
            _ => return Err(ENOENT),
        };
        written.map_err(|_| EINVAL)
    }

    fn store(name: &CStr, input: &[u8]) -> Result {
        let path = name.to_str().unwrap_or("?");
        let net = NetId::current()?;
        let lock = ffi::config_lock();
        // SAFETY: A sysfs callback of a task in `net`; the files go before the states.
        let claim = || unsafe { NAMESPACES.claim(net, &lock) };
        // Publishes a new version of the writer's configuration (`ENOMEM` keeps the old one).
        let configure = |change: &dyn Fn(&mut SendConfig)| {
            let ns = claim()?;
            ns.config.update(&lock, change)?;
            Ok::<_, Error>(ns)
        };
        match name.to_bytes() {
            b"split" => {
                let split = parse::parse_u32(input, SPLIT_MAX)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                configure(&|c| c.split = split)?;
            }
            b"secondary" => {
                let names =
                    parse::parse_ifnames(input).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let mut ifindex = [0; MAX_EXTRA_PATHS];
                for (index, name) in ifindex.iter_mut().zip(names.names()) {
                    // SAFETY: `net` is the writing task's namespace, alive while it writes.
                    let Some(found) = (unsafe { net.ifindex(name) }) else {
                        if REJECT_LOG.allow() {
                            pr_warn!(
                                "secondary: no interface {} in this namespace\n",
                                name.as_str()
                            );
                        }
                        return Err(ENODEV);
                    };
                    *index = found;
                }
                configure(&|c| {
                    c.secondary_ifindex = ifindex;
                    c.secondary = names;
                })?;
            }
            b"peer" => {
                let peer =
                    parse::parse_peer(input).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                configure(&|c| c.peer = peer)?;
            }
            b"port" => {
                let port = parse::parse_u32(input, u16::MAX.into())
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = configure(&|c| c.port = port)?;
                // The tunnel's ports are learned again from its next datagram.
                ns.tunnel_ports.store(0, Relaxed);
            }
            b"fec" => {
                let fec = parse::parse_fec(input, fec::MAX_SPAN as u8, fec::MAX_REPAIRS as u8)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                configure(&|c| c.fec = fec)?;
            }
            b"scheduler" => {
                let scheduler =
                    parse::parse_scheduler(input).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                configure(&|c| c.scheduler = scheduler)?;
            }
            b"probing" => {
                let on =
                    parse::parse_u32(input, 1).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = configure(&|c| c.probing = on == 1)?;
                // Writing 1 again restarts the measurements.
                if on == 1 {
                    ns.start_probing(net, ns.config().peer);
                } else {
                    ns.prober.stop();
                    ns.stop_fec();
                }
            }
            b"probe_interval_ms" => {
                let (_, min, max) = PROBE_INTERVAL_MS;
                let ms = parse::parse_in_range(input, min, max)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                claim()?.prober.interval_ms.store(ms, Relaxed);
            }
            b"sequencing" => {
                let on =
                    parse::parse_u32(input, 1).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                configure(&|c| c.sequencing = on == 1)?;
            }
            b"probe_down_after" => {
                let (_, min, max) = PROBE_DOWN_AFTER;
                let count = parse::parse_in_range(input, min, max)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                claim()?.prober.down_after.store(count, Relaxed);
            }
            _ => return Err(EACCES),
        }
        Ok(())
    }
}

static SEND_OPS: SendOps = SendOps::new::<Policy>();
static NETDEV: ffi::NetdevNotifier = ffi::NetdevNotifier::new();

/// Stops every prober and loss recovery's timer when dropped (module unload, after the files
/// are gone, so that no write starts one again).
struct StopProbers;

impl Drop for StopProbers {
    fn drop(&mut self) {
        let config = ffi::config_lock();
        NAMESPACES.for_each(&config, |_, ns| {
            ns.prober.stop();
            ns.stop_fec();
        });
    }
}

struct MpudpSend {
    // Dropped in this order: the send hook first, so no datagram is steered while the rest
    // goes; the files before the probers, so that no write starts one again; the receive
    // hook after the probers, so that answers still on their way are taken off the wire
    // (and ignored) rather than handed to the tunnel's socket; the namespace states last,
    // once nothing reaches them (their slots are freed with the registration).
    _hook: udp_hooks::SendHookRegistration,
    _files: ffi::SysfsRegistration,
    _path_files: [ffi::SysfsRegistration; MAX_PATHS],
    _paths_dir: ffi::SysfsDir,
    _probers: StopProbers,
    _recv_hook: udp_hooks::RecvHookRegistration<Policy>,
    _netdev: ffi::NetdevRegistration,
    _states: netns::NetnsRegistration<SendState>,
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
        ffi::init_config_lock();
        // With the `split` just set as every namespace's default.
        let states = NAMESPACES.register::<Policy>()?;
        let netdev = NETDEV.register::<Policy>()?;
        let probers = StopProbers;
        let paths_dir = ffi::SysfsDir::create(c"paths")?;
        let path_files = [
            PATH_GROUPS[0].register_in::<PathFiles<0>>(&paths_dir)?,
            PATH_GROUPS[1].register_in::<PathFiles<1>>(&paths_dir)?,
            PATH_GROUPS[2].register_in::<PathFiles<2>>(&paths_dir)?,
            PATH_GROUPS[3].register_in::<PathFiles<3>>(&paths_dir)?,
            PATH_GROUPS[4].register_in::<PathFiles<4>>(&paths_dir)?,
            PATH_GROUPS[5].register_in::<PathFiles<5>>(&paths_dir)?,
            PATH_GROUPS[6].register_in::<PathFiles<6>>(&paths_dir)?,
            PATH_GROUPS[7].register_in::<PathFiles<7>>(&paths_dir)?,
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
            _states: states,
        })
    }
}
