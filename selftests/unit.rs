// SPDX-License-Identifier: GPL-2.0

//! Host unit tests of the sysfs parsers and the split rule (`common/parse.rs`), which use only
//! `core` and so run without a kernel.

#[path = "../common/parse.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod parse;

use parse::*;

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4 {
    Ipv4(u32::from_ne_bytes([a, b, c, d]))
}

#[test]
fn numbers_are_plain_decimal_within_range() {
    assert_eq!(parse_u32(b"90\n", 100), Ok(90));
    assert_eq!(parse_u32(b"0", 100), Ok(0));
    assert_eq!(parse_u32(b"100", 100), Ok(100));
    assert_eq!(parse_u32(b"101", 100), Err(Invalid::OutOfRange));
    assert_eq!(parse_u32(b"4294967295", u32::MAX), Ok(u32::MAX));
    assert_eq!(parse_u32(b"4294967296", u32::MAX), Err(Invalid::OutOfRange));
    assert_eq!(
        parse_u32(b"99999999999", u32::MAX),
        Err(Invalid::NotANumber)
    );
    for bad in [
        &b""[..],
        b"\n",
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"1\n\n",
        b"0x10",
        b"010",
        b"1e2",
        b"\x00",
    ] {
        assert_eq!(parse_u32(bad, 100), Err(Invalid::NotANumber), "{bad:?}");
    }
}

#[test]
fn addresses_are_unicast_dotted_quads() {
    assert_eq!(parse_ipv4(b"10.0.2.2"), Ok(ip(10, 0, 2, 2)));
    for bad in [
        &b"10.0.2"[..],
        b"10.0.2.2.1",
        b"10.0.2.256",
        b"10.0.02.2",
        b"0.0.0.0",
        b"255.255.255.255",
        b"224.0.0.1",
        b"a.b.c.d",
        b"10..2.2",
    ] {
        assert_eq!(parse_ipv4(bad), Err(Invalid::BadAddress), "{bad:?}");
    }
}

#[test]
fn peer_is_a_pair_or_nothing_and_prints_canonically() {
    let peer = parse_peer(b"10.0.1.2 10.0.2.2\n").unwrap().unwrap();
    assert_eq!(peer.primary, ip(10, 0, 1, 2));
    assert_eq!(peer.alternate, ip(10, 0, 2, 2));
    assert_eq!(Peer::unpack(peer.pack()), Some(peer));
    assert_eq!(format!("{peer}"), "10.0.1.2 10.0.2.2");
    assert_eq!(parse_peer(b"\n"), Ok(None));
    assert_eq!(Peer::unpack(0), None);
    for bad in [
        &b"10.0.1.2"[..],
        b"10.0.1.2  10.0.2.2",
        b"10.0.1.2 10.0.2.2 10.0.3.2",
        b" 10.0.1.2 10.0.2.2",
    ] {
        assert!(parse_peer(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn interface_names_follow_the_kernel_rules() {
    let name = parse_ifname(b"eth1\n").unwrap().unwrap();
    assert_eq!(name.as_bytes(), b"eth1");
    assert_eq!(IfName::from_words(name.to_words()), name);
    assert_eq!(format!("{name}"), "eth1");
    assert_eq!(
        parse_ifname(b"abcdefghijklmno")
            .unwrap()
            .unwrap()
            .as_bytes()
            .len(),
        15
    );
    assert_eq!(parse_ifname(b""), Ok(None));
    for bad in [
        &b"abcdefghijklmnop"[..],
        b"a/b",
        b"a:b",
        b"a b",
        b".",
        b"..",
        b"eth\x001",
    ] {
        assert_eq!(parse_ifname(bad), Err(Invalid::BadName), "{bad:?}");
    }
}

#[test]
fn split_is_exact_and_evenly_spread() {
    for percent in 0..=100u32 {
        for total in [1u64, 7, 100, 1000, 10_000] {
            let secondary = (0..total).filter(|&n| on_secondary(n, percent)).count() as u64;
            assert_eq!(
                secondary,
                total * u64::from(percent) / 100,
                "{percent}% of {total}"
            );
        }
    }
    // At 10 % no two secondary datagrams are closer than ten apart.
    let picks: Vec<u64> = (0..1000).filter(|&n| on_secondary(n, 10)).collect();
    assert!(picks.windows(2).all(|w| w[1] - w[0] == 10));
}
