// SPDX-License-Identifier: GPL-2.0

//! Host unit tests of the pure logic in common/ (sysfs parsers, probing, sequencing, the
//! reorder buffer, path control, the path schedule), which uses only `core` and so runs
//! without a kernel.

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
    assert_eq!(parse_ipv4(b"1.0.0.0"), Ok(ip(1, 0, 0, 0)));
    assert_eq!(parse_ipv4(b"223.255.255.254"), Ok(ip(223, 255, 255, 254)));
    assert_eq!(parse_ipv4(b"126.255.255.255"), Ok(ip(126, 255, 255, 255)));
    for bad in [
        &b"0.1.2.3"[..],
        b"127.0.0.1",
        b"127.255.255.254",
        b"239.255.255.255",
        b"240.0.0.1",
        b"10.0.2",
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
fn tunnel_scope_is_its_port_at_either_end_and_nothing_without_one() {
    assert!(on_tunnel_port(1194, 1194, 40001));
    assert!(on_tunnel_port(1194, 40001, 1194));
    assert!(on_tunnel_port(1194, 1194, 1194));
    assert!(!on_tunnel_port(1194, 40001, 40002));
    // No port configured: nothing is in scope, not even port 0's datagrams.
    assert!(!on_tunnel_port(0, 0, 0));
    assert!(!on_tunnel_port(0, 1194, 40001));
    // A port above 65535 can never match a 16-bit port.
    assert!(!on_tunnel_port(65536 + 1194, 1194, 1194));
}

#[test]
fn peer_is_two_to_eight_addresses_or_nothing_and_prints_canonically() {
    let peer = parse_peer(b"10.0.1.2 10.0.2.2\n").unwrap().unwrap();
    assert_eq!(peer.primary, ip(10, 0, 1, 2));
    assert_eq!(peer.alternates(), &[ip(10, 0, 2, 2)]);
    assert_eq!(format!("{peer}"), "10.0.1.2 10.0.2.2");
    // Path 0 reaches the primary address, every other path the one alternate.
    assert_eq!(peer.addr(0), peer.primary);
    assert!((1..8).all(|path| peer.addr(path) == ip(10, 0, 2, 2)));
    assert_eq!(parse_peer(b"\n"), Ok(None));
    // One alternate per path; paths beyond them use the last.
    let three = parse_peer(b"10.0.1.2 10.0.2.2 10.0.3.2").unwrap().unwrap();
    assert_eq!(format!("{three}"), "10.0.1.2 10.0.2.2 10.0.3.2");
    assert_eq!(three.addr(1), ip(10, 0, 2, 2));
    assert!((2..8).all(|path| three.addr(path) == ip(10, 0, 3, 2)));
    assert_eq!(three.path_of(ip(10, 0, 1, 2)), Some(0));
    assert_eq!(three.path_of(ip(10, 0, 3, 2)), Some(2));
    assert_eq!(three.path_of(ip(10, 0, 4, 2)), None);
    // The primary address may double as an alternate: it is the primary path's.
    let same = parse_peer(b"10.0.1.2 10.0.1.2").unwrap().unwrap();
    assert_eq!(same.path_of(ip(10, 0, 1, 2)), Some(0));
    let eight = b"10.0.1.2 10.0.2.2 10.0.3.2 10.0.4.2 10.0.5.2 10.0.6.2 10.0.7.2 10.0.8.2";
    let eight = parse_peer(eight).unwrap().unwrap();
    assert_eq!(eight.alternates().len(), 7);
    assert_eq!(eight.addr(7), ip(10, 0, 8, 2));
    assert_eq!(eight.path_of(ip(10, 0, 8, 2)), Some(7));
    for bad in [
        &b"10.0.1.2"[..],
        b"10.0.1.2  10.0.2.2",
        b"10.0.1.2 10.0.2.2 ",
        b" 10.0.1.2 10.0.2.2",
        b"10.0.1.2 10.0.2.2 10.0.3.2 10.0.4.2 10.0.5.2 10.0.6.2 10.0.7.2 10.0.8.2 10.0.9.2",
        b"10.0.1.2 10.0.2.2 127.0.0.1",
    ] {
        assert!(parse_peer(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn interface_names_follow_the_kernel_rules() {
    let one = parse_ifnames(b"eth1\n").unwrap();
    assert_eq!(one.names().len(), 1);
    assert_eq!(one.names()[0].as_bytes(), b"eth1");
    assert_eq!(format!("{one}"), "eth1");
    let longest = parse_ifnames(b"abcdefghijklmno").unwrap();
    assert_eq!(longest.names()[0].as_bytes().len(), 15);
    assert_eq!(parse_ifnames(b""), Ok(IfNames::default()));
    assert_eq!(parse_ifnames(b"\n").unwrap().names().len(), 0);
    let three = parse_ifnames(b"eth1 wwan0 eth1\n").unwrap();
    assert_eq!(format!("{three}"), "eth1 wwan0 eth1");
    assert_eq!(parse_ifnames(b"a b c d e f g").unwrap().names().len(), 7);
    for bad in [
        &b"abcdefghijklmnop"[..],
        b"a/b",
        b"a:b",
        b"a  b",
        b" a",
        b"a ",
        b".",
        b"eth1 ..",
        b"eth\x001",
        b"a b c d e f g h",
    ] {
        assert_eq!(parse_ifnames(bad), Err(Invalid::BadName), "{bad:?}");
    }
}

#[test]
fn scheduler_names_and_bounded_numbers() {
    assert_eq!(parse_scheduler(b"rtt\n"), Ok(Scheduler::Rtt));
    assert_eq!(parse_scheduler(b"split"), Ok(Scheduler::Split));
    assert_eq!(parse_scheduler(b"rate\n"), Ok(Scheduler::Rate));
    for bad in [
        &b"RTT"[..],
        b"rtt ",
        b"",
        b"\n",
        b"split\n\n",
        b"rt",
        b"Rate",
        b"rates",
    ] {
        assert_eq!(parse_scheduler(bad), Err(Invalid::BadScheduler));
    }
    for s in [Scheduler::Split, Scheduler::Rtt, Scheduler::Rate] {
        assert_eq!(parse_scheduler(s.name().as_bytes()), Ok(s));
    }
    assert_eq!(parse_fec(b"off\n", 32, 8), Ok(Fec::Off));
    assert_eq!(parse_fec(b"auto\n", 32, 8), Ok(Fec::Auto));
    assert_eq!(parse_fec(b"redundant", 32, 8), Ok(Fec::Redundant));
    assert_eq!(
        parse_fec(b"10:2\n", 32, 8),
        Ok(Fec::Ratio {
            data: 10,
            repairs: 2
        })
    );
    assert_eq!(
        parse_fec(b"32:8", 32, 8),
        Ok(Fec::Ratio {
            data: 32,
            repairs: 8
        })
    );
    for bad in [
        &b"33:1"[..],
        b"10:9",
        b"0:1",
        b"1:0",
        b"10:",
        b":2",
        b"10",
        b"10:2:1",
        b"10 :2",
        b"10:02",
        b"10:2\n\n",
        b"10\n:2",
        b"OFF",
        b"auto:2",
        b"redundant\n\n",
        b"",
    ] {
        assert_eq!(parse_fec(bad, 32, 8), Err(Invalid::BadFec), "{bad:?}");
    }
    for value in [
        Fec::Off,
        Fec::Auto,
        Fec::Redundant,
        Fec::Ratio {
            data: 7,
            repairs: 3,
        },
    ] {
        let shown = format!("{value}");
        assert_eq!(parse_fec(shown.as_bytes(), 32, 8), Ok(value));
    }
    assert_eq!(parse_in_range(b"10", 10, 10_000), Ok(10));
    assert_eq!(parse_in_range(b"9", 10, 10_000), Err(Invalid::OutOfRange));
    assert_eq!(
        parse_in_range(b"10001", 10, 10_000),
        Err(Invalid::OutOfRange)
    );
}

#[path = "../common/probe.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod probe;

mod probing {
    use super::probe::*;

    #[test]
    fn rtt_sample_is_arrival_minus_own_send_time() {
        assert_eq!(rtt_sample_us(1_000_000, 21_000_000), Some(20_000));
        assert_eq!(rtt_sample_us(5, 4), None, "answer before probe");
        assert_eq!(rtt_sample_us(0, 61_000_000_000), None);
    }

    #[test]
    fn min_rtt_is_the_least_of_the_last_5_to_10_seconds() {
        const S: u64 = 1_000_000_000;
        let mut min = MinRtt::new();
        assert_eq!(min.min_us(), 0);
        min.sample(30_000, S);
        min.sample(20_000, 2 * S);
        min.sample(50_000, 3 * S);
        assert_eq!(min.min_us(), 20_000);
        // A new bucket at 7 s keeps the last one's minimum...
        min.sample(80_000, 7 * S);
        assert_eq!(min.min_us(), 20_000);
        // ...until it is the previous one's previous: a base delay that grew is read.
        min.sample(90_000, 12 * S);
        assert_eq!(min.min_us(), 80_000);
        min.sample(90_000, 30 * S);
        assert_eq!(min.min_us(), 90_000);
        min.sample(0, 31 * S);
        assert_eq!(
            min.min_us(),
            1,
            "a zero sample counts as 1 us: 0 means none"
        );
    }

    #[test]
    fn rtt_smoothing_follows_rfc_6298() {
        let mut rtt = RttEstimator::default();
        rtt.sample(20_000);
        assert_eq!((rtt.srtt_us, rtt.rttvar_us), (20_000, 10_000));
        rtt.sample(28_000);
        // rttvar = 3/4 * 10000 + 1/4 * 8000; srtt = 7/8 * 20000 + 1/8 * 28000
        assert_eq!((rtt.srtt_us, rtt.rttvar_us), (21_000, 9_500));
        for _ in 0..200 {
            rtt.sample(100_000);
        }
        assert!(rtt.srtt_us.abs_diff(100_000) < 100, "{rtt:?}");
        assert!(rtt.rttvar_us < 100, "{rtt:?}");
    }

    #[test]
    fn loss_window_counts_unanswered_probes_old_enough_to_judge() {
        let mut w = LossWindow::new();
        assert_eq!(w.loss_ppm(10, 1), None);
        for i in 0..200u64 {
            let seq = w.sent(1_000 + i * 100);
            if seq % 10 != 0 {
                assert_eq!(
                    w.answered(seq),
                    Some(1_000 + i * 100),
                    "the send time comes back"
                );
            }
        }
        // The window holds the last 100 probes: 10 of them unanswered.
        assert_eq!(w.loss_ppm(1_000_000, 0), Some(100_000));
        // Probes younger than the timeout are not judged yet.
        assert_eq!(
            w.loss_ppm(1_000 + 199 * 100, 150),
            Some(10 * 1_000_000 / 98)
        );
        // An answer to a probe that left the window, or a second answer, changes nothing.
        assert_eq!(w.answered(10), None);
        assert_eq!(w.answered(11), None);
        assert_eq!(w.answered(199), None);
        // Cleared (a path taken out of the tunnel): empty, nothing to judge, no stale answer.
        assert!(!w.is_empty());
        let last = w.sent(50_000);
        w.clear();
        assert!(w.is_empty());
        assert_eq!(w.loss_ppm(1_000_000, 0), None);
        assert_eq!(w.answered(last), None);
        assert_eq!(w.sent(60_000), 0);
    }

    #[test]
    fn failover_needs_an_answering_peer() {
        use PathState::*;
        let limit = 300;
        assert_eq!(judge(Up, 0, 300, limit, false), Up);
        assert_eq!(judge(Up, 0, 301, limit, false), Down);
        assert_eq!(
            judge(Unknown, 0, 10_000, limit, false),
            Unknown,
            "no responder at all"
        );
        assert_eq!(
            judge(Unknown, 0, 301, limit, true),
            Down,
            "the other path answers"
        );
        assert_eq!(judge(Down, 0, 10_000, limit, true), Down);
        let rtt = RttEstimator {
            srtt_us: 100_000,
            rttvar_us: 10_000,
        };
        assert_eq!(overdue_ns(3, 100, &rtt), 300_000_000 + 140_000_000);
    }

    fn path(srtt_ms: u64) -> PathView {
        PathView {
            srtt_us: srtt_ms * 1000,
            ..PathView::default()
        }
    }

    fn settle(start: u32, primary: &PathView, secondary: &PathView, steps: usize) -> u32 {
        (0..steps).fold(start, |p, _| rtt_step(p, primary, secondary))
    }

    #[test]
    fn rtt_scheduler_favours_the_faster_path() {
        // Equal paths: no movement from the even start.
        assert_eq!(settle(RTT_START_PERMILLE, &path(20), &path(21), 50), 500);
        // 20 ms primary, 100 ms secondary, nothing queued: all on the primary in 10 steps.
        assert_eq!(settle(500, &path(20), &path(100), 9), 50);
        assert_eq!(settle(500, &path(20), &path(100), 10), 0);
        // The same the other way round.
        assert_eq!(settle(500, &path(100), &path(20), 10), 1000);
        // Costs within 10 % (queueing on the fast path has caught up, or equal paths): the
        // share drifts back towards 50/50 by 2 permille per step.
        assert_eq!(rtt_step(300, &path(95), &path(100)), 302);
        assert_eq!(rtt_step(1000, &path(20), &path(20)), 998);
        assert_eq!(rtt_step(499, &path(20), &path(20)), 500);
        assert_eq!(settle(0, &path(20), &path(20), 250), 500);
        // Small differences move in small steps: 20 % apart, 5 permille.
        assert_eq!(rtt_step(500, &path(20), &path(24)), 495);
        // Saturated paths (queueing makes both costs large): steps stay small.
        assert_eq!(rtt_step(500, &path(400), &path(520)), 493);
    }

    #[test]
    fn rtt_scheduler_backs_off_loss_and_overdriven_paths() {
        // Equal delay, 2 % loss on the primary: its cost triples, traffic leaves it.
        let lossy = PathView {
            loss_ppm: 20_000,
            ..path(20)
        };
        assert_eq!(settle(500, &lossy, &path(20), 10), 1000);
        // The cheaper primary is sent 8 Mbit/s but delivers 5: it loses share anyway.
        let overdriven = PathView {
            sent_kbps: 8000,
            delivered_kbps: 5000,
            ..path(20)
        };
        assert!(overdriven.overdriven());
        assert_eq!(rtt_step(0, &overdriven, &path(100)), 20);
        // A path delivering what it is sent is not overdriven; a trickle is never judged.
        let keeping_up = PathView {
            sent_kbps: 8000,
            delivered_kbps: 7900,
            ..path(20)
        };
        assert!(!keeping_up.overdriven());
        // A peer that reports receiving nothing at all says nothing about the paths.
        let unread = PathView {
            delivered_kbps: 0,
            ..overdriven
        };
        assert!(unread.overdriven());
        assert_eq!(rtt_step(0, &unread, &path(100)), 0);
        let trickle = PathView {
            sent_kbps: 400,
            delivered_kbps: 0,
            ..path(20)
        };
        assert!(!trickle.overdriven());
    }

    #[test]
    fn rates_from_counter_readings() {
        assert_eq!(kbps(0, 1_250_000, 1_000_000_000), 10_000);
        assert_eq!(kbps(10, 5, 1_000_000_000), 0, "a counter never goes back");
        assert_eq!(kbps(0, 100, 0), 0);
    }
}

#[path = "../common/reorder.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod reorder;

mod reordering {
    use super::reorder::*;

    const MS: u64 = 1_000_000;
    const LIMITS: Limits = Limits {
        wait_ns: 50 * MS,
        max_bytes: 1 << 20,
    };

    /// A buffer of 64 slots and what it delivered: (sequence, why).
    struct Harness {
        buf: Reorder<u32, 64>,
        out: Vec<(u32, Release)>,
    }

    impl Harness {
        fn new() -> Self {
            Self {
                buf: Reorder::new(),
                out: Vec::new(),
            }
        }

        fn arrive(&mut self, seq: u32, now_ms: u64) {
            self.arrive_sized(seq, 100, now_ms, LIMITS);
        }

        fn arrive_sized(&mut self, seq: u32, len: usize, now_ms: u64, limits: Limits) {
            let out = &mut self.out;
            self.buf
                .arrive(seq, seq, len, now_ms * MS, limits, |s, why| {
                    out.push((s, why))
                });
        }

        fn expire(&mut self, now_ms: u64) {
            let out = &mut self.out;
            self.buf
                .expire(now_ms * MS, LIMITS, |s, why| out.push((s, why)));
        }

        fn seqs(&self) -> Vec<u32> {
            self.out.iter().map(|&(s, _)| s).collect()
        }
    }

    #[test]
    fn fifo_keeps_order_and_refuses_past_capacity() {
        let mut q: Fifo<u32, 4> = Fifo::new();
        assert!(q.is_empty());
        for round in 0..3u32 {
            for i in 0..4 {
                assert_eq!(q.push(round * 10 + i), Ok(()));
            }
            assert_eq!(q.push(99), Err(99), "full");
            assert_eq!(q.len(), 4);
            assert_eq!(q.pop(), Some(round * 10));
            assert_eq!(q.push(round * 10 + 4), Ok(()), "wraps around");
            let rest: Vec<u32> = core::iter::from_fn(|| q.pop()).collect();
            assert_eq!(rest, [1, 2, 3, 4].map(|i| round * 10 + i));
            assert_eq!(q.pop(), None);
        }
    }

    #[test]
    fn in_order_datagrams_pass_at_once() {
        let mut h = Harness::new();
        for seq in 100..200 {
            h.arrive(seq, 0);
        }
        assert_eq!(h.seqs(), (100..200).collect::<Vec<_>>());
        assert!(h.out.iter().all(|&(_, why)| why == Release::InOrder));
        assert_eq!(h.buf.held(), 0);
        assert_eq!(h.buf.deadline(), None);
        assert_eq!(
            h.buf.counters,
            Counters {
                in_order: 100,
                ..Counters::default()
            }
        );
    }

    #[test]
    fn a_datagram_after_a_gap_waits_until_the_gap_fills() {
        let mut h = Harness::new();
        h.arrive(0, 0);
        h.arrive(2, 1);
        h.arrive(3, 2);
        assert_eq!(h.seqs(), [0]);
        assert_eq!(h.buf.held(), 2);
        assert_eq!(
            h.buf.deadline(),
            Some(51 * MS),
            "the first held one's wait ends first"
        );
        h.arrive(1, 10);
        assert_eq!(
            h.out,
            [
                (0, Release::InOrder),
                (1, Release::InOrder),
                (2, Release::Filled),
                (3, Release::Filled)
            ]
        );
        assert_eq!(h.buf.held(), 0);
        assert_eq!(h.buf.deadline(), None);
        assert_eq!(h.buf.counters.held, 2);
        assert_eq!(h.buf.counters.filled, 2);
        assert_eq!(h.buf.counters.deepest, 2);
    }

    #[test]
    fn the_wait_ends_on_time_and_a_late_datagram_still_goes() {
        let mut h = Harness::new();
        h.arrive(0, 0);
        h.arrive(2, 10);
        h.arrive(4, 30);
        h.expire(59);
        assert_eq!(h.seqs(), [0], "nobody's wait has ended yet");
        assert_eq!(h.buf.deadline(), Some(60 * MS));
        h.expire(60);
        assert_eq!(h.out[1..], [(2, Release::Timeout)], "4 has 20 ms left");
        assert_eq!(h.buf.deadline(), Some(80 * MS));
        h.expire(80);
        assert_eq!(h.out[2..], [(4, Release::Timeout)]);
        assert_eq!(h.buf.deadline(), None);
        // The gaps were given up; their datagrams are delivered when they come, not dropped.
        h.arrive(1, 90);
        h.arrive(3, 91);
        h.arrive(5, 92);
        assert_eq!(h.seqs(), [0, 2, 4, 1, 3, 5]);
        assert_eq!(h.buf.counters.late, 2);
        assert_eq!(h.buf.counters.timeout, 2);
        assert_eq!(h.buf.counters.skipped, 2, "gaps 1 and 3 were given up");
    }

    #[test]
    fn skipped_counts_every_number_given_up_and_nothing_delivered() {
        let mut h = Harness::new();
        h.arrive(0, 0);
        h.arrive(1, 0);
        assert_eq!(h.buf.counters.skipped, 0, "in order: nothing given up");
        // Too far ahead to hold, with nothing held: 2..=99 are given up at once.
        h.arrive(100, 1);
        assert_eq!(h.seqs(), [0, 1, 100]);
        assert_eq!(h.buf.counters.skipped, 98);
        // A gap of three filled in time: nothing given up.
        h.arrive(104, 2);
        h.arrive(102, 3);
        h.arrive(101, 4);
        h.arrive(103, 5);
        assert_eq!(h.buf.counters.skipped, 98);
        // Held past a gap of two, then flushed: both given up.
        h.arrive(107, 6);
        h.buf.flush(|_, _| {});
        assert_eq!(h.buf.counters.skipped, 100);
    }

    #[test]
    fn a_timeout_releases_everything_before_the_expired_datagram() {
        let mut h = Harness::new();
        h.arrive(0, 0);
        h.arrive(5, 0);
        h.arrive(3, 20);
        h.expire(50);
        // 5's wait ended; 3 arrived later but comes first, so it goes too, in order.
        assert_eq!(h.seqs(), [0, 3, 5]);
        assert_eq!(h.buf.held(), 0);
    }

    #[test]
    fn the_byte_cap_gives_up_the_oldest_gap() {
        let mut h = Harness::new();
        let limits = Limits {
            wait_ns: 50 * MS,
            max_bytes: 300,
        };
        h.arrive_sized(0, 100, 0, limits);
        h.arrive_sized(2, 100, 0, limits);
        h.arrive_sized(3, 100, 0, limits);
        h.arrive_sized(5, 100, 0, limits);
        assert_eq!(h.buf.held_bytes(), 300);
        h.arrive_sized(7, 100, 0, limits);
        assert_eq!(h.seqs(), [0, 2, 3], "the gap at 1 was given up for room");
        assert_eq!(h.buf.held_bytes(), 200);
        assert_eq!(h.buf.counters.overflow, 2);
        let too_big = Limits {
            wait_ns: 50 * MS,
            max_bytes: 50,
        };
        h.arrive_sized(9, 100, 0, too_big);
        assert_eq!(
            h.seqs(),
            [0, 2, 3, 5, 7, 9],
            "it can never fit: everything goes"
        );
    }

    #[test]
    fn the_window_is_the_slot_count() {
        let mut h = Harness::new();
        h.arrive(0, 0);
        h.arrive(2, 0);
        h.arrive(64, 0);
        assert_eq!(h.seqs(), [0], "64 is within 64 slots of the expected 1");
        h.arrive(65, 0);
        assert_eq!(h.seqs(), [0, 2], "65 is not: the gap at 1 goes");
        h.arrive(1000, 0);
        assert_eq!(h.seqs(), [0, 2, 64, 65, 1000]);
        assert_eq!(h.buf.held(), 0);
        h.arrive(1001, 0);
        assert_eq!(h.out.last(), Some(&(1001, Release::InOrder)));
    }

    #[test]
    fn duplicates_are_delivered_not_held_twice() {
        let mut h = Harness::new();
        h.arrive(0, 0);
        h.arrive(2, 0);
        h.arrive(2, 0);
        h.arrive(0, 0);
        assert_eq!(
            h.seqs(),
            [0, 2, 0],
            "the second 2 goes at once; the second 0 is late"
        );
        assert_eq!(h.buf.held(), 1);
        assert_eq!(h.buf.counters.late, 2);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut h = Harness::new();
        let start = u32::MAX - 2;
        h.arrive(start, 0);
        h.arrive(1, 0);
        h.arrive(u32::MAX, 0);
        h.arrive(start + 1, 0);
        h.arrive(0, 0);
        assert_eq!(h.seqs(), [start, start + 1, u32::MAX, 0, 1]);
    }

    #[test]
    fn a_restarted_peer_resynchronises() {
        let mut h = Harness::new();
        h.arrive(10, 0);
        h.arrive(12, 0);
        h.arrive(5_000_000, 1);
        assert_eq!(h.seqs(), [10, 12, 5_000_000]);
        assert_eq!(h.buf.counters.resyncs, 1);
        h.arrive(5_000_001, 2);
        assert_eq!(h.out.last(), Some(&(5_000_001, Release::InOrder)));
    }

    #[test]
    fn flush_delivers_everything_held_in_order() {
        let mut h = Harness::new();
        h.arrive(0, 0);
        for seq in [9, 3, 7, 5] {
            h.arrive(seq, 0);
        }
        let out = &mut h.out;
        h.buf.flush(|s, why| out.push((s, why)));
        assert_eq!(h.seqs(), [0, 3, 5, 7, 9]);
        assert!(h.out[1..].iter().all(|&(_, why)| why == Release::Flush));
        assert_eq!(h.buf.held(), 0);
        assert_eq!(h.buf.deadline(), None);
        // The sequence goes on after the last one delivered: a missing one is late, the next
        // one in order.
        h.arrive(4, 1);
        h.arrive(10, 1);
        assert_eq!(h.out[5..], [(4, Release::Late), (10, Release::InOrder)]);
        // Forgotten, it starts again from whatever comes.
        h.buf.forget();
        h.arrive(500, 2);
        h.arrive(501, 2);
        assert_eq!(
            h.out[7..],
            [(500, Release::InOrder), (501, Release::InOrder)]
        );
    }

    #[test]
    fn a_session_started_at_the_announced_number_waits_for_its_first_datagram() {
        let mut h = Harness::new();
        // The sender announced 1000 next; 1001 went over a faster path and comes first.
        h.buf.start_at(1000);
        h.arrive(1001, 0);
        assert!(h.out.is_empty(), "held for 1000");
        h.arrive(1000, 3);
        assert_eq!(h.out, [(1000, Release::InOrder), (1001, Release::Filled)]);
        // Started at whatever came first instead, 1000 would have been late.
        let mut first_come = Harness::new();
        first_come.arrive(1001, 0);
        first_come.arrive(1000, 3);
        assert_eq!(
            first_come.out,
            [(1001, Release::InOrder), (1000, Release::Late)]
        );
        // An announced number that never comes is waited for once, then given up.
        let mut h = Harness::new();
        h.buf.start_at(7);
        h.arrive(9, 0);
        h.expire(50);
        assert_eq!(h.out, [(9, Release::Timeout)]);
        // With datagrams held, it changes nothing.
        h.arrive(12, 60);
        h.buf.start_at(0);
        h.arrive(10, 61);
        assert_eq!(h.out[1..], [(10, Release::InOrder)]);
    }

    #[test]
    fn the_wait_is_the_delay_spread_plus_jitter_within_the_cap() {
        // The receiver's clock is far ahead of the sender's, and both wrap during the
        // samples: it cancels out.
        const US: u32 = 1;
        let offset = u32::MAX - 30_000 * US;
        let mut fast = RelativeDelay::default();
        let mut slow = RelativeDelay::default();
        for i in 0..100u32 {
            let sent = (u32::MAX - 50_000).wrapping_add(i * 1000);
            fast.sample(sent, sent.wrapping_add(offset).wrapping_add(10_000));
            slow.sample(
                sent,
                sent.wrapping_add(offset)
                    .wrapping_add(60_000 + (i % 2) * 2000),
            );
        }
        assert_eq!(fast.smoothed_us, offset.wrapping_add(10_000));
        assert_eq!(fast.deviation_us, 0);
        assert!(slow.deviation_us > 0 && slow.deviation_us <= 2000);
        let (spread, deviation) = delay_spread_us(&[fast, slow]);
        assert!((50_000..=52_000).contains(&spread), "{spread}");
        assert_eq!(spread, delay_spread_us(&[slow, fast]).0, "either order");
        assert_eq!(deviation, u64::from(slow.deviation_us));
        assert_eq!(slow.later_than_us(&fast), spread as i64);
        assert_eq!(fast.later_than_us(&slow), -(spread as i64));
        let wait = wait_ns(&[fast, slow], 5 * MS, 500 * MS);
        assert_eq!(wait, (spread + 2 * deviation) * 1000 + 5 * MS);
        assert_eq!(
            wait_ns(&[fast, slow], 5 * MS, 30 * MS),
            30 * MS,
            "the hard cap"
        );
        assert_eq!(
            wait_ns(&[fast], 5 * MS, 500 * MS),
            5 * MS,
            "one path: margin only"
        );
        assert_eq!(
            wait_ns(&[RelativeDelay::default(), fast], 5 * MS, 500 * MS),
            5 * MS
        );
        // A spike of 20 ms raises the deviation at once; it then decays, slowly.
        let mut spiky = slow;
        let sent = 7_000_000u32;
        let base = spiky.smoothed_us;
        spiky.sample(sent, sent.wrapping_add(base).wrapping_add(20_000));
        assert!(spiky.deviation_us >= 19_000, "{}", spiky.deviation_us);
        let peak = spiky.deviation_us;
        for i in 1..=100u32 {
            let at = sent.wrapping_add(i * 1000);
            spiky.sample(at, at.wrapping_add(spiky.smoothed_us));
        }
        assert!(
            spiky.deviation_us < peak && spiky.deviation_us > peak * 3 / 4,
            "{} after 100 quiet samples, from {peak}",
            spiky.deviation_us
        );
        assert_eq!(wait_ns(&[], 5 * MS, MS), MS);
    }

    /// Two paths, one 40 ms slower, datagrams alternating between them, some lost: with a
    /// wait above the delay difference, everything that arrives is delivered exactly once
    /// and in order, and nothing waits longer than the wait.
    #[test]
    fn two_paths_of_unequal_delay_come_out_in_order() {
        let mut h = Harness::new();
        let mut lcg: u64 = 1;
        let mut rand = move || {
            lcg = lcg
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (lcg >> 33) as u32
        };
        // (arrival in µs, sequence) for 2,000 datagrams sent 1 ms apart.
        let mut arrivals: Vec<(u64, u32)> = Vec::new();
        let mut lost = std::collections::HashSet::new();
        for seq in 0..2000u32 {
            if rand() % 100 == 0 {
                lost.insert(seq);
                continue;
            }
            let delay_ms = if seq % 2 == 0 { 10 } else { 50 };
            arrivals.push((
                u64::from(seq) * 1000 + delay_ms * 1000 + u64::from(rand() % 500),
                seq,
            ));
        }
        arrivals.sort();
        let limits = Limits {
            wait_ns: 45 * MS,
            max_bytes: 1 << 20,
        };
        let mut delivered_at: Vec<(u32, u64)> = Vec::new();
        let mut arrived_at = std::collections::HashMap::new();
        for &(t_us, seq) in &arrivals {
            let now = t_us * 1000;
            // The timer runs whenever it is due before this arrival.
            while let Some(due) = h.buf.deadline().filter(|&d| d <= now) {
                let out = &mut delivered_at;
                h.buf.expire(due, limits, |s, _| out.push((s, due)));
            }
            arrived_at.insert(seq, now);
            let out = &mut delivered_at;
            h.buf
                .arrive(seq, seq, 100, now, limits, |s, _| out.push((s, now)));
        }
        let out = &mut delivered_at;
        h.buf.flush(|s, _| out.push((s, u64::MAX)));
        let seqs: Vec<u32> = delivered_at.iter().map(|&(s, _)| s).collect();
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "delivered in order");
        assert_eq!(seqs.len(), arrivals.len(), "each exactly once");
        for &(seq, at) in delivered_at.iter().filter(|&&(_, at)| at != u64::MAX) {
            assert!(
                at - arrived_at[&seq] <= limits.wait_ns,
                "{seq} waited too long"
            );
        }
        assert!(
            h.buf.counters.timeout > 0,
            "the lost ones' gaps were given up on time"
        );
        assert_eq!(h.buf.counters.late, 0);
    }
}

#[path = "../common/seq.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod seq;

mod sequencing {
    use super::seq::*;

    #[test]
    fn data_header_round_trips_and_rejects_foreign_datagrams() {
        let header = DataHeader {
            path: 7,
            token: 0xdead_beef,
            seq: 0x0102_0304,
            path_seq: u32::MAX,
            sent_us: 0x0a0b_0c0d,
        };
        let wire = header.encode();
        assert_eq!(&wire[..4], &[0x4d, 0x55, 0x20, 7]);
        assert_eq!(&wire[16..], &[0x0a, 0x0b, 0x0c, 0x0d], "send time last");
        let mut datagram = wire.to_vec();
        datagram.extend_from_slice(b"tunnel payload");
        assert_eq!(DataHeader::decode(&datagram), Some(header));
        assert!(header.of_session(SEEN | 0xdead_beef));
        assert!(!header.of_session(SEEN | 0xdead_beee), "another session");
        assert!(!header.of_session(0xdead_beef), "no session announced yet");
        assert_eq!(
            DataHeader::decode(&wire[..HEADER_LEN - 1]),
            None,
            "too short"
        );
        for (at, value) in [(0, 0x4e), (1, 0x56), (2, 0x10), (2, 0x21), (3, 8)] {
            let mut bad = wire;
            bad[at] = value;
            assert_eq!(DataHeader::decode(&bad), None, "byte {at} = {value}");
        }
    }

    /// The datagram path's two counters and the reader's window.
    struct Path {
        word: u64,
        received: u64,
        loss: GapLoss,
    }

    impl Path {
        fn new() -> Self {
            Self {
                word: 0,
                received: 0,
                loss: GapLoss::new(),
            }
        }

        fn arrive(&mut self, seq: u32) {
            if let Some(word) = advance_highest(self.word, seq) {
                self.word = word;
            }
            self.received += 1;
        }

        fn read(&mut self) {
            self.loss.read(self.word, self.received);
        }
    }

    /// Arrivals `seqs`, with a reading after every `per_interval` of them; the first reading
    /// comes after the first arrival (as the receiver's first reading follows the first one).
    fn path_over(seqs: impl IntoIterator<Item = u32>, per_interval: usize) -> Path {
        let mut path = Path::new();
        for (i, seq) in seqs.into_iter().enumerate() {
            path.arrive(seq);
            if i == 0 || i % per_interval == 0 {
                path.read();
            }
        }
        path.read();
        path
    }

    #[test]
    fn the_highest_word_moves_forward_only_unless_the_sender_restarted() {
        assert_eq!(advance_highest(0, 5), Some(SEEN | 5), "the first one");
        assert_eq!(advance_highest(SEEN | 5, 6), Some(SEEN | 6));
        assert_eq!(advance_highest(SEEN | 5, 5), None, "a duplicate");
        assert_eq!(advance_highest(SEEN | 5, 4), None, "a late one");
        assert_eq!(
            advance_highest(SEEN | u32::MAX as u64, 0),
            Some(SEEN),
            "wraps"
        );
        assert_eq!(
            advance_highest(SEEN | 3_000_000_000, 7),
            Some(SEEN | 7),
            "far from it: restarted"
        );
    }

    #[test]
    fn a_clean_path_reads_no_loss_even_reordered() {
        let in_order = path_over(0..10_000, 1000);
        assert_eq!(in_order.loss.loss_ppm(), Some(0));
        assert_eq!(
            in_order.loss.expected(),
            9_999,
            "counted from the first arrival"
        );
        let swapped = path_over((0..10_000u32).map(|s| s ^ 1), 1000);
        assert_eq!(swapped.loss.loss_ppm(), Some(0));
        assert_eq!(GapLoss::new().loss_ppm(), None, "nothing expected yet");
    }

    #[test]
    fn one_percent_loss_reads_ten_thousand_ppm() {
        // 9,900 arrivals of 10,001 sent, read in nine intervals (within the window).
        let path = path_over((0..=10_000u32).filter(|s| s % 100 != 42), 1100);
        assert_eq!(path.loss.expected(), 10_000);
        assert_eq!(path.loss.loss_ppm(), Some(10_000));
        // 100 ppm resolution: one datagram in 10,000.
        let one_lost = path_over((0..=10_000u32).filter(|&s| s != 5000), 1111);
        assert_eq!(one_lost.loss.loss_ppm(), Some(100));
    }

    #[test]
    fn the_window_forgets_old_intervals() {
        let mut path = path_over((0..10_000u32).filter(|s| s % 10 != 1), 900);
        assert!(path.loss.loss_ppm().unwrap() > 90_000);
        for seq in 10_000..20_000 {
            path.arrive(seq);
            if seq % 1000 == 999 {
                path.read();
            }
        }
        assert_eq!(path.loss.loss_ppm(), Some(0), "ten clean intervals later");
    }

    #[test]
    fn a_late_datagram_fills_its_gap_and_a_restart_is_no_loss() {
        let mut path = Path::new();
        path.arrive(0);
        path.read();
        for seq in [1, 3, 4, 5] {
            path.arrive(seq);
        }
        path.read();
        assert_eq!(path.loss.loss_ppm(), Some(200_000), "2 is missing so far");
        path.arrive(2);
        path.arrive(6);
        path.read();
        assert_eq!(path.loss.loss_ppm(), Some(0), "2 arrived an interval late");
        path.arrive(3_000_000_000);
        path.arrive(3_000_000_001);
        path.read();
        path.arrive(3_000_000_002);
        path.read();
        assert_eq!(
            path.loss.loss_ppm(),
            Some(0),
            "a restarted sender is not a gap of 3e9"
        );
    }
}

#[path = "../common/control.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod control;

mod path_control {
    use super::control::*;
    use super::parse::Ipv4;
    use super::seq::{DataHeader, HEADER_LEN, MAX_PATHS};

    const S: u64 = 1_000_000_000;

    #[test]
    fn control_messages_round_trip_exactly() {
        let probe = Control::Probe(Probe {
            path: 1,
            token: 0x0102_0304,
            seq: 7,
            sent_ns: 0x1122_3344_5566_7788,
            primary_addr: [10, 0, 1, 2],
            next_seq: 0x0a0b_0c0d,
        });
        let reply = Control::Reply(Reply {
            path: 7,
            token: 9,
            seq: u32::MAX,
            loss_ppm: 10_000,
            rx_bytes: 1 << 40,
            rx_datagrams: 12345,
            capacity_kbps: 9_876,
            takes_repairs: true,
        });
        let unknown = Control::UnknownSession { path: 0, token: 5 };
        let closing = Control::Closing { path: 7, token: 6 };
        let unmeasured = Control::Reply(Reply {
            path: 0,
            token: 9,
            seq: 1,
            loss_ppm: LOSS_UNKNOWN,
            rx_bytes: 0,
            rx_datagrams: 0,
            capacity_kbps: 0,
            takes_repairs: false,
        });
        for message in [probe, reply, unknown, closing, unmeasured] {
            let mut wire = [0u8; PROBE_LEN];
            let len = message.encode(&mut wire);
            assert_eq!(Control::decode(&wire[..len]), Some(message));
            // One byte more or less is not a control message.
            assert_eq!(Control::decode(&wire[..len - 1]), None);
            if len < PROBE_LEN {
                assert_eq!(Control::decode(&wire[..len + 1]), None);
            }
        }
        // A loss beyond 100 % reads as 100 %; "unknown" stays unknown (above).
        let mut wire = [0u8; PROBE_LEN];
        reply.encode(&mut wire);
        wire[12..16].copy_from_slice(&2_000_000u32.to_be_bytes());
        let Some(Control::Reply(read)) = Control::decode(&wire) else {
            panic!("not a reply");
        };
        assert_eq!(read.loss_ppm, 1_000_000);
        // The repair flag is the path byte's bit 7, in replies only; the path stays whole.
        assert_eq!(wire[3], 0x87);
        let mut closing_wire = [0u8; PROBE_LEN];
        let len = closing.encode(&mut closing_wire);
        closing_wire[3] |= 0x80;
        assert_eq!(Control::decode(&closing_wire[..len]), None);
    }

    #[test]
    fn foreign_and_data_datagrams_are_not_control() {
        let mut wire = [0u8; PROBE_LEN];
        let probe = Control::Probe(Probe {
            path: 0,
            token: 1,
            seq: 1,
            sent_ns: 1,
            primary_addr: [10, 0, 1, 2],
            next_seq: 0x0a0b_0c0d,
        });
        probe.encode(&mut wire);
        for (at, value) in [(0, 0), (1, 0), (2, 0x11), (2, 0x24), (3, 8), (31, 1)] {
            let mut bad = wire;
            bad[at] = value;
            assert_eq!(Control::decode(&bad), None, "byte {at} = {value}");
        }
        let data = DataHeader {
            path: 0,
            token: 1,
            seq: 1,
            path_seq: 1,
            sent_us: 1,
        }
        .encode();
        let mut sequenced = data.to_vec();
        sequenced.extend_from_slice(&[0; 16]);
        assert_eq!(
            Control::decode(&sequenced),
            None,
            "a sequenced datagram is data"
        );
        assert_eq!(
            Control::decode(b"\x48\x00\x00\x01 an OpenVPN P_DATA_V2"),
            None
        );
    }

    #[test]
    fn answering_never_amplifies() {
        let mut wire = [0u8; PROBE_LEN];
        let reply_len = Control::Reply(Reply {
            path: 0,
            token: 0,
            seq: 0,
            loss_ppm: 0,
            rx_bytes: 0,
            rx_datagrams: 0,
            capacity_kbps: 0,
            takes_repairs: true,
        })
        .encode(&mut wire);
        assert!(
            reply_len <= PROBE_LEN,
            "a reply is no longer than its probe"
        );
        let unknown_len = Control::UnknownSession { path: 0, token: 0 }.encode(&mut wire);
        assert!(
            unknown_len < HEADER_LEN,
            "shorter than any sequenced datagram"
        );
        let closing_len = Control::Closing { path: 0, token: 0 }.encode(&mut wire);
        assert!(
            closing_len < HEADER_LEN,
            "shorter than any sequenced datagram"
        );
    }

    #[test]
    fn a_closing_peer_gets_no_header_at_once_and_stale_answers_do_not_revive_it() {
        let mut peer = Capability::new();
        peer.probe_sent(0);
        assert!(peer.answered(0, S / 10));
        assert!(peer.sequenced());
        // A probe went out at 2 s; the peer closed at 2.01 s; its answer to that probe,
        // sent before it closed, arrives at 2.02 s by another path.
        peer.probe_sent(2 * S);
        peer.closing(2 * S + S / 100);
        assert!(!peer.sequenced(), "closing stops the header at once");
        assert_eq!(peer.kind, PeerKind::Plain);
        assert!(
            !peer.answered(2 * S, 2 * S + S / 50),
            "an answer from before the closing"
        );
        assert!(!peer.sequenced());
        // Asked again only after the plain peer's retry time, then believed again.
        let closed = 2 * S + S / 100;
        assert!(!peer.should_probe(closed + Capability::RETRY_NS - 1));
        assert!(peer.should_probe(closed + Capability::RETRY_NS));
        peer.probe_sent(closed + Capability::RETRY_NS);
        assert!(peer.answered(
            closed + Capability::RETRY_NS,
            closed + Capability::RETRY_NS + S / 10
        ));
        assert!(peer.sequenced(), "it runs MPUDP again");
    }

    #[test]
    fn the_responder_says_closing_once_per_answered_path_and_after_unload_answers_nothing() {
        let route = |last: u8| ReturnRoute {
            local: (Ipv4(u32::from_be_bytes([10, 0, 1, 1])), 5000),
            remote: (Ipv4(u32::from_be_bytes([10, 0, 1, last])), 40001),
            ifindex: 2,
            token: 9,
        };
        let mut paths = AnsweredPaths::new();
        assert_eq!(
            paths.close(false),
            [None; MAX_PATHS],
            "nothing answered, nothing said"
        );
        assert!(paths.answering(0, route(2)));
        assert!(paths.answering(0, route(3)));
        assert!(paths.answering(3, route(4)));
        assert!(
            paths.answering(MAX_PATHS, route(5)),
            "an unknown path is answered, not kept"
        );
        let said = paths.close(false);
        assert_eq!(said[0], Some(route(3)), "the latest way back");
        assert_eq!(said[3], Some(route(4)));
        assert_eq!(said.iter().flatten().count(), 2);
        assert_eq!(paths.close(false), [None; MAX_PATHS], "said once");
        // `recv/probing 0` then 1: answering again.
        assert!(paths.answering(1, route(2)));
        assert_eq!(paths.close(true).iter().flatten().count(), 1);
        assert!(!paths.answering(1, route(2)), "closed for good: no answer");
        assert_eq!(paths.close(true), [None; MAX_PATHS]);
    }

    #[test]
    fn the_header_starts_only_after_an_answer_and_stops_when_the_peer_goes_quiet() {
        let mut peer = Capability::new();
        assert!(!peer.sequenced());
        assert!(peer.should_probe(0));
        peer.probe_sent(0);
        assert!(peer.answered(0, S / 10));
        assert!(peer.sequenced());
        peer.tick(S / 10 + S - 1);
        assert!(peer.sequenced());
        peer.tick(S / 10 + S);
        assert!(!peer.sequenced(), "silent for 1 s: the module may be gone");
        assert_eq!(peer.kind, PeerKind::Unknown);
        assert!(peer.answered(2 * S, 2 * S));
        peer.unknown_session();
        assert!(
            !peer.sequenced(),
            "the peer restarted: no header until it answers again"
        );
    }

    #[test]
    fn a_peer_without_mpudp_is_left_alone() {
        let mut peer = Capability::new();
        for i in 0..Capability::GIVE_UP_AFTER {
            assert!(peer.should_probe(u64::from(i) * S / 10));
            peer.probe_sent(u64::from(i) * S / 10);
        }
        assert_eq!(peer.kind, PeerKind::Plain);
        assert!(!peer.sequenced());
        let gave_up = S * 9 / 10;
        assert!(!peer.should_probe(gave_up + Capability::RETRY_NS - 1));
        assert!(peer.should_probe(gave_up + Capability::RETRY_NS));
        peer.probe_sent(gave_up + Capability::RETRY_NS);
        assert!(peer.answered(
            gave_up + Capability::RETRY_NS,
            gave_up + Capability::RETRY_NS + S / 10
        ));
        assert!(peer.sequenced(), "it loaded MPUDP since");
    }
}

#[path = "../common/spread.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod spread;

mod spreading {
    use super::seq::MAX_PATHS;
    use super::spread::*;

    fn cycle(shares: &Shares) -> Vec<u8> {
        let mut slots = vec![u8::MAX; CYCLE];
        schedule(shares, |slot, path| slots[slot] = path);
        slots
    }

    /// After every prefix of the cycle, each path's count is within one datagram of its
    /// share of the prefix, and over the whole cycle it is exactly its share.
    fn assert_smooth_and_exact(shares: &Shares) {
        let slots = cycle(shares);
        let mut counts = [0i64; MAX_PATHS];
        for (n, &path) in slots.iter().enumerate() {
            assert!(usize::from(path) < MAX_PATHS);
            assert!(
                shares.0[usize::from(path)] > 0,
                "{shares:?}: a path without share"
            );
            counts[usize::from(path)] += 1;
            for (i, &count) in counts.iter().enumerate() {
                // count vs (n + 1) * share / CYCLE, in thousandths.
                let ideal = (n as i64 + 1) * i64::from(shares.0[i]);
                assert!(
                    (count * CYCLE as i64 - ideal).abs() < CYCLE as i64,
                    "{shares:?}: path {i} has {count} after {} slots",
                    n + 1
                );
            }
        }
        for (i, &count) in counts.iter().enumerate() {
            assert_eq!(
                count,
                i64::from(shares.0[i]),
                "{shares:?}: path {i} over a cycle"
            );
        }
    }

    #[test]
    fn three_paths_get_exactly_their_shares_spread_evenly() {
        for shares in [
            [500, 300, 200],
            [400, 400, 200],
            [1, 998, 1],
            [333, 333, 334],
        ] {
            let mut all = [0; MAX_PATHS];
            all[..3].copy_from_slice(&shares);
            assert_smooth_and_exact(&Shares(all));
        }
        // 10/10/5 Mbit/s: the 5 Mbit/s path takes every fifth datagram.
        let mut shares = [0; MAX_PATHS];
        shares[..3].copy_from_slice(&[400, 400, 200]);
        let slots = cycle(&Shares(shares));
        let third: Vec<usize> = (0..CYCLE).filter(|&n| slots[n] == 2).collect();
        assert!(third.windows(2).all(|w| w[1] - w[0] == 5), "{third:?}");
    }

    #[test]
    fn no_drift_over_many_cycles_and_every_path_count() {
        // The schedule repeats each cycle, so a tunnel's totals after k cycles are k times
        // the shares: here checked for every split of two paths and spreads of up to 8.
        for p in 0..=1000 {
            assert_smooth_and_exact(&two_paths(p));
        }
        for paths in 1..=MAX_PATHS {
            let mut shares = [0u16; MAX_PATHS];
            for (i, share) in shares.iter_mut().enumerate().take(paths) {
                *share = (CYCLE / paths) as u16 + u16::from(i < CYCLE % paths);
            }
            assert_smooth_and_exact(&Shares(shares));
        }
        assert_eq!(cycle(&two_paths(0)), vec![0u8; CYCLE]);
        assert_eq!(cycle(&two_paths(1000)), vec![1u8; CYCLE]);
    }

    #[test]
    fn a_small_share_is_spread_not_bunched() {
        // 10 % on the secondary path: every tenth datagram, as the old credit rule did.
        let slots = cycle(&two_paths(100));
        let picks: Vec<usize> = (0..CYCLE).filter(|&n| slots[n] == 1).collect();
        assert_eq!(picks.len(), 100);
        assert!(picks.windows(2).all(|w| w[1] - w[0] == 10), "{picks:?}");
    }

    /// Two paths: `p` permille on path 1, the rest on path 0.
    fn two_paths(p: u32) -> Shares {
        let mut weights = [0; MAX_PATHS];
        weights[..2].copy_from_slice(&[1000 - p, p]);
        Shares::from_weights(&weights)
    }

    fn weights(first: &[u32]) -> [u32; MAX_PATHS] {
        let mut all = [0; MAX_PATHS];
        all[..first.len()].copy_from_slice(first);
        all
    }

    #[test]
    fn shares_follow_the_weights_exactly_where_they_can() {
        for p in 0..=1000 {
            assert_eq!(&two_paths(p).0[..2], &[(1000 - p) as u16, p as u16]);
        }
        // Any scale: 10/10/5 Mbit/s.
        assert_eq!(
            Shares::from_weights(&weights(&[10_000, 10_000, 5_000])),
            Shares(weights(&[400, 400, 200]).map(|w| w as u16))
        );
        // Rounding leaves permille over: one each to the weighted paths, in index order.
        let thirds = Shares::from_weights(&weights(&[0, 1, 1, 1]));
        assert_eq!(thirds.0, weights(&[0, 334, 333, 333]).map(|w| w as u16));
        for n in 1..=MAX_PATHS as u32 {
            for heavy in [1, 7, 999, u32::MAX / 8] {
                let mut w = [0; MAX_PATHS];
                for (i, weight) in w.iter_mut().enumerate().take(n as usize) {
                    *weight = 1 + heavy * i as u32 % 13;
                }
                let shares = Shares::from_weights(&w);
                let total: u64 = w.iter().map(|&x| u64::from(x)).sum();
                assert_eq!(shares.0.iter().map(|&s| u32::from(s)).sum::<u32>(), 1000);
                for i in 0..MAX_PATHS {
                    let exact = u64::from(w[i]) * 1000;
                    let share = u64::from(shares.0[i]) * total;
                    assert!(share.abs_diff(exact) < total, "{w:?}: {shares:?}");
                }
            }
        }
        assert_eq!(Shares::from_weights(&[0; MAX_PATHS]), two_paths(0));
    }

    #[test]
    fn failover_takes_down_paths_out_only_while_another_answers() {
        let split50 = weights(&[500, 500]);
        let (p, s) = (0b01, 0b10);
        // Both answer, or neither is known: the configured split.
        assert_eq!(Shares::with_failover(split50, 2, p | s, 0), two_paths(500));
        assert_eq!(Shares::with_failover(split50, 2, 0, 0), two_paths(500));
        // One down while the other answers: all on the other.
        assert_eq!(Shares::with_failover(split50, 2, p, s), two_paths(0));
        assert_eq!(Shares::with_failover(split50, 2, s, p), two_paths(1000));
        // Both down (nothing answers): the configured split, not nothing.
        assert_eq!(Shares::with_failover(split50, 2, 0, p | s), two_paths(500));
        // One down, the other unknown (not answering yet): the configured split.
        assert_eq!(Shares::with_failover(split50, 2, 0, s), two_paths(500));
        // split 100 with the primary down: the secondary takes all, though weighted 0.
        let split100 = weights(&[1000, 0]);
        assert_eq!(Shares::with_failover(split100, 2, s, p), two_paths(1000));
        // Paths beyond those in use get nothing, whatever their weight or state.
        assert_eq!(
            Shares::with_failover(weights(&[1, 1, 1]), 2, 0b111, 0),
            two_paths(500)
        );
        // Three paths, the middle one down: the others keep their proportion.
        assert_eq!(
            Shares::with_failover(weights(&[2, 5, 3]), 3, 0b101, 0b010).0,
            weights(&[400, 0, 600]).map(|w| w as u16)
        );
    }

    #[test]
    fn shares_that_do_not_sum_to_a_cycle_still_give_every_slot_a_path() {
        assert_eq!(cycle(&Shares([0; MAX_PATHS])), vec![0u8; CYCLE]);
        let mut shares = [0; MAX_PATHS];
        shares[2] = 7;
        assert!(cycle(&Shares(shares)).iter().all(|&p| p == 2));
    }
}

#[path = "../common/capacity.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod capacity;

mod capacity_readings {
    use super::capacity::*;

    const MS: u64 = 1_000_000;
    /// 1,400 bytes of payload plus IP and UDP headers, as the receiver counts them.
    const BYTES: u32 = 1428;

    /// A path with a bottleneck of `kbps`, fed datagrams sent at the given times (ns): each
    /// leaves the bottleneck one transmission after the later of its sending and the
    /// previous one's leaving; `jitter(i)` is added to arrival `i` (ns, receiver's stamping).
    struct Bottleneck {
        rate: PathRate,
        free_at_ns: u64,
        seq: u32,
        sent_epoch_us: u32,
    }

    impl Bottleneck {
        fn new(sent_epoch_us: u32) -> Self {
            Self {
                rate: PathRate::new(),
                free_at_ns: 0,
                seq: 0,
                sent_epoch_us,
            }
        }

        /// Sends a datagram at `sent_ns` over a bottleneck of `kbps`; returns its arrival.
        fn send(&mut self, sent_ns: u64, kbps: u64, jitter_ns: i64) -> u64 {
            let transmission = u64::from(BYTES) * 8_000_000 / kbps;
            self.free_at_ns = self.free_at_ns.max(sent_ns) + transmission;
            // 10 ms of propagation.
            let arrived = (self.free_at_ns + 10 * MS).saturating_add_signed(jitter_ns);
            let sent_us = self.sent_epoch_us.wrapping_add((sent_ns / 1000) as u32);
            self.rate.arrive(self.seq, sent_us, arrived, BYTES);
            self.seq = self.seq.wrapping_add(1);
            arrived
        }
    }

    /// Bursts of `burst` datagrams back to back every `every_ns`, for `for_ns` from `from_ns`,
    /// over a bottleneck of `kbps`; returns the last arrival.
    fn bursts(
        path: &mut Bottleneck,
        from_ns: u64,
        for_ns: u64,
        burst: u64,
        every_ns: u64,
        kbps: u64,
    ) -> u64 {
        let mut last = 0;
        let mut t = from_ns;
        while t < from_ns + for_ns {
            for i in 0..burst {
                // 5 us apart: the sender's own pace, far faster than any path here.
                last = path.send(t + i * 5_000, kbps, 0);
            }
            t += every_ns;
        }
        last
    }

    fn within_pct(value: u32, expected: u64, pct: u64) -> bool {
        let v = u64::from(value);
        v * 100 >= expected * (100 - pct) && v * 100 <= expected * (100 + pct)
    }

    #[test]
    fn bursts_faster_than_the_path_read_its_capacity() {
        for kbps in [2_000, 5_000, 10_000, 20_000] {
            let mut path = Bottleneck::new(0);
            // 30-datagram bursts every 50 ms: 6.9 Mbit/s, below the capacity of the faster
            // paths, which the bursts alone show (and above the slower ones', which then
            // never idle).
            let end = bursts(&mut path, 0, 1_000 * MS, 30, 50 * MS, kbps);
            let read = path.rate.capacity_kbps(end).expect("a reading");
            assert!(within_pct(read, kbps, 3), "{kbps} kbit/s read as {read}");
        }
    }

    #[test]
    fn a_steady_stream_below_capacity_reads_its_own_rate_never_more() {
        let mut path = Bottleneck::new(0);
        // One datagram every 5 ms (2.3 Mbit/s) on a 10 Mbit/s path.
        let mut end = 0;
        for i in 0..400u64 {
            end = path.send(i * 5 * MS, 10_000, 0);
        }
        let read = path.rate.capacity_kbps(end).expect("a reading");
        assert!(within_pct(read, 2_285, 3), "read {read}");
    }

    #[test]
    fn arrival_jitter_of_a_millisecond_moves_a_reading_by_a_tenth_at_most() {
        let mut path = Bottleneck::new(0);
        let mut end = 0;
        let mut noise = 12345u64;
        for burst in 0..40u64 {
            for i in 0..12 {
                noise = noise
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let jitter = (noise >> 33) as i64 % 1_000_000 - 500_000;
                end = path.send(burst * 50 * MS + i * 5_000, 5_000, jitter);
            }
        }
        let read = path.rate.capacity_kbps(end).expect("a reading");
        assert!(within_pct(read, 5_000, 10), "read {read}");
    }

    #[test]
    fn a_late_first_release_does_not_inflate_a_reading() {
        // Each burst's first datagram leaves the bottleneck 3 ms late (a rate-limiting
        // queue's timer fired late), and with it every one that became due meanwhile.
        for kbps in [5_000u64, 10_000] {
            let mut path = Bottleneck::new(0);
            let mut end = 0;
            for burst in 0..40u64 {
                let t = burst * 50 * MS;
                let transmission = u64::from(BYTES) * 8_000_000 / kbps;
                let late_until = t + transmission + 3 * MS;
                for i in 0..16 {
                    let due = t + (i + 1) * transmission;
                    let leaves = due.max(late_until);
                    end = leaves + 10 * MS;
                    path.rate
                        .arrive(path.seq, (t / 1000) as u32 + i as u32 * 5, end, BYTES);
                    path.seq += 1;
                }
            }
            // What is left is less than one transmission over the run: 3 % here.
            let read = path.rate.capacity_kbps(end).expect("a reading");
            assert!(within_pct(read, kbps, 5), "{kbps} kbit/s read as {read}");
        }
    }

    #[test]
    fn a_saturated_path_is_read_continuously_and_a_drop_within_half_a_second() {
        let mut path = Bottleneck::new(0);
        // Sent at 12 Mbit/s, steadily, into 10 Mbit/s: the bottleneck never idles.
        let gap = u64::from(BYTES) * 8_000_000 / 12_000;
        let mut t = 0;
        let mut end = 0;
        while t < 1_000 * MS {
            end = path.send(t, 10_000, 0);
            t += gap;
        }
        let read = path.rate.capacity_kbps(end).expect("a reading");
        assert!(within_pct(read, 10_000, 3), "read {read}");
        // The path drops to 2 Mbit/s; the sender goes on at 12.
        let drop_at = end;
        while end < drop_at + 500 * MS {
            end = path.send(t, 2_000, 0);
            t += gap;
        }
        let read = path.rate.capacity_kbps(end).expect("a reading");
        assert!(
            within_pct(read, 2_000, 5),
            "read {read} 500 ms after the drop"
        );
    }

    #[test]
    fn a_sender_that_slows_down_for_a_moment_does_not_lower_the_reading() {
        let mut path = Bottleneck::new(0);
        let end = bursts(&mut path, 0, 1_000 * MS, 20, 50 * MS, 10_000);
        assert!(within_pct(
            path.rate.capacity_kbps(end).unwrap_or(0),
            10_000,
            3
        ));
        // Then a steady 2.3 Mbit/s, one datagram every 5 ms: lower bounds of 2.3 only.
        let from = end + 5 * MS;
        let mut at = 0;
        let mut i = 0;
        let mut read_at = |path: &mut Bottleneck, until: u64| {
            while at < until {
                at = path.send(from + i * 5 * MS, 10_000, 0);
                i += 1;
            }
            path.rate.capacity_kbps(at).unwrap_or(0)
        };
        let after_1s = read_at(&mut path, from + 1_000 * MS);
        assert!(within_pct(after_1s, 10_000, 3), "read {after_1s} after 1 s");
        // Two windows later only the lower bounds are left: the sender's own rate.
        let after_3s = read_at(&mut path, from + 3 * WINDOW_NS);
        assert!(within_pct(after_3s, 2_285, 3), "read {after_3s} after 3 s");
    }

    #[test]
    fn a_path_that_speeds_up_is_read_faster_at_once() {
        let mut path = Bottleneck::new(0);
        // 12 Mbit/s steadily into 2 Mbit/s, then into 10 Mbit/s.
        let gap = u64::from(BYTES) * 8_000_000 / 12_000;
        let (mut t, mut end) = (0, 0);
        while t < 1_000 * MS {
            end = path.send(t, 2_000, 0);
            t += gap;
        }
        assert!(within_pct(
            path.rate.capacity_kbps(end).unwrap_or(0),
            2_000,
            3
        ));
        let faster_at = end;
        while end < faster_at + 300 * MS {
            end = path.send(t, 10_000, 0);
            t += gap;
        }
        let read = path.rate.capacity_kbps(end).unwrap_or(0);
        assert!(within_pct(read, 10_000, 5), "read {read} 300 ms after");
    }

    #[test]
    fn short_runs_losses_and_silence_give_no_reading() {
        let mut path = Bottleneck::new(0);
        // Three-datagram bursts: never RUN_MIN_DATAGRAMS in a run.
        let end = bursts(&mut path, 0, 1_000 * MS, 3, 50 * MS, 1_000);
        assert_eq!(path.rate.capacity_kbps(end), None);
        // Bursts of 20 at 100 Mbit/s span 3.4 ms: shorter than RUN_MIN_NS.
        let mut fast = Bottleneck::new(0);
        let end = bursts(&mut fast, 0, 1_000 * MS, 20, 50 * MS, 100_000);
        assert_eq!(fast.rate.capacity_kbps(end), None);
        // A reading is forgotten after two windows without one.
        let mut path = Bottleneck::new(0);
        let end = bursts(&mut path, 0, 500 * MS, 10, 50 * MS, 5_000);
        assert!(path.rate.capacity_kbps(end).is_some());
        assert!(path.rate.capacity_kbps(end + WINDOW_NS).is_some());
        assert_eq!(path.rate.capacity_kbps(end + 2 * WINDOW_NS), None);
        // Every other datagram lost: no two consecutive numbers, no run.
        let mut rate = PathRate::new();
        for i in 0..1000u32 {
            let at = u64::from(i) * MS;
            rate.arrive(2 * i, i * 1000, at, BYTES);
        }
        assert_eq!(rate.capacity_kbps(1000 * MS), None);
    }

    #[test]
    fn the_senders_clock_may_wrap_and_reordering_breaks_runs_only() {
        let mut path = Bottleneck::new(u32::MAX - 100_000);
        let end = bursts(&mut path, 0, 1_000 * MS, 10, 50 * MS, 5_000);
        let read = path
            .rate
            .capacity_kbps(end)
            .expect("a reading across the wrap");
        assert!(within_pct(read, 5_000, 3), "read {read}");
        // Arrivals out of order, or stamped before the previous one: no panic, no reading.
        let mut rate = PathRate::new();
        for i in 0..100u32 {
            let seq = i ^ 1;
            rate.arrive(seq, seq * 1000, 1_000 * MS - u64::from(i) * MS, BYTES);
        }
        assert_eq!(rate.capacity_kbps(1_000 * MS), None);
    }
}

#[path = "../common/rate_sched.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod rate_sched;

mod rate_scheduler {
    use super::rate_sched::*;
    use super::spread::Shares;

    fn reading(capacity_kbps: Option<u32>, loss_ppm: u32) -> PathReading {
        PathReading {
            capacity_kbps,
            loss_ppm,
            queue_us: 0,
            min_rtt_us: 0,
        }
    }

    fn queued(capacity_kbps: u32, queue_ms: u64) -> PathReading {
        PathReading {
            capacity_kbps: Some(capacity_kbps),
            loss_ppm: 0,
            queue_us: queue_ms * 1000,
            min_rtt_us: 0,
        }
    }

    fn shares(paths: &[PathReading]) -> Vec<u16> {
        let weights = weights(paths).expect("weights");
        Shares::from_weights(&weights).0[..paths.len()].to_vec()
    }

    #[test]
    fn shares_follow_capacity() {
        let ten = reading(Some(10_000), 0);
        let five = reading(Some(5_000), 0);
        assert_eq!(shares(&[ten, ten, five]), [400, 400, 200]);
        assert_eq!(shares(&[ten, ten]), [500, 500]);
        assert_eq!(
            shares(&[reading(Some(10_000), 0), reading(Some(4_000), 0)]),
            [715, 285]
        );
        // Eight paths, 1 to 8 Mbit/s: 1/36 .. 8/36.
        let eight: Vec<_> = (1..=8).map(|m| reading(Some(m * 1000), 0)).collect();
        let got = shares(&eight);
        for (i, &share) in got.iter().enumerate() {
            let exact = (i as f64 + 1.0) * 1000.0 / 36.0;
            assert!((f64::from(share) - exact).abs() <= 1.0, "{got:?}");
        }
        assert_eq!(got.iter().map(|&s| u32::from(s)).sum::<u32>(), 1000);
    }

    #[test]
    fn loss_above_one_percent_backs_off_in_proportion_smaller_loss_does_nothing() {
        let clean = reading(Some(10_000), 0);
        assert_eq!(shares(&[clean, reading(Some(10_000), 1_000)]), [500, 500]);
        assert_eq!(shares(&[clean, reading(Some(10_000), 10_000)]), [500, 500]);
        // 2 %: half the weight, so a third of the datagrams.
        assert_eq!(shares(&[clean, reading(Some(10_000), 20_000)]), [667, 333]);
        assert_eq!(shares(&[reading(Some(10_000), 50_000), clean]), [167, 833]);
        // A path losing everything still has a weight the failover rule may take away.
        assert_eq!(shares(&[clean, reading(Some(10_000), 1_000_000)]), [991, 9]);
    }

    #[test]
    fn a_path_queueing_beyond_the_others_backs_off_in_proportion() {
        // Within 50 ms and half of the least-queued path's: nothing changes.
        assert_eq!(shares(&[queued(10_000, 0), queued(10_000, 49)]), [500, 500]);
        assert_eq!(
            shares(&[queued(10_000, 300), queued(10_000, 490)]),
            [500, 500]
        );
        assert_eq!(shares(&[queued(10_000, 30), queued(2_000, 30)]), [834, 166]);
        // A path whose capacity dropped (its reading still 10 Mbit/s) and whose queue holds
        // 380 ms against the other's 30: (50 + 45) / 380 of its weight.
        assert_eq!(
            shares(&[queued(10_000, 30), queued(10_000, 380)]),
            [800, 200]
        );
        // The guard and the loss rule multiply.
        let lossy_and_queued = PathReading {
            capacity_kbps: Some(10_000),
            loss_ppm: 20_000,
            queue_us: 100_000,
            min_rtt_us: 0,
        };
        assert_eq!(shares(&[queued(10_000, 0), lossy_and_queued]), [800, 200]);
        // An absurd queue does not overflow.
        assert_eq!(
            shares(&[queued(u32::MAX, 0), queued(u32::MAX, u64::MAX / 1000)]),
            [1000, 0]
        );
    }

    #[test]
    fn a_path_without_reading_gets_the_mean_and_none_at_all_changes_nothing() {
        let got = shares(&[
            reading(Some(10_000), 0),
            reading(Some(2_000), 0),
            reading(None, 0),
        ]);
        // 10, 2 and the mean, 6, of 18.
        assert_eq!(got, [556, 111, 333]);
        assert_eq!(weights(&[reading(None, 0), reading(None, 50_000)]), None);
        assert_eq!(weights(&[]), None);
        // Huge readings do not overflow.
        let max = reading(Some(u32::MAX), 0);
        assert_eq!(shares(&[max, max]), [500, 500]);
    }

    fn path(capacity_kbps: u32, min_rtt_ms: u64) -> PathReading {
        PathReading {
            capacity_kbps: Some(capacity_kbps),
            loss_ppm: 0,
            queue_us: 0,
            min_rtt_us: min_rtt_ms * 1000,
        }
    }

    /// The shares under the delay preference at `offered_kbps`.
    fn preferred(paths: &[PathReading], offered_kbps: u64) -> Vec<u16> {
        let got = prefer_low_delay(weights(paths).expect("weights"), paths, offered_kbps);
        Shares::from_weights(&got).0[..paths.len()].to_vec()
    }

    #[test]
    fn a_light_load_takes_the_lower_delay_path_and_spills_what_it_cannot_carry() {
        let (fast, slow) = (path(10_000, 20), path(10_000, 100));
        // Up to 60 % of the fast path's capacity: all on it.
        assert_eq!(preferred(&[fast, slow], 0), [1000, 0]);
        assert_eq!(preferred(&[fast, slow], 3_000), [1000, 0]);
        assert_eq!(preferred(&[slow, fast], 6_000), [0, 1000]);
        // Beyond: the fast path carries 6 Mbit/s, the slow one the rest.
        assert_eq!(preferred(&[fast, slow], 7_500), [800, 200]);
        assert_eq!(preferred(&[fast, slow], 9_000), [667, 333]);
        // From 60 % of both on: the capacity shares.
        assert_eq!(preferred(&[fast, slow], 12_000), [500, 500]);
        assert_eq!(preferred(&[fast, slow], u64::MAX), [500, 500]);
        // Unequal capacities: a 10 Mbit/s path and a faster 4 Mbit/s one.
        let (big, small) = (path(10_000, 100), path(4_000, 20));
        assert_eq!(preferred(&[big, small], 2_000), [0, 1000]);
        // 2.4 of 4.8 Mbit/s on the small one: still more than its capacity share (286).
        assert_eq!(preferred(&[big, small], 4_800), [500, 500]);
    }

    #[test]
    fn the_preferred_paths_never_carry_more_than_their_fill() {
        let (fast, slow) = (path(10_000, 20), path(10_000, 100));
        for offered in (0..20_000u64).step_by(250) {
            let shares = preferred(&[fast, slow], offered);
            // Below 60 % of the bundle (then the capacity shares).
            let on_fast = u64::from(shares[0]) * offered / 1000;
            assert!(
                offered >= 12_000 || on_fast <= 6_000 + offered / 1000,
                "{offered}: {shares:?}"
            );
            // And never less than the capacity share.
            assert!(shares[0] >= 499, "{offered}: {shares:?}");
        }
    }

    #[test]
    fn paths_of_about_the_same_delay_are_one_tier() {
        let ten = |ms| path(10_000, ms);
        // Equal, within 10 ms, within a quarter: no preference, the capacity shares.
        assert_eq!(preferred(&[ten(20), ten(20)], 1_000), [500, 500]);
        assert_eq!(preferred(&[ten(20), ten(30)], 1_000), [500, 500]);
        assert_eq!(preferred(&[ten(20), ten(31)], 1_000), [1000, 0]);
        assert_eq!(preferred(&[ten(200), ten(250)], 1_000), [500, 500]);
        assert_eq!(preferred(&[ten(200), ten(251)], 1_000), [1000, 0]);
        // A tier of two against a slower third: the tier shares by capacity.
        let got = preferred(&[ten(20), path(5_000, 22), ten(100)], 3_000);
        assert_eq!(got, [667, 333, 0]);
        // An unknown min RTT (a path not answering yet): not preferred; none known: no
        // preference.
        assert_eq!(preferred(&[ten(0), ten(20)], 1_000), [0, 1000]);
        assert_eq!(preferred(&[ten(0), ten(0)], 1_000), [500, 500]);
    }

    #[test]
    fn a_preferred_path_with_little_weight_spills_the_rest() {
        // A 5 ms path that loses everything weighs 1 % of its capacity (100 kbit/s): it is
        // the tier alone and carries 60 kbit/s of 1 Mbit/s; the others the rest.
        let mut lossy = path(10_000, 5);
        lossy.loss_ppm = 1_000_000;
        let paths = [lossy, path(10_000, 20), path(10_000, 100)];
        assert_eq!(preferred(&paths, 1_000), [60, 470, 470]);
        // No weights at all: nothing to prefer.
        assert_eq!(prefer_low_delay([0; 8], &paths, 1_000), [0; 8]);
    }
}

#[path = "../common/fec.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod fec;

mod forward_error_correction {
    use super::fec::*;

    #[test]
    fn auto_sends_nothing_at_or_below_its_target_and_enough_above_it() {
        const T: u64 = AUTO_TARGET_DEFAULT_PPB;
        assert_eq!(auto_repairs(16, 0, T), 0, "a clean path takes no repairs");
        assert_eq!(auto_repairs(16, 50, T), 0, "50 ppm is the target itself");
        assert_eq!(auto_repairs(0, 50_000, T), 0, "an empty group takes none");
        // From a direct evaluation of p * P(Bin(n - 1, p) >= m) in floating point.
        for (data, loss, target, want) in [
            (16, 1_000, T, 1),
            (16, 10_000, T, 3),
            (16, 20_000, T, 4),
            (16, 30_000, T, 5),
            (16, 50_000, T, 6),
            (10, 50_000, T, 5),
            (4, 50_000, T, 4),
            (1, 50_000, T, 3),
            // 20 ms at 20 Mbit/s: 292 ppm.
            (5, 50_000, 292_000, 3),
            (8, 13_000, 292_000, 2),
            (8, 13_000, 2_000_000, 1),
        ] {
            let m = u32::from(want);
            assert_eq!(
                auto_repairs(data, loss, target),
                want,
                "{data} datagrams at {loss} ppm"
            );
            assert!(residual_loss_ppb(data, m, loss) <= target);
            assert!(m == 1 || residual_loss_ppb(data, m - 1, loss) > target);
        }
        assert_eq!(
            auto_repairs(16, 300_000, T),
            MAX_REPAIRS as u8,
            "beyond the code: all it has"
        );
        assert_eq!(auto_repairs(16, 900_000, T), MAX_REPAIRS as u8);
        // A partial group needs no more than a full one.
        for loss in [500, 5_000, 50_000, 150_000] {
            for n in 1..AUTO_SPAN {
                assert!(auto_repairs(n.into(), loss, T) <= auto_repairs(AUTO_SPAN.into(), loss, T));
            }
        }
    }

    #[test]
    fn autos_target_is_the_loss_a_tcp_stands_at_the_paths_rate_and_rtt() {
        // (1.22 · 1400 · 8 / (RTT · C))² / 4, in ppb, checked in floating point.
        let exact = |rtt_us: f64, kbps: f64| {
            let root = 1.22 * 1400.0 * 8.0 / (rtt_us * 1e-6 * kbps * 1e3);
            root * root / 4.0 * 1e9
        };
        for (rtt_us, kbps) in [
            (20_000, 20_000),
            (40_000, 20_000),
            (60_000, 18_000),
            (100_000, 20_000),
        ] {
            let got = auto_target_ppb(rtt_us, kbps) as f64;
            let want = exact(rtt_us as f64, kbps as f64).clamp(10_000.0, 2_000_000.0);
            assert!(
                (got - want).abs() <= want / 100.0 + 1.0,
                "{rtt_us} us, {kbps} kbit/s: {got} vs {want}"
            );
        }
        assert_eq!(
            auto_target_ppb(20_000, 20_000) / 1000,
            291,
            "292 ppm at 20 ms, 20 Mbit/s"
        );
        assert_eq!(auto_target_ppb(100_000, 20_000), 11_669, "12 ppm at 100 ms");
        assert_eq!(
            auto_target_ppb(0, 20_000),
            AUTO_TARGET_DEFAULT_PPB,
            "no RTT reading"
        );
        assert_eq!(
            auto_target_ppb(20_000, 0),
            AUTO_TARGET_DEFAULT_PPB,
            "no capacity reading"
        );
        assert_eq!(
            auto_target_ppb(1_000, 1_000),
            AUTO_TARGET_MAX_PPB,
            "short and slow: capped"
        );
        assert_eq!(
            auto_target_ppb(1_000_000, 1_000_000),
            AUTO_TARGET_MIN_PPB,
            "long and fat: floored"
        );
        assert_eq!(
            auto_target_ppb(u64::MAX, u64::MAX),
            AUTO_TARGET_MIN_PPB,
            "no overflow"
        );
        // The longer or faster, the less loss is left.
        assert!(auto_target_ppb(40_000, 20_000) < auto_target_ppb(20_000, 20_000));
        assert!(auto_target_ppb(20_000, 40_000) < auto_target_ppb(20_000, 20_000));
    }

    #[test]
    fn the_tunnels_loss_weights_each_paths_loss_by_its_datagrams() {
        assert_eq!(mixed_loss_ppm(&[]), None);
        assert_eq!(mixed_loss_ppm(&[(0, 50_000), (0, 0)]), None, "nothing sent");
        assert_eq!(mixed_loss_ppm(&[(100, 50_000), (100, 0)]), Some(25_000));
        assert_eq!(
            mixed_loss_ppm(&[(300, 20_000), (100, 60_000)]),
            Some(30_000)
        );
        assert_eq!(
            mixed_loss_ppm(&[(0, 50_000), (7, 1_000)]),
            Some(1_000),
            "an idle path does not count"
        );
        assert_eq!(
            mixed_loss_ppm(&[(u64::MAX, 2_000_000)]),
            Some(1_000_000),
            "clamped, no overflow"
        );
    }

    /// A small deterministic generator (xorshift64*), so that failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn payload(&mut self, max: usize) -> Vec<u8> {
            let len = self.below(max + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn the_field_has_inverses_and_distributes() {
        for a in 1..=255u8 {
            assert_eq!(gf::mul(a, gf::inv(a)), 1, "{a}");
            assert_eq!(gf::mul(a, 1), a);
            assert_eq!(gf::mul(a, 0), 0);
            for b in [1u8, 2, 3, 0x53, 0xca, 0xff] {
                for c in [7u8, 0x8e, 0xfe] {
                    assert_eq!(gf::mul(a, b ^ c), gf::mul(a, b) ^ gf::mul(a, c));
                    assert_eq!(gf::mul(gf::mul(a, b), c), gf::mul(a, gf::mul(b, c)));
                }
            }
        }
        // 2 generates: its powers take every non-zero value once.
        let mut seen = [false; 256];
        for i in 0..255 {
            assert!(!seen[usize::from(gf::EXP[i])]);
            seen[usize::from(gf::EXP[i])] = true;
        }
        assert!(!seen[0]);
    }

    #[test]
    fn repair_zero_is_plain_parity_and_coefficients_are_never_zero() {
        for i in 0..MAX_SPAN {
            assert_eq!(coefficient(0, i), 1);
            for j in 0..MAX_REPAIRS {
                assert_ne!(coefficient(j, i), 0);
            }
        }
        let mut encoder = Encoder::new();
        encoder.set_ratio(3, 2);
        let payloads: [&[u8]; 3] = [b"abc", b"de", b""];
        for (seq, payload) in payloads.iter().enumerate() {
            encoder.add(100 + seq as u32, payload, 0);
        }
        let mut parity = [0u8; 5];
        for payload in payloads {
            let mut symbol = [0u8; 5];
            symbol_into(payload, &mut symbol);
            parity.iter_mut().zip(symbol).for_each(|(p, s)| *p ^= s);
        }
        assert_eq!(encoder.repair(0), parity);
        assert_eq!(
            encoder.group(),
            Some(Group {
                first: 100,
                covered: 0b111,
                repairs: 2,
                symbol_len: 5
            })
        );
    }

    /// Codes `payloads` at `positions` of a group starting at `first` with `m` repairs, drops
    /// the datagrams at `lost` (indices into `positions`) and keeps the repairs in `kept`,
    /// then rebuilds: returns what `recover` said and the rebuilt payloads.
    fn code_and_recover(
        positions: &[u8],
        payloads: &[Vec<u8>],
        m: u8,
        lost: &[usize],
        kept: &[u8],
    ) -> (Result<usize, Unrecoverable>, Vec<Option<Vec<u8>>>) {
        let mut encoder = Encoder::new();
        encoder.set_ratio(positions.len() as u8, m);
        let first = 0xffff_fff0u32; // the group wraps the sequence space
        for (&i, payload) in positions.iter().zip(payloads) {
            let added = encoder.add(first.wrapping_add(u32::from(i)), payload, 0);
            assert!(matches!(added, Added::Coded { .. }), "{added:?}");
        }
        let group = encoder.group().expect("a group is open");
        assert_eq!(group.first, first);
        let len = group.symbol_len;
        let mut repair_store: Vec<(u8, Vec<u8>)> = kept
            .iter()
            .map(|&j| (j, encoder.repair(usize::from(j)).to_vec()))
            .collect();
        let mut store: Vec<Vec<u8>> = payloads
            .iter()
            .enumerate()
            .map(|(n, payload)| {
                let mut symbol = vec![0u8; len];
                if !lost.contains(&n) {
                    symbol_into(payload, &mut symbol);
                } else {
                    symbol.fill(0xa5); // garbage: recover must not read it
                }
                symbol
            })
            .collect();
        let present: Vec<bool> = (0..payloads.len()).map(|n| !lost.contains(&n)).collect();
        let mut symbols: Vec<&mut [u8]> = store.iter_mut().map(|s| s.as_mut_slice()).collect();
        let mut repairs: Vec<(u8, &mut [u8])> = repair_store
            .iter_mut()
            .map(|(j, r)| (*j, r.as_mut_slice()))
            .collect();
        let result = recover(positions, &present, &mut symbols, &mut repairs, len);
        let rebuilt = lost
            .iter()
            .map(|&n| symbol_payload(&store[n]).map(<[u8]>::to_vec))
            .collect();
        (result, rebuilt)
    }

    #[test]
    fn any_losses_up_to_the_repairs_received_are_rebuilt() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..400 {
            let k = 1 + rng.below(MAX_SPAN);
            let m = 1 + rng.below(MAX_REPAIRS);
            // k positions out of the span, in order, with gaps.
            let mut positions: Vec<u8> = (0..MAX_SPAN as u8).collect();
            while positions.len() > k {
                let drop = 1 + rng.below(positions.len() - 1); // position 0 stays
                positions.remove(drop);
            }
            let payloads: Vec<Vec<u8>> = (0..k).map(|_| rng.payload(MAX_PAYLOAD)).collect();
            let e = rng.below(m.min(k) + 1);
            let mut lost: Vec<usize> = Vec::new();
            while lost.len() < e {
                let n = rng.below(k);
                if !lost.contains(&n) {
                    lost.push(n);
                }
            }
            // Any e (or more) of the m repairs, in any order.
            let mut kept: Vec<u8> = (0..m as u8).collect();
            while kept.len() > e.max(1) && rng.below(2) == 0 {
                let at = rng.below(kept.len());
                kept.remove(at);
            }
            let turn = rng.below(kept.len());
            kept.rotate_left(turn);
            let (result, rebuilt) = code_and_recover(&positions, &payloads, m as u8, &lost, &kept);
            assert_eq!(
                result,
                Ok(e),
                "round {round}: k {k} m {m} lost {lost:?} kept {kept:?}"
            );
            for (&n, got) in lost.iter().zip(rebuilt) {
                assert_eq!(
                    got.as_deref(),
                    Some(&payloads[n][..]),
                    "round {round}: datagram {n}"
                );
            }
        }
    }

    #[test]
    fn a_burst_as_long_as_the_repairs_is_rebuilt_and_one_more_is_not() {
        let mut rng = Rng(7);
        let positions: Vec<u8> = (0..10).collect();
        let payloads: Vec<Vec<u8>> = (0..10).map(|_| rng.payload(1400)).collect();
        let (result, rebuilt) =
            code_and_recover(&positions, &payloads, 4, &[3, 4, 5, 6], &[0, 1, 2, 3]);
        assert_eq!(result, Ok(4));
        assert!(rebuilt
            .iter()
            .zip(3..)
            .all(|(got, n)| got.as_deref() == Some(&payloads[n][..])));
        let (result, _) =
            code_and_recover(&positions, &payloads, 4, &[3, 4, 5, 6, 7], &[0, 1, 2, 3]);
        assert_eq!(
            result,
            Err(Unrecoverable::TooManyMissing).or(Err(Unrecoverable::TooFewRepairs))
        );
        let (result, _) = code_and_recover(&positions, &payloads, 4, &[3, 4], &[2]);
        assert_eq!(result, Err(Unrecoverable::TooFewRepairs));
        // Nothing lost: nothing to do, whatever the repairs.
        let (result, _) = code_and_recover(&positions, &payloads, 4, &[], &[1]);
        assert_eq!(result, Ok(0));
        // Single parity takes exactly one loss, the most that XOR can.
        let (result, rebuilt) = code_and_recover(&positions, &payloads, 1, &[9], &[0]);
        assert_eq!(result, Ok(1));
        assert_eq!(rebuilt[0].as_deref(), Some(&payloads[9][..]));
    }

    #[test]
    fn the_encoder_keeps_to_its_span_ratio_and_flush() {
        let mut encoder = Encoder::new();
        assert_eq!(encoder.add(1, b"x", 0), Added::NotCoded); // off
        encoder.set_ratio(4, 2);
        assert_eq!(encoder.ratio(), (4, 2));
        assert_eq!(encoder.add(10, &[0u8; MAX_PAYLOAD + 1], 0), Added::NotCoded);
        assert_eq!(encoder.group(), None);
        assert!(!encoder.due(u64::MAX, 0));
        assert_eq!(encoder.add(10, b"a", 1_000), Added::Coded { full: false });
        assert_eq!(encoder.add(10, b"a", 1_000), Added::Outside); // twice
        assert_eq!(encoder.add(9, b"a", 1_000), Added::Outside); // before the group
        assert_eq!(
            encoder.add(10 + MAX_SPAN as u32, b"a", 1_000),
            Added::Outside
        );
        assert_eq!(encoder.add(12, b"bb", 2_000), Added::Coded { full: false });
        assert!(!encoder.due(5_999, 5_000));
        assert!(encoder.due(6_000, 5_000)); // from the group's first datagram
        assert_eq!(encoder.add(11, b"", 3_000), Added::Coded { full: false });
        assert_eq!(
            encoder.add(10 + MAX_SPAN as u32 - 1, b"c", 3_000),
            Added::Coded { full: true }
        );
        let group = encoder.group().unwrap();
        assert_eq!(group.covered, 0b111 | 1 << (MAX_SPAN - 1));
        assert_eq!(group.symbol_len, 4);
        // Out of order, it codes the same as in order.
        let mut ordered = Encoder::new();
        ordered.set_ratio(4, 2);
        for (seq, payload) in [(10, &b"a"[..]), (11, b""), (12, b"bb"), (41, b"c")] {
            ordered.add(seq, payload, 0);
        }
        for j in 0..2 {
            assert_eq!(encoder.repair(j), ordered.repair(j));
        }
        encoder.clear();
        assert_eq!(encoder.group(), None);
        assert_eq!(encoder.add(50, b"z", 9_000), Added::Coded { full: false });
        let mut fresh = Encoder::new();
        fresh.set_ratio(4, 2);
        fresh.add(50, b"z", 0);
        assert_eq!(
            encoder.repair(1),
            fresh.repair(1),
            "clear left bytes behind"
        );
        // Out-of-range ratios are clamped.
        encoder.set_ratio(200, 0);
        assert_eq!(encoder.ratio(), (MAX_SPAN as u8, 1));
    }

    #[test]
    fn repair_headers_round_trip_and_anything_else_is_refused() {
        let header = RepairHeader {
            path: 2,
            token: 0xdead_beef,
            path_seq: 77,
            first: 0xffff_fffe,
            covered: 0x8000_0001,
            repairs: 8,
            index: 7,
        };
        let mut datagram = header.encode().to_vec();
        assert_eq!(&datagram[..4], &[0x4d, 0x55, 0x25, 2]);
        datagram.extend_from_slice(&[0, 3, 1, 2, 3]);
        assert_eq!(RepairHeader::decode(&datagram), Some((header, 5)));
        let bad = |at: usize, value: u8| {
            let mut d = datagram.clone();
            d[at] = value;
            RepairHeader::decode(&d)
        };
        assert_eq!(bad(0, 0), None); // magic
        assert_eq!(bad(2, 0x20), None); // a data datagram's kind
        assert_eq!(bad(2, 0x35), None); // version
        assert_eq!(bad(3, 8), None); // path
        assert_eq!(bad(19, 0), None); // covered without its first
        assert_eq!(bad(20, 0x00), None); // no repairs
        assert_eq!(bad(20, 0x90), None); // nine repairs
        assert_eq!(bad(20, 0x22), None); // index beyond them
        assert_eq!(bad(21, 1), None); // the zero byte
        assert_eq!(
            RepairHeader::decode(&datagram[..REPAIR_HEADER_LEN + 1]),
            None
        ); // no length
        assert_eq!(
            RepairHeader::decode(&datagram[..REPAIR_HEADER_LEN - 1]),
            None
        );
        let mut long = datagram.clone();
        long.resize(REPAIR_HEADER_LEN + MAX_SYMBOL, 0);
        assert_eq!(
            RepairHeader::decode(&long).map(|(_, n)| n),
            Some(MAX_SYMBOL)
        );
        long.push(0);
        assert_eq!(RepairHeader::decode(&long), None);
    }

    #[test]
    fn a_rebuilt_symbol_whose_length_overruns_it_is_refused() {
        assert_eq!(symbol_payload(&[0, 2, 7, 8, 9]), Some(&[7u8, 8][..]));
        assert_eq!(symbol_payload(&[0, 4, 7, 8, 9]), None);
        assert_eq!(symbol_payload(&[0]), None);
    }
}

mod fec_residual {
    use super::fec::residual_loss_ppb;

    #[test]
    fn the_residual_loss_is_the_binomial_tail() {
        // Exact values (double precision): p · P(Bin(k + m - 1, p) >= m).
        for (k, m, loss_ppm, want_ppb) in [
            (10, 1, 6_500, 410_354u64), // ../shared/notes/prior-art.md: XOR 10+1 leaves 0.041 %
            (20, 2, 6_500, 53_125),     // RS 20+2: 0.0053 %
            (5, 1, 6_500, 208_522),     // RS 5+1: 0.021 %
            (10, 4, 50_000, 155_150),
            (10, 3, 50_000, 978_413),
            (8, 4, 50_000, 77_613),
            (10, 2, 10_000, 51_797),
            (32, 8, 300_000, 280_071_557),
            (32, 8, 200_000, 106_331_571),
            (4, 2, 300_000, 141_534_000),
        ] {
            let got = residual_loss_ppb(k, m, loss_ppm);
            assert!(
                got.abs_diff(want_ppb) * 1000 <= want_ppb,
                "{k}+{m} at {loss_ppm} ppm: {got} ppb, want {want_ppb}"
            );
        }
        assert_eq!(residual_loss_ppb(10, 2, 0), 0);
        assert_eq!(residual_loss_ppb(10, 2, 1_000_000), 1_000_000_000);
        assert_eq!(residual_loss_ppb(32, 8, 300_001), 300_001_000); // beyond: the loss itself
        assert_eq!(residual_loss_ppb(0, 2, 20_000), 20_000_000); // no code: the loss itself
                                                                 // More repairs never leave more lost.
        for m in 1..8 {
            assert!(residual_loss_ppb(10, m + 1, 30_000) < residual_loss_ppb(10, m, 30_000));
        }
    }
}

#[path = "../common/fec_rx.rs"]
#[allow(dead_code, reason = "the modules use every item; a test may not")]
mod fec_rx;

mod fec_window {
    use super::fec::{Encoder, RepairHeader};
    use super::fec_rx::*;

    fn payload(seq: u32) -> Vec<u8> {
        // Lengths vary, so that a group's symbols are padded.
        (0..(seq % 7) * 200 + 3)
            .map(|b| (b as u32 ^ seq) as u8)
            .collect()
    }

    /// The repairs of a group of `seqs`, with `m` of them, as (header, symbol).
    fn repairs(seqs: &[u32], m: u8) -> Vec<(RepairHeader, Vec<u8>)> {
        let mut encoder = Encoder::new();
        encoder.set_ratio(seqs.len() as u8, m);
        for &seq in seqs {
            encoder.add(seq, &payload(seq), 0);
        }
        let group = encoder.group().unwrap();
        (0..m)
            .map(|j| {
                let header = RepairHeader {
                    path: 1,
                    token: 9,
                    path_seq: 0,
                    first: group.first,
                    covered: group.covered,
                    repairs: m,
                    index: j,
                };
                (header, encoder.repair(usize::from(j)).to_vec())
            })
            .collect()
    }

    fn rebuilt(window: &FecWindow) -> Vec<(u32, Vec<u8>)> {
        window.rebuilt().map(|(seq, p)| (seq, p.to_vec())).collect()
    }

    #[test]
    fn a_lost_datagram_is_rebuilt_once_and_its_late_original_dropped() {
        let mut window = Box::new(FecWindow::new());
        let seqs: Vec<u32> = (100..110).collect();
        let group = repairs(&seqs, 2);
        for &seq in &seqs {
            if seq != 104 {
                assert_eq!(window.data(seq, &payload(seq)).0, DataVerdict::New);
            }
        }
        assert_eq!(window.data(101, &payload(101)).0, DataVerdict::Duplicate);
        let outcome = window.repair(&group[1].0, &group[1].1);
        assert_eq!(outcome.rebuilt, 1);
        assert_eq!(rebuilt(&window), vec![(104, payload(104))]);
        // The other repair comes too late to be needed; so does the original.
        let outcome = window.repair(&group[0].0, &group[0].1);
        assert_eq!((outcome.rebuilt, outcome.unneeded), (0, 1));
        assert_eq!(window.data(104, &payload(104)).0, DataVerdict::Duplicate);
    }

    #[test]
    fn a_repair_waits_for_datagrams_still_on_a_slower_path() {
        let mut window = Box::new(FecWindow::new());
        let seqs: Vec<u32> = (u32::MAX - 4..=u32::MAX).chain(0..5).collect(); // wraps
        let group = repairs(&seqs, 2);
        // The even ones went over the fast path, with the repairs; one of them was lost.
        for &seq in seqs.iter().filter(|&&s| s % 2 == 0 && s != 2) {
            window.data(seq, &payload(seq));
        }
        for (header, symbol) in &group {
            assert_eq!(window.repair(header, symbol).rebuilt, 0); // 6 missing, 2 repairs
        }
        // The odd ones arrive, one lost: the last to arrive makes 2 missing, 2 repairs.
        let odd: Vec<u32> = seqs
            .iter()
            .copied()
            .filter(|s| s % 2 == 1 && *s != 1)
            .collect();
        let (last, rest) = odd.split_last().unwrap();
        for &seq in rest {
            assert_eq!(window.data(seq, &payload(seq)).1.rebuilt, 0);
        }
        let (verdict, outcome) = window.data(*last, &payload(*last));
        assert_eq!((verdict, outcome.rebuilt), (DataVerdict::New, 2));
        let mut got = rebuilt(&window);
        got.sort();
        assert_eq!(got, vec![(1, payload(1)), (2, payload(2))]);
    }

    #[test]
    fn a_group_with_nothing_lost_frees_its_repairs() {
        let mut window = Box::new(FecWindow::new());
        let seqs: Vec<u32> = (7..12).collect();
        let group = repairs(&seqs, 1);
        for &seq in &seqs {
            window.data(seq, &payload(seq));
        }
        let outcome = window.repair(&group[0].0, &group[0].1);
        assert_eq!((outcome.rebuilt, outcome.unneeded), (0, 1));
        // Freed: the same repair again is taken anew (and is unneeded at once).
        assert_eq!(window.repair(&group[0].0, &group[0].1).unneeded, 1);
    }

    #[test]
    fn a_datagram_still_on_its_way_is_rebuilt_if_the_repairs_are_there_first() {
        let mut window = Box::new(FecWindow::new());
        let seqs: Vec<u32> = (7..12).collect();
        let group = repairs(&seqs, 1);
        assert_eq!(window.repair(&group[0].0, &group[0].1), Default::default());
        for &seq in &seqs[..3] {
            assert_eq!(window.data(seq, &payload(seq)).1.rebuilt, 0);
        }
        // One missing, one repair: a slower path's datagram and a lost one look alike.
        assert_eq!(window.data(11, &payload(11)).1.rebuilt, 1);
        assert_eq!(rebuilt(&window), vec![(10, payload(10))]);
        assert_eq!(window.data(10, &payload(10)).0, DataVerdict::Duplicate);
    }

    #[test]
    fn a_group_that_left_the_window_is_given_up() {
        let mut window = Box::new(FecWindow::new());
        let seqs: Vec<u32> = (0..4).collect();
        let group = repairs(&seqs, 1);
        for seq in [0, 1, 3] {
            window.data(seq, &payload(seq));
        }
        window.data(DATA_SLOTS as u32 + 2, &payload(0)); // datagram 2 is out of the window
        let outcome = window.repair(&group[0].0, &group[0].1);
        assert_eq!((outcome.rebuilt, outcome.unrecoverable), (0, 1));
        // Too old to tell whether it is a duplicate: passed on.
        assert_eq!(window.data(2, &payload(2)).0, DataVerdict::New);
    }

    #[test]
    fn waiting_repairs_are_bounded_the_oldest_group_goes_first() {
        let mut window = Box::new(FecWindow::new());
        let mut evicted = 0;
        for g in 0..REPAIR_SLOTS as u32 + 3 {
            let seqs = [g * 4, g * 4 + 1];
            let group = repairs(&seqs, 1);
            evicted += window.repair(&group[0].0, &group[0].1).evicted; // nothing arrived
        }
        assert_eq!(evicted, 3);
        // The first group's repair was evicted; the newest group's is still there.
        assert_eq!(window.data(0, &payload(0)).1.rebuilt, 0);
        let last = REPAIR_SLOTS as u32 + 2;
        assert_eq!(window.data(last * 4, &payload(last * 4)).1.rebuilt, 1);
        window.reset();
        assert_eq!(window.data(last * 4, &payload(0)).0, DataVerdict::New);
    }

    #[test]
    fn repairs_of_another_group_do_not_rebuild_garbage_as_valid() {
        let mut window = Box::new(FecWindow::new());
        let seqs: Vec<u32> = (0..3).collect();
        let group = repairs(&seqs, 1);
        for seq in [0, 2] {
            window.data(seq, &payload(seq + 1)); // not what was coded
        }
        let outcome = window.repair(&group[0].0, &group[0].1);
        // Rebuilt or given up, but a rebuilt payload must fit its symbol.
        for (_, p) in window.rebuilt() {
            assert!(p.len() <= super::fec::MAX_PAYLOAD);
        }
        assert!(outcome.rebuilt + outcome.unrecoverable as usize == 1);
    }
}

mod fec_window_zeroed {
    use super::fec_rx::*;

    #[test]
    fn an_all_zero_window_is_an_empty_one() {
        // The kernel allocates the window zeroed in place (FecWindow's documented invariant).
        // SAFETY: The test checks that invariant: every field is an integer, a bool or a
        // `#[repr(u8)]` enum whose first variant is 0.
        let mut zeroed: Box<FecWindow> = unsafe { Box::new_zeroed().assume_init() };
        assert_eq!(zeroed.data(0, b"first").0, DataVerdict::New);
        assert_eq!(zeroed.data(0, b"first").0, DataVerdict::Duplicate);
        assert_eq!(zeroed.data(5, b"x").0, DataVerdict::New);
        // A failed copy keeps nothing: the same datagram again is new.
        assert_eq!(zeroed.data_from(9, 3, |_| false).0, DataVerdict::New);
        assert_eq!(zeroed.data(9, b"abc").0, DataVerdict::New);
        assert_eq!(zeroed.rebuilt().count(), 0);
    }
}
