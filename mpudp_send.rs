// SPDX-License-Identifier: GPL-2.0

//! MPUDP sender: spreads one UDP tunnel's datagrams over a primary and a secondary path.
//!
//! For every IPv4 datagram a socket sends to the configured peer's primary address on the
//! configured port, the credit-based split (see [`parse::on_secondary`]) decides the path. A
//! datagram for the secondary path is sent to the peer's alternate address over the secondary
//! interface, from that interface's address. Everything else leaves exactly as without MPUDP.
//! If the secondary interface is gone, down, without carrier or without an IPv4 address, the
//! datagram stays on the primary path.

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

use ffi::{File, NetExit, NetId, Outgoing, PageWriter, SendHook, SysfsFiles, SysfsGroup};
use netns::{LogLimit, NetnsTable, NsState, PathCounters};
use parse::{IfName, Peer};

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
    }
}

/// The `split` module parameter, validated at load.
static DEFAULT_SPLIT: Atomic<u32> = Atomic::new(50);
static NAMESPACES: NetnsTable<SendState> = NetnsTable::new();
static REJECT_LOG: LogLimit = LogLimit::new();

struct Policy;

impl SendHook for Policy {
    fn steer(d: Outgoing<'_>) -> bool {
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
        if parse::on_secondary(n, SPLIT_MAX - ns.split.load(Relaxed)) {
            let ifindex = ns.secondary_ifindex.load(Relaxed);
            let source = (ifindex != 0)
                .then(|| d.net.usable_source(ifindex, peer.alternate))
                .flatten();
            if let Some(source) = source {
                *d.daddr = peer.alternate.0;
                *d.saddr = source.0;
                *d.oif = ifindex;
                ns.secondary.count(d.len);
                return true;
            }
            ns.fallback.add(1u64, Relaxed);
        }
        ns.primary.count(d.len);
        false
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
                ns.secondary_ifindex
                    .store(net.ifindex(&name).unwrap_or(0), Relaxed);
            }
        });
    }
}

impl NetExit for Policy {
    fn net_exit(net: NetId) {
        NAMESPACES.release(net);
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
    ],
);

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
            b"tx_primary_datagrams" => writeln!(out, "{}", ns.primary.datagrams.load(Relaxed)),
            b"tx_primary_bytes" => writeln!(out, "{}", ns.primary.bytes.load(Relaxed)),
            b"tx_secondary_datagrams" => writeln!(out, "{}", ns.secondary.datagrams.load(Relaxed)),
            b"tx_secondary_bytes" => writeln!(out, "{}", ns.secondary.bytes.load(Relaxed)),
            b"tx_fallback_datagrams" => writeln!(out, "{}", ns.fallback.load(Relaxed)),
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
                    Some(ifname) => match net.ifindex(&ifname) {
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
                NAMESPACES.claim(net)?.port.store(port, Relaxed);
            }
            _ => return Err(EACCES),
        }
        Ok(())
    }
}

static PERNET: ffi::PernetOps = ffi::PernetOps::new();
static NETDEV: ffi::NetdevNotifier = ffi::NetdevNotifier::new();

struct MpudpSend {
    // Dropped in this order: the hook first, so no datagram sees state being torn down.
    _hook: ffi::SendHookRegistration<Policy>,
    _files: ffi::SysfsRegistration,
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
        ffi::init_config_lock();
        let pernet = PERNET.register::<Policy>()?;
        let netdev = NETDEV.register::<Policy>()?;
        let files = FILES.register::<Policy>()?;
        let hook = ffi::SendHookRegistration::<Policy>::new().inspect_err(|_| {
            pr_err!("the UDP send hook is already taken by another module\n");
        })?;
        pr_info!("loaded, split {split}\n");
        Ok(Self {
            _hook: hook,
            _files: files,
            _netdev: netdev,
            _pernet: pernet,
        })
    }
}
