// SPDX-License-Identifier: GPL-2.0

//! Strict, allocation-free parsing and printing of MPUDP's sysfs values.
//!
//! Only `core` is used, so the same file is unit-tested on the build host (`selftests/unit.rs`).
//! Every accepted value has exactly one canonical spelling, which is what `show` prints back.

use core::fmt;

/// Why a written value was rejected: each becomes `EINVAL` and one dmesg line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Not a plain decimal number.
    NotANumber,
    /// A number outside the allowed range.
    OutOfRange,
    /// Not a dotted-quad IPv4 unicast address.
    BadAddress,
    /// Not `PRIMARY ALTERNATE` (two addresses separated by one space).
    BadPeer,
    /// Not a valid interface name.
    BadName,
    /// Not one of the scheduler names.
    BadScheduler,
}

impl Invalid {
    /// A short reason for the kernel log.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Invalid::NotANumber => "not a decimal number",
            Invalid::OutOfRange => "number out of range",
            Invalid::BadAddress => "not an IPv4 unicast address",
            Invalid::BadPeer => "expected 'PRIMARY ALTERNATE' IPv4 addresses or nothing",
            Invalid::BadName => "not an interface name",
            Invalid::BadScheduler => "expected 'split' or 'rtt'",
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
    /// Path-aware: by measured RTT, loss and delivered rate.
    Rtt,
}

impl Scheduler {
    /// The name sysfs shows and accepts.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scheduler::Split => "split",
            Scheduler::Rtt => "rtt",
        }
    }
}

/// Parses `split` or `rtt`.
pub(crate) fn parse_scheduler(input: &[u8]) -> Result<Scheduler, Invalid> {
    match strip_newline(input) {
        b"split" => Ok(Scheduler::Split),
        b"rtt" => Ok(Scheduler::Rtt),
        _ => Err(Invalid::BadScheduler),
    }
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

/// The peer's two addresses: the one the tunnel application talks to, and the one reached
/// over the secondary path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) primary: Ipv4,
    pub(crate) alternate: Ipv4,
}

impl Peer {
    /// The peer's address on path `path`: the primary address on path 0, the alternate on
    /// every other path.
    pub(crate) fn addr(&self, path: usize) -> Ipv4 {
        if path == 0 {
            self.primary
        } else {
            self.alternate
        }
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
        write!(f, "{} {}", self.primary, self.alternate)
    }
}

/// Parses `PRIMARY ALTERNATE`; an empty write (`None`) clears the peer.
pub(crate) fn parse_peer(input: &[u8]) -> Result<Option<Peer>, Invalid> {
    let text = strip_newline(input);
    if text.is_empty() {
        return Ok(None);
    }
    let mut words = text.split(|&b| b == b' ');
    let (Some(primary), Some(alternate), None) = (words.next(), words.next(), words.next()) else {
        return Err(Invalid::BadPeer);
    };
    Ok(Some(Peer {
        primary: parse_ipv4(primary)?,
        alternate: parse_ipv4(alternate)?,
    }))
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

/// Parses an interface name with the kernel's rules (`dev_valid_name`); empty means none.
pub(crate) fn parse_ifname(input: &[u8]) -> Result<Option<IfName>, Invalid> {
    let text = strip_newline(input);
    if text.is_empty() {
        return Ok(None);
    }
    let valid = text.len() <= IFNAME_MAX
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
    Ok(Some(name))
}
