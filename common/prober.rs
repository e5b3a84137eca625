// SPDX-License-Identifier: GPL-2.0

//! The sender's path prober: a probe on every path each probe interval, in the tunnel's own
//! 5-tuple, from a soft hrtimer; the peer's answers taken in (RTT from this host's own send
//! record, probe loss, the peer's data loss, delivered rate and capacity reading, the peer's
//! capability); the failover rule. What it learns is published per path ([`PathStatus`]) for
//! the datagram path and sysfs, which only read it.
//!
//! The rules themselves are pure and host-tested: `common/probe.rs` (RTT, loss window,
//! failover, rates) and `common/control.rs` (wire format, capability). This file is their
//! kernel side: the lock, the timer, the sending.

use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::LockClassKey;

use crate::control::{self, Capability, Control, PeerKind, Probe, Reply, PROBE_LEN};
use crate::ffi::{self, NetId, SoftTimer, SoftirqLock, TimerOwner};
use crate::parse::{Ipv4, Peer};
use crate::probe::{self, LossWindow, MinRtt, PathState, RttEstimator, PRIMARY};
use crate::seq::MAX_PATHS;
use crate::udp_hooks;

/// Default and bounds of `probe_interval_ms`.
pub(crate) const PROBE_INTERVAL_MS: (u32, u32, u32) = (100, 10, 10_000);
/// Default and bounds of `probe_down_after` (unanswered probe intervals before failover).
pub(crate) const PROBE_DOWN_AFTER: (u32, u32, u32) = (3, 1, 100);

/// Path names for the kernel log, by path index: their directories in `paths/`.
const PATH_NAMES: [&str; MAX_PATHS] = [
    "primary",
    "secondary",
    "path2",
    "path3",
    "path4",
    "path5",
    "path6",
    "path7",
];

/// Rates are measured over at least this long, so that one probe interval's jitter and the
/// paths' one-way delay (the two ends count at different moments) do not dominate them.
const RATE_WINDOW_NS: u64 = 500_000_000;
/// How much later than asked a probe round may run, so that the kernel can batch timers.
const PROBE_SLACK_NS: u64 = 1_000_000;

/// What the sender knows about one path, published by the prober for the datagram path and
/// sysfs (all zero/unknown while probing is off).
pub(crate) struct PathStatus {
    /// [`PathState`] as `u32`.
    pub(crate) state: Atomic<u32>,
    pub(crate) srtt_us: Atomic<u64>,
    pub(crate) rttvar_us: Atomic<u64>,
    /// The smallest RTT sample of the last 5 to 10 s ([`MinRtt`]); 0 before the first.
    pub(crate) min_rtt_us: Atomic<u64>,
    /// The loss the scheduler uses: `data_loss_ppm` while the peer reports one, else
    /// `probe_loss_ppm`.
    pub(crate) loss_ppm: Atomic<u32>,
    /// The share of unanswered probes.
    pub(crate) probe_loss_ppm: Atomic<u32>,
    /// The peer's loss reading from gaps in the data sequence; [`control::LOSS_UNKNOWN`] when
    /// it has none (datagrams not sequenced, or too few yet).
    pub(crate) data_loss_ppm: Atomic<u32>,
    /// The next per-path sequence number (the datagram path's; kept with the path).
    pub(crate) next_path_seq: Atomic<u32>,
    /// What the peer reports receiving on this path, kbit/s.
    pub(crate) delivered_kbps: Atomic<u64>,
    /// What this host sent on the path over the same time, kbit/s.
    pub(crate) sent_kbps: Atomic<u64>,
    /// The path's capacity as the peer measures it from the data (`capacity.rs`), kbit/s:
    /// its latest reading, kept while it reports none (0: never read).
    pub(crate) capacity_kbps: Atomic<u32>,
    /// The peer's data counters for this path, from its latest answer.
    pub(crate) peer_rx_datagrams: Atomic<u64>,
    pub(crate) peer_rx_bytes: Atomic<u64>,
    pub(crate) probes_sent: Atomic<u64>,
    pub(crate) probes_answered: Atomic<u64>,
    pub(crate) down_events: Atomic<u64>,
    pub(crate) up_events: Atomic<u64>,
}

impl PathStatus {
    const fn new() -> Self {
        Self {
            state: Atomic::new(PathState::Unknown as u32),
            srtt_us: Atomic::new(0),
            rttvar_us: Atomic::new(0),
            min_rtt_us: Atomic::new(0),
            loss_ppm: Atomic::new(0),
            probe_loss_ppm: Atomic::new(0),
            data_loss_ppm: Atomic::new(control::LOSS_UNKNOWN),
            next_path_seq: Atomic::new(0),
            delivered_kbps: Atomic::new(0),
            sent_kbps: Atomic::new(0),
            capacity_kbps: Atomic::new(0),
            peer_rx_datagrams: Atomic::new(0),
            peer_rx_bytes: Atomic::new(0),
            probes_sent: Atomic::new(0),
            probes_answered: Atomic::new(0),
            down_events: Atomic::new(0),
            up_events: Atomic::new(0),
        }
    }

    pub(crate) fn state(&self) -> PathState {
        PathState::from_u32(self.state.load(Relaxed))
    }

    /// Forgets the measurements (probing stopped); the event counters only grow.
    fn forget(&self) {
        self.state.store(PathState::Unknown as u32, Relaxed);
        self.srtt_us.store(0, Relaxed);
        self.rttvar_us.store(0, Relaxed);
        self.min_rtt_us.store(0, Relaxed);
        self.loss_ppm.store(0, Relaxed);
        self.probe_loss_ppm.store(0, Relaxed);
        self.data_loss_ppm.store(control::LOSS_UNKNOWN, Relaxed);
        self.delivered_kbps.store(0, Relaxed);
        self.sent_kbps.store(0, Relaxed);
        self.capacity_kbps.store(0, Relaxed);
    }
}

/// Where the probes of one round go: the tunnel's configuration as the prober reads it.
pub(crate) struct Tunnel {
    pub(crate) peer: Option<Peer>,
    /// The tunnel's UDP port; 0 when unset.
    pub(crate) port: u32,
    /// The tunnel's ports as its latest in-scope datagram used them, local in the high half;
    /// 0 until one was sent.
    pub(crate) ports: u32,
    /// How many paths the tunnel has; the prober probes and judges these.
    pub(crate) paths: usize,
    /// Each path's interface, by path index: 0 for the primary path (routing picks it), and
    /// 0 for another path while it has none (it is then not probed).
    pub(crate) ifindex: [i32; MAX_PATHS],
    /// This namespace's session token.
    pub(crate) token: u32,
    /// The per-peer sequence number its next sequenced datagram takes.
    pub(crate) next_seq: u32,
}

/// The prober's private bookkeeping for one path.
struct PathBook {
    rtt: RttEstimator,
    min_rtt: MinRtt,
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
            min_rtt: MinRtt::new(),
            window: LossWindow::new(),
            answered_ns: None,
            rate_mark: None,
        }
    }

    /// Back to [`PathBook::new`], in place: the loss window is too large for a temporary on
    /// the stack of every caller.
    fn reset(&mut self) {
        self.rtt = RttEstimator::default();
        self.min_rtt = MinRtt::new();
        self.window.clear();
        self.answered_ns = None;
        self.rate_mark = None;
    }
}

/// What the prober keeps between its rounds and the answers.
struct ProbeBooks {
    /// The namespace probed; `None` while probing is off (the timer then stops re-arming).
    net: Option<NetId>,
    paths: [PathBook; MAX_PATHS],
    capability: Capability,
    /// When probing started: a path never answered has been silent since then.
    started_ns: u64,
    /// The peer the capability was learned for: another peer must prove it again.
    peer: Option<Peer>,
}

impl ProbeBooks {
    const IDLE: Self = Self {
        net: None,
        paths: [const { PathBook::new() }; MAX_PATHS],
        capability: Capability::new(),
        started_ns: 0,
        peer: None,
    };

    /// Fresh measurements, probing `net` from `now_ns` for `peer`.
    fn reset(&mut self, net: NetId, now_ns: u64, peer: Option<Peer>) {
        for path in &mut self.paths {
            path.reset();
        }
        self.net = Some(net);
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

/// Where a datagram of the module's own goes on one path: from and to (address and port;
/// a source of 0 lets routing pick), out of `oif` (0: routing picks).
pub(crate) struct PathRoute {
    pub(crate) from: (Ipv4, u16),
    pub(crate) to: (Ipv4, u16),
    pub(crate) oif: i32,
}

/// Where a datagram of the module's own (a probe, a repair) goes on path `i` of `tunnel`:
/// in the tunnel's 5-tuple as its latest datagram used it (until the tunnel has sent, from
/// and to the tunnel port), to the peer's address for that path; on a path other than the
/// primary, from that path's interface and its address, and only while it is usable. `None`
/// without a peer or tunnel port.
///
/// # Safety
///
/// The namespace `net` is alive for the duration of the call.
pub(crate) unsafe fn path_route(net: NetId, tunnel: &Tunnel, i: usize) -> Option<PathRoute> {
    let port = u16::try_from(tunnel.port).unwrap_or(0);
    let peer = tunnel.peer.filter(|_| port != 0)?;
    let (local_port, remote_port) = match tunnel.ports {
        0 => (port, port),
        ports => ((ports >> 16) as u16, ports as u16),
    };
    let to = peer.addr(i);
    let (from, oif) = if i == PRIMARY {
        // Routing picks the source, as for the tunnel's own primary-path datagrams.
        (Ipv4(0), 0)
    } else {
        let ifindex = tunnel
            .ifindex
            .get(i)
            .copied()
            .filter(|&ifindex| ifindex != 0)?;
        // SAFETY: The namespace is alive (the caller's contract).
        let source = unsafe { net.usable_source(ifindex, to) }?;
        (source, ifindex)
    };
    Some(PathRoute {
        from: (from, local_port),
        to: (to, remote_port),
        oif,
    })
}

/// One namespace's prober: its knobs, what it publishes, its timer and its books.
pub(crate) struct Prober {
    /// By path index, [`PRIMARY`] first; those beyond the tunnel's paths stay unknown.
    pub(crate) paths: [PathStatus; MAX_PATHS],
    pub(crate) interval_ms: Atomic<u32>,
    pub(crate) down_after: Atomic<u32>,
    /// [`PeerKind`] as `u32`: datagrams get the sequencing header only while it is
    /// [`PeerKind::Mpudp`].
    pub(crate) peer_kind: Atomic<u32>,
    /// Whether the peer's latest answer said it takes repair datagrams (`recv/fec` 1): loss
    /// recovery codes only while it does.
    pub(crate) peer_takes_repairs: Atomic<bool>,
    /// Answers taken off the wire that matched no probe of this session (late beyond the
    /// loss window, answered twice, an earlier session's, or a bad checksum).
    pub(crate) replies_ignored: Atomic<u64>,
    /// Closing messages of this session taken in (the peer stopped its responder).
    pub(crate) peer_closings: Atomic<u64>,
    /// Fires every probe interval while probing is on; its owner's [`TimerOwner::fired`]
    /// calls [`Prober::round`].
    pub(crate) timer: SoftTimer,
    /// Shared by the timer's rounds and the receive hook (answers).
    books: SoftirqLock<ProbeBooks>,
}

impl Prober {
    pub(crate) const fn new() -> Self {
        Self {
            paths: [const { PathStatus::new() }; MAX_PATHS],
            interval_ms: Atomic::new(PROBE_INTERVAL_MS.0),
            down_after: Atomic::new(PROBE_DOWN_AFTER.0),
            peer_kind: Atomic::new(PeerKind::Unknown as u32),
            peer_takes_repairs: Atomic::new(false),
            replies_ignored: Atomic::new(0),
            peer_closings: Atomic::new(0),
            timer: SoftTimer::new(),
            books: SoftirqLock::new(ProbeBooks::IDLE),
        }
    }

    /// Sets up the lock and the timer.
    ///
    /// # Safety
    ///
    /// `self` is the prober of a `T` that never moves again, at the offset `T::TIMER_OFFSET`
    /// gives for its timer. Called once, before anything can reach the prober, and the owner
    /// stops it ([`Prober::stop`]) before it is freed.
    pub(crate) unsafe fn init<T: TimerOwner>(&self, key: Pin<&'static LockClassKey>) {
        // SAFETY: The caller's contract: once, before use, in a `T` that never moves.
        unsafe {
            self.books.init(c"mpudp_prober", key);
            self.timer.setup::<T>();
        }
    }

    /// Starts probing `net` for `peer` afresh: fresh measurements, the first round at
    /// once. Process context, configuration lock held.
    pub(crate) fn start(&self, net: NetId, peer: Option<Peer>) {
        self.stop();
        let now = ffi::now_ns();
        if let Some(mut books) = self.books.lock_irq() {
            books.reset(net, now, peer);
        }
        self.timer.start_at(now, 0);
    }

    /// Stops probing and waits for a running round; without answers the peer may be gone, so
    /// the header stops and the paths' measurements are forgotten (back to the fixed split).
    /// Process context.
    pub(crate) fn stop(&self) {
        if let Some(mut books) = self.books.lock_irq() {
            books.net = None;
        }
        // A round that started before `net` was cleared may have re-armed the timer: the
        // cancel undoes that too, and no later round can re-arm it.
        self.timer.cancel();
        self.peer_kind.store(PeerKind::Unknown as u32, Relaxed);
        self.peer_takes_repairs.store(false, Relaxed);
        for path in &self.paths {
            path.forget();
        }
    }

    /// One probe round, from the timer (softirq): the failover rule, a probe on each path;
    /// the timer is set for the next round. `tunnel` reads where the probes go (once per
    /// round). Returns whether probing is on (the caller's scheduler then takes its step).
    pub(crate) fn round(&self, tunnel: impl FnOnce() -> Tunnel) -> bool {
        let now = ffi::now_ns();
        // One reading of the configuration for the whole round.
        let tunnel = tunnel();
        {
            // SAFETY: Soft hrtimers fire in softirq context.
            let Some(mut books) = (unsafe { self.books.lock_in_softirq() }) else {
                return false;
            };
            if books.net.is_none() {
                return false;
            }
            let interval_ms = self.interval_ms.load(Relaxed);
            self.timer
                .start_at(now + u64::from(interval_ms) * 1_000_000, PROBE_SLACK_NS);
            let Tunnel { peer, paths, .. } = tunnel;
            if peer != books.peer {
                books.peer = peer;
                books.capability = Capability::new();
            }
            books.capability.tick(now);
            self.judge(&mut books, now, interval_ms, paths);
            self.peer_kind.store(books.capability.kind as u32, Relaxed);
            // A peer taken for plain gets probes (in its application's port) only every
            // `Capability::RETRY_NS`.
            if !books.capability.should_probe(now) {
                return true;
            }
            books.capability.probe_sent(now);
        }
        for path in 0..MAX_PATHS {
            // Each probe's send time is taken just before it goes, so that neither the round's
            // bookkeeping nor the other probe's sending enters its RTT.
            let (net, probe) = {
                // SAFETY: As above.
                let Some(mut books) = (unsafe { self.books.lock_in_softirq() }) else {
                    return true;
                };
                // Probing stopped since the lock was last held: nothing more goes out.
                let Some(net) = books.net else {
                    return false;
                };
                if path >= tunnel.paths {
                    return true;
                }
                // SAFETY: The namespace is alive while its prober's timer runs: its exit
                // stops the prober (`Prober::stop`, which waits for this round) first.
                (net, unsafe {
                    self.prepare_probe(&mut books, net, &tunnel, path, ffi::now_ns())
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
        true
    }

    /// Records a probe on path `i` as sent at `now` and returns it, if it can leave: on a
    /// path other than the primary only while its interface is usable, none without a peer
    /// or tunnel port.
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
        tunnel: &Tunnel,
        i: usize,
        now: u64,
    ) -> Option<OutgoingProbe> {
        let book = books.paths.get_mut(i)?;
        let seq = book.window.sent(now);
        self.paths[i].probes_sent.add(1u64, Relaxed);
        // SAFETY: The namespace is alive (the caller's contract).
        let route = unsafe { path_route(net, tunnel, i) }?;
        let peer = tunnel.peer?;
        let mut wire = [0u8; PROBE_LEN];
        Control::Probe(Probe {
            path: i as u8,
            token: tunnel.token,
            seq,
            sent_ns: now,
            primary_addr: peer.addr(PRIMARY).0.to_ne_bytes(),
            next_seq: tunnel.next_seq,
        })
        .encode(&mut wire);
        Some(OutgoingProbe {
            from: route.from,
            to: route.to,
            oif: route.oif,
            wire,
        })
    }

    /// Takes in `reply`, which arrived at `now` from the peer's address on its path, in the
    /// receive hook (softirq); `token` is this namespace's session token and `tx_bytes` what
    /// it has sent on the reply's path. Returns whether it answered a probe of this session
    /// still in the loss window (once); the caller counts the others as ignored.
    pub(crate) fn take_reply(&self, reply: &Reply, now: u64, token: u32, tx_bytes: u64) -> bool {
        // SAFETY: The receive hook runs in softirq context.
        let Some(mut books) = (unsafe { self.books.lock_in_softirq() }) else {
            return false;
        };
        if books.net.is_none() || reply.token != token {
            return false;
        }
        let i = usize::from(reply.path);
        let ProbeBooks {
            paths, capability, ..
        } = &mut *books;
        let (Some(status), Some(book)) = (self.paths.get(i), paths.get_mut(i)) else {
            return false;
        };
        let Some(sent_ns) = book.window.answered(reply.seq) else {
            return false;
        };
        if !capability.answered(sent_ns, now) {
            return false;
        }
        self.peer_kind.store(capability.kind as u32, Relaxed);
        self.peer_takes_repairs.store(reply.takes_repairs, Relaxed);
        if let Some(sample) = probe::rtt_sample_us(sent_ns, now) {
            book.rtt.sample(sample);
            book.min_rtt.sample(sample, now);
            status.srtt_us.store(book.rtt.srtt_us, Relaxed);
            status.rttvar_us.store(book.rtt.rttvar_us, Relaxed);
            status.min_rtt_us.store(book.min_rtt.min_us(), Relaxed);
        }
        book.answered_ns = Some(now);
        status.probes_answered.add(1u64, Relaxed);
        status
            .peer_rx_datagrams
            .store(u64::from(reply.rx_datagrams), Relaxed);
        // A path without bursts long enough to measure keeps its last reading: forgetting it
        // would hand the path the others' mean, and the next bursts would take it back.
        if reply.capacity_kbps != 0 {
            status.capacity_kbps.store(reply.capacity_kbps, Relaxed);
        }
        status.peer_rx_bytes.store(reply.rx_bytes, Relaxed);
        status.data_loss_ppm.store(reply.loss_ppm, Relaxed);
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

    /// Takes in the peer's closing message for session `token`, which arrived at `now` from
    /// the peer's address on one of its paths, in the receive hook (softirq); `our_token` is
    /// this namespace's session token. The header stops at once. Returns whether it was this
    /// session's; the caller counts the others as ignored.
    pub(crate) fn take_closing(&self, token: u32, now: u64, our_token: u32) -> bool {
        // SAFETY: The receive hook runs in softirq context.
        let Some(mut books) = (unsafe { self.books.lock_in_softirq() }) else {
            return false;
        };
        if books.net.is_none() || token != our_token {
            return false;
        }
        let was = books.capability.kind;
        books.capability.closing(now);
        self.peer_kind.store(books.capability.kind as u32, Relaxed);
        self.peer_closings.add(1u64, Relaxed);
        // Logged once per transition, so a repeated message cannot flood the log.
        if was == PeerKind::Mpudp {
            pr_info!(
                "peer closed its MPUDP session: datagrams go without the header; asked again in {} s\n",
                Capability::RETRY_NS / 1_000_000_000
            );
        }
        true
    }

    /// Applies the failover rule and refreshes the loss estimates of the tunnel's first
    /// `paths` paths.
    fn judge(&self, books: &mut ProbeBooks, now: u64, interval_ms: u32, paths: usize) {
        let down_after = self.down_after.load(Relaxed);
        let in_use = || self.paths.iter().enumerate().take(paths);
        for ((i, status), book) in in_use().zip(&books.paths) {
            let other_up = in_use().any(|(j, other)| j != i && other.state() == PathState::Up);
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
        // Paths the tunnel no longer has (fewer `secondary` interfaces) are forgotten: sysfs
        // shows them unknown, and one added again starts afresh.
        for (status, book) in self.paths.iter().zip(&mut books.paths).skip(paths) {
            if !book.window.is_empty() || status.state() != PathState::Unknown {
                book.reset();
                status.forget();
            }
        }
    }
}
