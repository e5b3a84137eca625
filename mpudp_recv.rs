// SPDX-License-Identifier: GPL-2.0

//! MPUDP receiver: makes datagrams from the peer's alternate address look like they came
//! from its primary address, so the tunnel application sees one peer over both paths.
//!
//! Only datagrams whose source or local port is the configured tunnel port, and whose source
//! is one of the configured peer's two addresses, are touched or counted.

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

use ffi::{File, Incoming, NetExit, NetId, PageWriter, RecvHook, SysfsFiles, SysfsGroup};
use netns::{LogLimit, NetnsTable, NsState, PathCounters};
use parse::Peer;

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
    /// Datagrams from the peer's alternate address (reported as from the primary one).
    secondary: PathCounters,
}

impl NsState for RecvState {
    const FRESH: Self = Self {
        peer: Atomic::new(0),
        port: Atomic::new(0),
        primary: PathCounters::new(),
        secondary: PathCounters::new(),
    };

    fn reset(&self) {
        self.peer.store(0, Relaxed);
        self.port.store(0, Relaxed);
        self.primary.reset();
        self.secondary.reset();
    }
}

static NAMESPACES: NetnsTable<RecvState> = NetnsTable::new();
static REJECT_LOG: LogLimit = LogLimit::new();

struct Policy;

impl RecvHook for Policy {
    fn report(d: Incoming<'_>) {
        let Some(ns) = NAMESPACES.find(d.net) else {
            return;
        };
        let Some(peer) = Peer::unpack(ns.peer.load(Relaxed)) else {
            return;
        };
        let port = ns.port.load(Relaxed);
        if port == 0 || (u32::from(d.sport) != port && u32::from(d.dport) != port) {
            return;
        }
        if *d.saddr == peer.alternate.0 && peer.alternate != peer.primary {
            *d.saddr = peer.primary.0;
            ns.secondary.count(d.len);
        } else if *d.saddr == peer.primary.0 {
            ns.primary.count(d.len);
        }
    }
}

impl NetExit for Policy {
    fn net_exit(net: NetId) {
        NAMESPACES.release(net);
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
            b"rx_primary_datagrams" => writeln!(out, "{}", ns.primary.datagrams.load(Relaxed)),
            b"rx_primary_bytes" => writeln!(out, "{}", ns.primary.bytes.load(Relaxed)),
            b"rx_secondary_datagrams" => writeln!(out, "{}", ns.secondary.datagrams.load(Relaxed)),
            b"rx_secondary_bytes" => writeln!(out, "{}", ns.secondary.bytes.load(Relaxed)),
            _ => return Err(ENOENT),
        };
        written.map_err(|_| EINVAL)
    }

    fn store(name: &CStr, input: &[u8]) -> Result {
        let path = match name.to_bytes() {
            b"peer" => "recv/peer",
            b"port" => "recv/port",
            _ => "recv/?",
        };
        let net = NetId::current()?;
        let _config = ffi::config_lock();
        match name.to_bytes() {
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

struct MpudpRecv {
    // Dropped in this order: the hook first, so no datagram sees state being torn down.
    _hook: ffi::RecvHookRegistration<Policy>,
    _files: ffi::SysfsRegistration,
    _pernet: ffi::PernetRegistration,
}

impl kernel::Module for MpudpRecv {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        ffi::init_config_lock();
        let pernet = PERNET.register::<Policy>()?;
        let files = FILES.register::<Policy>()?;
        let hook = ffi::RecvHookRegistration::<Policy>::new().inspect_err(|_| {
            pr_err!("the UDP receive hook is already taken by another module\n");
        })?;
        pr_info!("loaded\n");
        Ok(Self {
            _hook: hook,
            _files: files,
            _pernet: pernet,
        })
    }
}
