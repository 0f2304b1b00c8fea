//! Address vetting, table-driven and property-based: every blocked class, and every IPv6
//! form that wraps a blocked IPv4 address, is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rez_http::{OutboundPolicy, embedded_v4, is_forbidden};

/// One representative of every blocked class, with the reason expected.
const BLOCKED: &[(&str, &str)] = &[
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.0.0.1", "private network (RFC 1918)"),
    ("172.16.0.1", "private network (RFC 1918)"),
    ("172.31.255.254", "private network (RFC 1918)"),
    ("192.168.1.1", "private network (RFC 1918)"),
    ("169.254.169.254", "cloud metadata endpoint (link-local)"),
    ("169.254.1.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT (100.64.0.0/10)"),
    ("100.127.255.254", "carrier-grade NAT (100.64.0.0/10)"),
    ("0.0.0.0", "unspecified address"),
    ("0.1.2.3", "\"this network\" (0.0.0.0/8)"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved (240.0.0.0/4)"),
    ("198.18.0.1", "benchmarking (198.18.0.0/15)"),
    ("198.19.255.1", "benchmarking (198.18.0.0/15)"),
    ("192.0.2.1", "documentation (TEST-NET-1)"),
    ("198.51.100.1", "documentation (TEST-NET-2)"),
    ("203.0.113.1", "documentation (TEST-NET-3)"),
    ("192.0.0.170", "IETF protocol assignments (192.0.0.0/24)"),
    ("::1", "loopback"),
    ("::", "unspecified address"),
    ("fc00::1", "unique local address (fc00::/7)"),
    ("fd12:3456:789a::1", "unique local address (fc00::/7)"),
    ("fe80::1", "link-local (fe80::/10)"),
    ("febf::1", "link-local (fe80::/10)"),
    ("fec0::1", "site-local (fec0::/10, deprecated)"),
    ("ff02::1", "multicast"),
    ("ff05::2", "multicast"),
    ("2001:db8::1", "documentation (2001:db8::/32)"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private network (RFC 1918)"),
    ("::ffff:169.254.169.254", "cloud metadata endpoint (link-local)"),
    ("::127.0.0.1", "loopback"),
    ("::10.0.0.1", "private network (RFC 1918)"),
    ("::ffff:0:192.168.0.1", "private network (RFC 1918)"),
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "cloud metadata endpoint (link-local)"),
    ("64:ff9b:1::1", "local-use NAT64 (64:ff9b:1::/48)"),
    ("2002:7f00:1::1", "loopback"),
    ("2002:a9fe:a9fe::", "cloud metadata endpoint (link-local)"),
    ("2002:c0a8:101::1", "private network (RFC 1918)"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo (2001::/32)"),
];

#[test]
fn every_blocked_class_has_its_reason() {
    for (addr, reason) in BLOCKED {
        let ip: IpAddr = addr.parse().expect("table address");
        assert_eq!(is_forbidden(ip), Some(*reason), "{addr}");
        // The default policy applies the same verdict; so does the test allowance,
        // except for plain loopback.
        assert_eq!(OutboundPolicy::default().vet_ip(ip), Some(*reason), "{addr}");
    }
}

#[test]
fn loopback_allowance_only_unblocks_plain_loopback() {
    let p = OutboundPolicy::loopback_for_tests();
    for (addr, reason) in BLOCKED {
        let ip: IpAddr = addr.parse().expect("table address");
        let plain_loopback = matches!(ip, IpAddr::V4(v4) if v4.is_loopback()) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST);
        let want = if plain_loopback { None } else { Some(*reason) };
        assert_eq!(p.vet_ip(ip), want, "{addr}");
    }
}

/// Blocked IPv4 networks, for generating members.
const BLOCKED_V4_NETS: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

fn blocked_v4() -> impl Strategy<Value = Ipv4Addr> {
    (0..BLOCKED_V4_NETS.len(), any::<u32>()).prop_map(|(i, host)| {
        let (net, len) = BLOCKED_V4_NETS[i];
        let mask = u32::MAX << (32 - len);
        Ipv4Addr::from((u32::from_be_bytes(net) & mask) | (host & !mask))
    })
}

/// All IPv6 forms that carry `v4`.
fn wrapped_forms(v4: Ipv4Addr) -> Vec<Ipv6Addr> {
    let n = u128::from(u32::from(v4));
    vec![
        v4.to_ipv6_mapped(),
        v4.to_ipv6_compatible(),
        Ipv6Addr::from(0xffffu128 << 48 | n),
        Ipv6Addr::from(0x0064_ff9b_0000_0000_0000_0000_0000_0000u128 | n),
        Ipv6Addr::from(0x2002u128 << 112 | n << 80),
        Ipv6Addr::from(0x2002u128 << 112 | n << 80 | 0xdead_beef),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn blocked_v4_is_blocked_in_every_wrapping(v4 in blocked_v4()) {
        prop_assert!(is_forbidden(IpAddr::V4(v4)).is_some(), "{}", v4);
        for v6 in wrapped_forms(v4) {
            prop_assert_eq!(embedded_v4(v6), Some(v4), "{}", v6);
            prop_assert!(is_forbidden(IpAddr::V6(v6)).is_some(), "{} wrapping {}", v6, v4);
            prop_assert!(OutboundPolicy::loopback_for_tests().vet_ip(IpAddr::V6(v6)).is_some(), "{} under the test allowance", v6);
        }
    }

    /// Wrapping never changes the verdict, for any IPv4 address.
    #[test]
    fn wrapping_preserves_the_verdict(raw in any::<u32>()) {
        let v4 = Ipv4Addr::from(raw);
        let verdict = is_forbidden(IpAddr::V4(v4)).is_some();
        for v6 in wrapped_forms(v4) {
            prop_assert_eq!(is_forbidden(IpAddr::V6(v6)).is_some(), verdict, "{} wrapping {}", v6, v4);
        }
    }

    /// Everything in fc00::/7, fe80::/10 and ff00::/8 is blocked whatever the low bits.
    #[test]
    fn v6_local_ranges_are_blocked(low in any::<u128>()) {
        for (net, len) in [(0xfc00u128 << 112, 7u32), (0xfe80u128 << 112, 10), (0xff00u128 << 112, 8), (0xfec0u128 << 112, 10)] {
            let mask = u128::MAX << (128 - len);
            let ip = Ipv6Addr::from((net & mask) | (low & !mask));
            prop_assert!(is_forbidden(IpAddr::V6(ip)).is_some(), "{}", ip);
        }
    }
}
