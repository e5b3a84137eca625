// SPDX-License-Identifier: GPL-2.0

//! Strict, allocation-free parsing and printing of MPUDP's sysfs values.
//!
//! Only `core` is used, so the same file is unit-tested on the build host (`selftests/unit.rs`).
//! Every accepted value has exactly one canonical spelling, which is what `show` prints back.

use core::fmt;

use crate::seq::MAX_PATHS;

/// The most paths besides the primary one: secondary interfaces, and peer alternates.
pub(crate) const MAX_EXTRA_PATHS: usize = MAX_PATHS - 1;

/// Why a written value was rejected: each becomes `EINVAL` and one dmesg line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Not a plain decimal number.
    NotANumber,
    /// A number outside the allowed range.
    OutOfRange,
    /// Not a dotted-quad IPv4 unicast address.
    BadAddress,
    /// Not `PRIMARY ALTERNATE [ALTERNATE...]` (2 to 8 addresses separated by one space).
    BadPeer,
    /// Not valid interface names (1 to 7, separated by one space).
    BadName,
    /// Not one of the scheduler names.
    BadScheduler,
    /// Not `off` or `DATA:REPAIRS` within range.
    BadFec,
}

impl Invalid {
    /// A short reason for the kernel log.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Invalid::NotANumber => "not a decimal number",
            Invalid::OutOfRange => "number out of range",
            Invalid::BadAddress => "not an IPv4 unicast address",
            Invalid::BadPeer => {
                "expected 'PRIMARY ALTERNATE [ALTERNATE...]' (2 to 8 IPv4 addresses) or nothing"
            }
            Invalid::BadName => "expected 1 to 7 interface names separated by a space, or nothing",
            Invalid::BadScheduler => "expected 'split', 'rtt' or 'rate'",
            Invalid::BadFec => {
                "expected 'off', 'auto', 'redundant' or 'DATA:REPAIRS' (1..32 datagrams, 1..8 repairs)"
            }
        }
    }
}

/// Drops the one trailing newline that `echo` adds; anything else is part of the value.
pub(crate) fn strip_newline(input: &[u8]) -> &[u8] {
    match input {
        [rest @ .., b'\n'] => rest,
        _ => input,
    }
}

/// Parses a plain decimal number no larger than `max` (no sign, no spaces, no leading zeros).
pub(crate) fn parse_u32(input: &[u8], max: u32) -> Result<u32, Invalid> {
    let digits = strip_newline(input);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::NotANumber);
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return Err(Invalid::NotANumber);
    }
    let value = digits
        .iter()
        .try_fold(0u64, |acc, d| Some(acc * 10 + u64::from(d - b'0')))
        .ok_or(Invalid::NotANumber)?;
    if value > u64::from(max) {
        return Err(Invalid::OutOfRange);
    }
    // The check above bounds `value` by a `u32`.
    Ok(value as u32)
}

/// Parses a decimal number in `min..=max` (the grammar of [`parse_u32`]).
pub(crate) fn parse_in_range(input: &[u8], min: u32, max: u32) -> Result<u32, Invalid> {
    let value = parse_u32(input, max)?;
    if value < min {
        return Err(Invalid::OutOfRange);
    }
    Ok(value)
}

/// How the sender picks each datagram's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheduler {
    /// The fixed `split` ratio.
    Split,
    /// Path-aware, two paths: by measured RTT, loss and delivered rate.
    Rtt,
    /// Path-aware, up to 8 paths: in proportion to each path's measured capacity, less loss
    /// above 1 % (`rate_sched.rs`).
    Rate,
}

impl Scheduler {
    /// The name sysfs shows and accepts.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scheduler::Split => "split",
            Scheduler::Rtt => "rtt",
            Scheduler::Rate => "rate",
        }
    }
}

/// Parses `split`, `rtt` or `rate`.
pub(crate) fn parse_scheduler(input: &[u8]) -> Result<Scheduler, Invalid> {
    match strip_newline(input) {
        b"split" => Ok(Scheduler::Split),
        b"rtt" => Ok(Scheduler::Rtt),
        b"rate" => Ok(Scheduler::Rate),
        _ => Err(Invalid::BadScheduler),
    }
}

/// Loss recovery's setting (`fec`): off; groups of `data` datagrams with `repairs` repair
/// datagrams each (`fec.rs`); repairs as the measured loss needs them (`auto`); or every
/// datagram on every usable path (`redundant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fec {
    Off,
    Ratio { data: u8, repairs: u8 },
    Auto,
    Redundant,
}

impl fmt::Display for Fec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fec::Off => f.write_str("off"),
            Fec::Ratio { data, repairs } => write!(f, "{data}:{repairs}"),
            Fec::Auto => f.write_str("auto"),
            Fec::Redundant => f.write_str("redundant"),
        }
    }
}

/// Parses `off`, `auto`, `redundant` or `DATA:REPAIRS`, each a plain decimal number: 1 to
/// `max_data` datagrams per group, 1 to `max_repairs` repairs.
pub(crate) fn parse_fec(input: &[u8], max_data: u8, max_repairs: u8) -> Result<Fec, Invalid> {
    let value = strip_newline(input);
    match value {
        b"off" => return Ok(Fec::Off),
        b"auto" => return Ok(Fec::Auto),
        b"redundant" => return Ok(Fec::Redundant),
        _ => {}
    }
    let colon = value
        .iter()
        .position(|&b| b == b':')
        .ok_or(Invalid::BadFec)?;
    let (data, repairs) = (&value[..colon], &value[colon + 1..]);
    // parse_u32 would take a newline at their ends; only the whole value may have one.
    if data.ends_with(b"\n") || repairs.ends_with(b"\n") {
        return Err(Invalid::BadFec);
    }
    let data = parse_u32(data, max_data.into()).map_err(|_| Invalid::BadFec)?;
    let repairs = parse_u32(repairs, max_repairs.into()).map_err(|_| Invalid::BadFec)?;
    if data == 0 || repairs == 0 {
        return Err(Invalid::BadFec);
    }
    // Both fit u8: at most max_data and max_repairs.
    Ok(Fec::Ratio {
        data: data as u8,
        repairs: repairs as u8,
    })
}

/// An IPv4 address kept in network byte order, as the kernel passes `__be32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv4(pub(crate) u32);

impl Ipv4 {
    fn octets(self) -> [u8; 4] {
        self.0.to_ne_bytes()
    }

    fn from_octets(octets: [u8; 4]) -> Self {
        Ipv4(u32::from_ne_bytes(octets))
    }
}

impl fmt::Display for Ipv4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.octets();
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// Parses a dotted-quad unicast address a peer can have: not in 0/8 ("this network"),
/// 127/8 (loopback), 224/4 (multicast) or 240/4 (reserved, and the broadcast address).
pub(crate) fn parse_ipv4(input: &[u8]) -> Result<Ipv4, Invalid> {
    let mut octets = [0u8; 4];
    let mut parts = input.split(|&b| b == b'.');
    for octet in octets.iter_mut() {
        let part = parts.next().ok_or(Invalid::BadAddress)?;
        if part.len() > 3 {
            return Err(Invalid::BadAddress);
        }
        *octet = parse_u32(part, 255).map_err(|_| Invalid::BadAddress)? as u8;
    }
    if parts.next().is_some() {
        return Err(Invalid::BadAddress);
    }
    let unusable = octets[0] == 0 || octets[0] == 127 || octets[0] >= 224;
    if unusable {
        return Err(Invalid::BadAddress);
    }
    Ok(Ipv4::from_octets(octets))
}

/// The peer's addresses: the one the tunnel application talks to (the primary path's), and
/// one alternate per further path, reached over that path's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) primary: Ipv4,
    alternates: [Ipv4; MAX_EXTRA_PATHS],
    /// How many of `alternates` were given: 1 to [`MAX_EXTRA_PATHS`].
    count: usize,
}

impl Peer {
    /// The alternate addresses as given.
    pub(crate) fn alternates(&self) -> &[Ipv4] {
        &self.alternates[..self.count]
    }

    /// The peer's address on path `path`: the primary address on path 0, the path's own
    /// alternate on the others; paths beyond the alternates given use the last one (a peer
    /// with one address for every path of a multihomed client).
    pub(crate) fn addr(&self, path: usize) -> Ipv4 {
        match path {
            0 => self.primary,
            // Unfilled slots repeat the last alternate given.
            _ => self.alternates[(path - 1).min(MAX_EXTRA_PATHS - 1)],
        }
    }

    /// The path whose address `addr` is: 0 for the primary address (which may also be an
    /// alternate), else the first alternate's that matches; `None` for another address.
    pub(crate) fn path_of(&self, addr: Ipv4) -> Option<usize> {
        if addr == self.primary {
            return Some(0);
        }
        self.alternates()
            .iter()
            .position(|&alternate| alternate == addr)
            .map(|i| i + 1)
    }
}

/// Whether a datagram between ports `sport` and `dport` belongs to the tunnel on `port`
/// (source or destination, either direction); never while no port is set (0). The address
/// half of the tunnel's scope is each hook's own: which of the peer's addresses it expects
/// depends on the direction and the path.
pub(crate) fn on_tunnel_port(port: u32, sport: u16, dport: u16) -> bool {
    port != 0 && (u32::from(sport) == port || u32::from(dport) == port)
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.primary)?;
        for alternate in self.alternates() {
            write!(f, " {alternate}")?;
        }
        Ok(())
    }
}

/// Parses `PRIMARY ALTERNATE [ALTERNATE...]`, 2 to 8 addresses; an empty write (`None`)
/// clears the peer.
pub(crate) fn parse_peer(input: &[u8]) -> Result<Option<Peer>, Invalid> {
    let text = strip_newline(input);
    if text.is_empty() {
        return Ok(None);
    }
    let mut words = text.split(|&b| b == b' ');
    let primary = parse_ipv4(words.next().ok_or(Invalid::BadPeer)?)?;
    let mut peer = Peer {
        primary,
        alternates: [primary; MAX_EXTRA_PATHS],
        count: 0,
    };
    for word in words {
        let slot = peer
            .alternates
            .get_mut(peer.count)
            .ok_or(Invalid::BadPeer)?;
        *slot = parse_ipv4(word)?;
        peer.count += 1;
    }
    if peer.count == 0 {
        return Err(Invalid::BadPeer);
    }
    let last = peer.alternates[peer.count - 1];
    peer.alternates[peer.count..].fill(last);
    Ok(Some(peer))
}

/// Longest interface name, without the terminating NUL (`IFNAMSIZ - 1`).
pub(crate) const IFNAME_MAX: usize = 15;

/// An interface name, NUL-padded to `IFNAMSIZ` bytes as the kernel's lookups expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct IfName(pub(crate) [u8; IFNAME_MAX + 1]);

impl IfName {
    /// The name without padding.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..len]
    }

    /// The name as text (parsing admits only printable ASCII).
    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            write!(f, "{}", char::from(b))?;
        }
        Ok(())
    }
}

/// The interfaces of the paths after the primary one, in path order (`secondary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct IfNames {
    names: [IfName; MAX_EXTRA_PATHS],
    count: usize,
}

impl IfNames {
    /// The names as given.
    pub(crate) fn names(&self) -> &[IfName] {
        &self.names[..self.count]
    }
}

impl fmt::Display for IfNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names().iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "{name}")?;
        }
        Ok(())
    }
}

/// Parses 1 to 7 interface names separated by one space, each by the kernel's rules
/// (`dev_valid_name`); empty means none.
pub(crate) fn parse_ifnames(input: &[u8]) -> Result<IfNames, Invalid> {
    let text = strip_newline(input);
    let mut names = IfNames::default();
    if text.is_empty() {
        return Ok(names);
    }
    for word in text.split(|&b| b == b' ') {
        let slot = names.names.get_mut(names.count).ok_or(Invalid::BadName)?;
        *slot = one_ifname(word)?;
        names.count += 1;
    }
    Ok(names)
}

/// One interface name, not empty.
fn one_ifname(text: &[u8]) -> Result<IfName, Invalid> {
    let valid = !text.is_empty()
        && text.len() <= IFNAME_MAX
        && text != b"."
        && text != b".."
        && text
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if !valid {
        return Err(Invalid::BadName);
    }
    let mut name = IfName::default();
    name.0[..text.len()].copy_from_slice(text);
    Ok(name)
}
