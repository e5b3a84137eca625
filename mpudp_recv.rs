// SPDX-License-Identifier: GPL-2.0

//! MPUDP receiver: makes datagrams that arrive over the secondary path look like they came
//! over the primary one, so the tunnel application sees one peer over both paths.
//!
//! Before the socket lookup, a datagram from the peer's alternate address gets the peer's
//! primary address as its source and, once learned, the local address the primary path
//! arrives at as its destination. Connected and dual-stack sockets, encapsulation sockets and
//! `IP_PKTINFO` then see the primary path's addresses. Only datagrams whose source or local
//! port is the configured tunnel port, and whose source is one of the configured peer's two
//! addresses, are touched or counted.
//!
//! With `recv/probe_port` set, a worker thread per namespace answers the peer's path probes
//! (see `common/probe.rs` for the wire format) on the path each arrived on, reporting what
//! this end received from the peer on that path. A probe carries the peer's session token;
//! once it is known, the peer's datagrams that carry the sequencing header with that token
//! (`common/seq.rs`) have it removed before the socket lookup, and each path's loss is
//! measured from the gaps in its sequence numbers and reported in the replies. Those
//! datagrams then go through the peer's reorder buffer (`common/peer_reorder.rs`), which
//! delivers them in the sender's order.

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

#[path = "common/peer_reorder.rs"]
mod peer_reorder;
#[path = "common/reorder.rs"]
mod reorder;

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

use ffi::{
    File, NetExit, NetId, PageWriter, ProbeSocket, SysfsFiles, SysfsGroup, WorkerBody, Workers,
};
use netns::{LogLimit, NetnsTable, NsState, PathCounters};
use parse::{Ipv4, Peer};
use peer_reorder::PeerReorder;
use probe::{Kind, Message, PRIMARY, SECONDARY};
use seq::{DataHeader, GapLoss, HEADER_LEN, MAX_PATHS};
use udp_hooks::{Arriving, RecvHook, Verdict};

module! {
    type: MpudpRecv,
    name: "mpudp_recv",
    authors: ["MPUDP developers"],
    description: "MPUDP: deliver a UDP tunnel's datagrams from both network paths as one peer",
    license: "GPL",
}

/// The receive-side configuration and counters of one network namespace.
struct RecvState {
    /// The peer's addresses, packed by [`Peer::pack`]; 0 when unset.
    peer: Atomic<u64>,
    /// The tunnel's UDP port (source or local); 0 when unset.
    port: Atomic<u32>,
    /// Datagrams from the peer's primary address.
    primary: PathCounters,
    /// Datagrams from the peer's alternate address (delivered as from the primary one).
    secondary: PathCounters,
    /// The local address the peer's primary-path datagrams arrive at (as on the wire); 0
    /// until one has arrived since `peer` was written. Secondary-path datagrams get it as
    /// their destination.
    primary_local: Atomic<u32>,
    /// Secondary-path datagrams delivered unchanged because their headers could not be made
    /// writable (no memory).
    rewrite_errors: Atomic<u64>,
    /// The port this end answers probes on; 0 when off.
    probe_port: Atomic<u32>,
    probes_answered: Atomic<u64>,
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
}

impl NsState for RecvState {
    const FRESH: Self = Self {
        peer: Atomic::new(0),
        port: Atomic::new(0),
        primary: PathCounters::new(),
        secondary: PathCounters::new(),
        primary_local: Atomic::new(0),
        rewrite_errors: Atomic::new(0),
        probe_port: Atomic::new(0),
        probes_answered: Atomic::new(0),
        peer_token: Atomic::new(0),
        highest: [const { Atomic::new(0) }; MAX_PATHS],
        received: [const { Atomic::new(0) }; MAX_PATHS],
        sequenced: Atomic::new(0),
        unknown_session: Atomic::new(0),
        header_errors: Atomic::new(0),
        reorder: PeerReorder::new(),
    };

    fn reset(&self) {
        self.peer.store(0, Relaxed);
        self.port.store(0, Relaxed);
        self.primary.reset();
        self.secondary.reset();
        self.primary_local.store(0, Relaxed);
        self.rewrite_errors.store(0, Relaxed);
        self.probe_port.store(0, Relaxed);
        self.probes_answered.store(0, Relaxed);
        self.forget_session();
        for counter in [&self.sequenced, &self.unknown_session, &self.header_errors] {
            counter.store(0, Relaxed);
        }
        self.reorder.reset();
    }
}

impl RecvState {
    /// Forgets the peer's token and its sequence numbers (a new session, or a new peer); what
    /// the reorder buffer held of the old session is delivered. Process context.
    fn forget_session(&self) {
        self.peer_token.store(0, Relaxed);
        for counter in Iterator::chain(self.highest.iter(), &self.received) {
            counter.store(0, Relaxed);
        }
        self.reorder.flush(true);
        self.reorder.forget_session();
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

    /// The counters of the path with index `path` (the header's numbering).
    fn path_counters(&self, path: usize) -> &PathCounters {
        if path == PRIMARY {
            &self.primary
        } else {
            &self.secondary
        }
    }
}

static NAMESPACES: NetnsTable<RecvState> = NetnsTable::new();
static REJECT_LOG: LogLimit = LogLimit::new();
static RESPONDERS: Workers<Responder> = Workers::new();

struct Policy;

impl RecvHook for Policy {
    fn arrive(d: &mut Arriving<'_>) -> Verdict {
        let Some(ns) = NAMESPACES.find(d.net) else {
            return Verdict::Deliver;
        };
        let Some(peer) = Peer::unpack(ns.peer.load(Relaxed)) else {
            return Verdict::Deliver;
        };
        let port = ns.port.load(Relaxed);
        if port == 0 || (u32::from(d.sport) != port && u32::from(d.dport) != port) {
            return Verdict::Deliver;
        }
        if d.saddr != peer.primary && d.saddr != peer.alternate {
            return Verdict::Deliver;
        }
        // The header of a sequenced datagram; `None` for a plain one.
        let mut sequenced = None;
        let token = ns.peer_token.load(Relaxed);
        if let Some(header) = DataHeader::decode(d.head()) {
            if header.of_session(token) {
                if d.strip(HEADER_LEN).is_err() {
                    ns.header_errors.add(1u64, Relaxed);
                    return Verdict::Drop;
                }
                ns.sequenced.add(1u64, Relaxed);
                ns.count_path_seq(header.path.into(), header.path_seq);
                sequenced = Some(header);
            } else if ns.probe_port.load(Relaxed) != 0 {
                // Only a peer that this end answers probes for sends headers: without a
                // responder, a datagram shaped like one is the application's own.
                ns.unknown_session.add(1u64, Relaxed);
                return Verdict::Drop;
            }
        }
        if d.saddr == peer.alternate && peer.alternate != peer.primary {
            let learned = ns.primary_local.load(Relaxed);
            let local = if learned != 0 { Ipv4(learned) } else { d.daddr };
            let (sport, dport) = (d.sport, d.dport);
            if d.rewrite(peer.primary, sport, local, dport).is_ok() {
                ns.path_counters(sequenced.map_or(SECONDARY, |h| h.path.into()))
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
            // With one address for both paths, only the header tells them apart.
            ns.path_counters(sequenced.map_or(PRIMARY, |h| h.path.into()))
                .count(d.len);
        }
        match sequenced {
            // Rewritten and stripped: the buffer delivers it as the socket would have got it.
            Some(header) if ns.reorder.enabled.load(Relaxed) != 0 => ns.reorder.arrive(d, &header),
            _ => Verdict::Deliver,
        }
    }
}

impl ffi::InterfacesChanged for Policy {
    fn interface_unregistering() {
        // Held datagrams point to the interface they arrived on: they go before it does.
        NAMESPACES.for_every_state(|ns| ns.reorder.flush(true));
    }
}

impl NetExit for Policy {
    fn net_exit(net: NetId) {
        let config = ffi::config_lock();
        // The worker uses the namespace's socket: it goes first.
        RESPONDERS.stop(&config, net);
        // Its sockets are gone: what the buffer holds is freed, and its timer stopped.
        NAMESPACES.release(net, |ns| ns.reorder.shut_down(false));
    }
}

/// A namespace's probe responder: answers each probe from the configured peer on the path it
/// arrived on (same interface, from the address it was sent to).
struct Responder {
    ns: &'static RecvState,
    socket: ProbeSocket,
}

/// Each path's loss is read over intervals of at least this long.
const LOSS_INTERVAL_NS: u64 = 1_000_000_000;

/// The responder's private bookkeeping: each path's loss window and when it was last read.
struct LossBook {
    paths: [(GapLoss, u64); 2],
}

impl WorkerBody for Responder {
    fn run(&self, thread: &ffi::WorkerThread) {
        let mut buf = [0u8; probe::WIRE_LEN + 1];
        let mut book = LossBook {
            paths: [(GapLoss::new(), 0), (GapLoss::new(), 0)],
        };
        while !thread.should_stop() {
            // The time a probe waits here is reported to the prober and subtracted.
            self.socket
                .wait_and_drain(&mut buf, |data, rx| self.answer(&mut book, data, rx));
        }
    }
}

impl Responder {
    /// Learns the peer's session token from a probe; a new one starts the sequence (and the
    /// loss windows) afresh.
    fn learn_token(&self, book: &mut LossBook, token: u32) {
        let word = seq::SEEN | u64::from(token);
        if self.ns.peer_token.load(Relaxed) != word {
            self.ns.forget_session();
            for (loss, _) in &mut book.paths {
                *loss = GapLoss::new();
            }
            self.ns.peer_token.store(word, Relaxed);
        }
    }

    /// The loss of path `path` from gaps in its data sequence, read at most once per
    /// [`LOSS_INTERVAL_NS`]; [`probe::LOSS_UNKNOWN`] while nothing was expected.
    fn data_loss(&self, book: &mut LossBook, path: usize) -> u32 {
        let Some((loss, last_read)) = book.paths.get_mut(path) else {
            return probe::LOSS_UNKNOWN;
        };
        let now = ffi::now_ns();
        if now.saturating_sub(*last_read) >= LOSS_INTERVAL_NS {
            *last_read = now;
            loss.read(
                self.ns.highest[path].load(Relaxed),
                self.ns.received[path].load(Relaxed),
            );
        }
        loss.loss_ppm().unwrap_or(probe::LOSS_UNKNOWN)
    }

    fn answer(&self, book: &mut LossBook, data: &[u8], rx: &ffi::Received) {
        let Some(probe) = Message::decode(data) else {
            return;
        };
        let Some(peer) = Peer::unpack(self.ns.peer.load(Relaxed)) else {
            return;
        };
        if probe.kind != Kind::Probe || (rx.from != peer.primary && rx.from != peer.alternate) {
            return;
        }
        self.learn_token(book, probe.token);
        let counters = if probe.path == SECONDARY {
            &self.ns.secondary
        } else {
            &self.ns.primary
        };
        let hold_ns = ffi::now_ns().saturating_sub(rx.arrived_ns);
        let reply = Message {
            kind: Kind::Reply,
            hold_ns,
            rx_datagrams: counters.datagrams.load(Relaxed),
            rx_bytes: counters.bytes.load(Relaxed),
            data_loss_ppm: self.data_loss(book, probe.path),
            ..probe
        };
        let via = Some((rx.ifindex, rx.local));
        if self
            .socket
            .send(rx.from, rx.from_port, via, &reply.encode())
            .is_ok()
        {
            self.ns.probes_answered.add(1u64, Relaxed);
        }
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
            name: c"probe_port",
            writable: true,
        },
        File {
            name: c"probes_answered",
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
        let ns = NAMESPACES.view(NetId::current()?);
        let written = match name.to_bytes() {
            b"peer" => match Peer::unpack(ns.peer.load(Relaxed)) {
                Some(peer) => writeln!(out, "{peer}"),
                None => writeln!(out),
            },
            b"port" => writeln!(out, "{}", ns.port.load(Relaxed)),
            b"probe_port" => writeln!(out, "{}", ns.probe_port.load(Relaxed)),
            b"probes_answered" => writeln!(out, "{}", ns.probes_answered.load(Relaxed)),
            b"rx_primary_datagrams" => writeln!(out, "{}", ns.primary.datagrams.load(Relaxed)),
            b"rx_primary_bytes" => writeln!(out, "{}", ns.primary.bytes.load(Relaxed)),
            b"rx_secondary_datagrams" => writeln!(out, "{}", ns.secondary.datagrams.load(Relaxed)),
            b"rx_secondary_bytes" => writeln!(out, "{}", ns.secondary.bytes.load(Relaxed)),
            b"primary_local" => match ns.primary_local.load(Relaxed) {
                0 => writeln!(out),
                addr => writeln!(out, "{}", Ipv4(addr)),
            },
            b"rx_rewrite_errors" => writeln!(out, "{}", ns.rewrite_errors.load(Relaxed)),
            b"rx_sequenced_datagrams" => writeln!(out, "{}", ns.sequenced.load(Relaxed)),
            b"rx_unknown_session_drops" => writeln!(out, "{}", ns.unknown_session.load(Relaxed)),
            b"rx_header_error_drops" => writeln!(out, "{}", ns.header_errors.load(Relaxed)),
            b"reorder" => writeln!(out, "{}", ns.reorder.enabled.load(Relaxed)),
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
            b"probe_port" => "recv/probe_port",
            b"reorder" => "recv/reorder",
            b"reorder_max_ms" => "recv/reorder_max_ms",
            b"reorder_max_kb" => "recv/reorder_max_kb",
            _ => "recv/?",
        };
        let net = NetId::current()?;
        let config = ffi::config_lock();
        match name.to_bytes() {
            b"peer" => {
                let peer =
                    parse::parse_peer(input).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = NAMESPACES.claim(net)?;
                ns.peer.store(peer.map_or(0, Peer::pack), Relaxed);
                // Learned again from the new peer's primary path, and its token from its probes.
                ns.primary_local.store(0, Relaxed);
                ns.forget_session();
            }
            b"port" => {
                let probe_port = NAMESPACES.view(net).probe_port.load(Relaxed);
                let port = parse::parse_u32(input, u16::MAX.into())
                    .and_then(|port| parse::distinct_ports(port, probe_port))
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES.claim(net)?.port.store(port, Relaxed);
            }
            b"probe_port" => {
                let tunnel_port = NAMESPACES.view(net).port.load(Relaxed);
                let port = parse::parse_u32(input, u16::MAX.into())
                    .and_then(|port| parse::distinct_ports(port, tunnel_port))
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = NAMESPACES.claim(net)?;
                let unchanged =
                    port == ns.probe_port.load(Relaxed) && RESPONDERS.running(&config, net);
                if port == 0 {
                    RESPONDERS.stop(&config, net);
                } else if !unchanged {
                    // The port is checked by binding it: in use means EADDRINUSE.
                    let socket = ProbeSocket::open(net, port as u16).inspect_err(|e| {
                        pr_warn!(
                            "recv/probe_port: cannot listen on port {port}: error {}\n",
                            e.to_errno()
                        );
                    })?;
                    // A responder on another port is replaced once this one listens.
                    let responder = KBox::new(Responder { ns, socket }, GFP_KERNEL)?;
                    RESPONDERS
                        .start(&config, net, c"mpudp_echo", responder)
                        .inspect_err(|_| ns.probe_port.store(0, Relaxed))?;
                }
                ns.probe_port.store(port, Relaxed);
            }
            b"reorder" => {
                let on =
                    parse::parse_u32(input, 1).map_err(|e| REJECT_LOG.reject(path, input, e))?;
                let ns = NAMESPACES.claim(net)?;
                ns.reorder.enabled.store(on, Relaxed);
                if on == 0 {
                    // Nothing waits for a buffer that no longer takes datagrams in.
                    ns.reorder.flush(true);
                }
            }
            b"reorder_max_ms" => {
                let ms = parse::parse_u32(input, MAX_REORDER_WAIT_MS)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES
                    .claim(net)?
                    .reorder
                    .max_wait_ms
                    .store(ms, Relaxed);
            }
            b"reorder_max_kb" => {
                let kb = parse::parse_u32(input, MAX_REORDER_KB)
                    .map_err(|e| REJECT_LOG.reject(path, input, e))?;
                NAMESPACES.claim(net)?.reorder.max_kb.store(kb, Relaxed);
            }
            _ => return Err(EACCES),
        }
        Ok(())
    }
}

/// Largest `recv/reorder_max_ms`: a wait longer than this outlasts any tunnel's retransmit.
const MAX_REORDER_WAIT_MS: u32 = 10_000;
/// Largest `recv/reorder_max_kb` (64 MiB per peer).
const MAX_REORDER_KB: u32 = 65_536;

static PERNET: ffi::PernetOps = ffi::PernetOps::new();
static NETDEV: ffi::NetdevNotifier = ffi::NetdevNotifier::new();

/// Delivers what every reorder buffer holds and stops their timers when dropped (module
/// unload, once nothing can hand them datagrams, flush them or arm their timers: the hook,
/// the files and the responders are gone).
struct StopReorder;

impl Drop for StopReorder {
    fn drop(&mut self) {
        NAMESPACES.for_every_state(|ns| ns.reorder.shut_down(true));
    }
}

/// Stops every responder when dropped (module unload, after the files are gone).
struct StopResponders;

impl Drop for StopResponders {
    fn drop(&mut self) {
        RESPONDERS.stop_all(&ffi::config_lock());
    }
}

struct MpudpRecv {
    // Dropped in this order: the hook first, so no datagram sees state being torn down; the
    // files before the workers, so that no write starts one again; the reorder buffers once
    // nothing else can reach them, and before the notifier that flushes them when an
    // interface goes.
    _hook: udp_hooks::RecvHookRegistration<Policy>,
    _files: ffi::SysfsRegistration,
    _responders: StopResponders,
    _reorder: StopReorder,
    _netdev: ffi::NetdevRegistration,
    _pernet: ffi::PernetRegistration,
}

impl kernel::Module for MpudpRecv {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let key = kernel::static_lock_class!();
        NAMESPACES.for_every_state(|ns| {
            // SAFETY: Module init, before the hook, files, notifier and workers that reach the
            // buffers exist; `StopReorder` shuts every one down before unload.
            unsafe { ns.reorder.init(key) }
        });
        NAMESPACES.init_defaults();
        ffi::init_config_lock();
        let pernet = PERNET.register::<Policy>()?;
        let netdev = NETDEV.register::<Policy>()?;
        let reorder = StopReorder;
        let responders = StopResponders;
        let files = FILES.register::<Policy>()?;
        let hook = udp_hooks::RecvHookRegistration::<Policy>::new().inspect_err(|_| {
            pr_err!("the UDP receive hook is already taken by another module\n");
        })?;
        pr_info!("loaded\n");
        Ok(Self {
            _hook: hook,
            _files: files,
            _responders: responders,
            _reorder: reorder,
            _netdev: netdev,
            _pernet: pernet,
        })
    }
}
