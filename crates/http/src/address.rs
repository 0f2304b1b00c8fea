//! Address vetting: which IP addresses an outbound connection may never reach.
//!
//! This is the heart of the SSRF defence (SPEC §6.1). Every address the resolver returns
//! and every IP literal in a URL goes through [`is_forbidden`]. IPv6 forms that merely
//! wrap an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT-translated, NAT64 and 6to4)
//! are unwrapped and judged by the IPv4 address inside, so `::ffff:127.0.0.1` is as
//! forbidden as `127.0.0.1`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` must not be connected to, or `None` if it is a public unicast address.
///
/// The check is pure and does not look at any configuration; the test-only loopback
/// allowance lives in [`crate::OutboundPolicy::vet_ip`].
pub fn is_forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// `addr` is inside `net/len`.
fn in_v4(addr: u32, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    addr & mask == u32::from_be_bytes(net) & mask
}

fn in_v6(addr: u128, net: u128, len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    addr & mask == net & mask
}

/// IPv4 ranges that are not reachable public unicast space, most specific first.
const V4_RANGES: &[([u8; 4], u32, &str)] = &[
    ([255, 255, 255, 255], 32, "broadcast"),
    ([0, 0, 0, 0], 32, "unspecified address"),
    ([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private network (RFC 1918)"),
    ([172, 16, 0, 0], 12, "private network (RFC 1918)"),
    ([192, 168, 0, 0], 16, "private network (RFC 1918)"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 169, 254], 32, "cloud metadata endpoint (link-local)"),
    ([169, 254, 0, 0], 16, "link-local"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments (192.0.0.0/24)"),
    ([192, 0, 2, 0], 24, "documentation (TEST-NET-1)"),
    ([198, 51, 100, 0], 24, "documentation (TEST-NET-2)"),
    ([203, 0, 113, 0], 24, "documentation (TEST-NET-3)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (deprecated)"),
    ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
];

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let a = u32::from(ip);
    V4_RANGES.iter().find(|(net, len, _)| in_v4(a, *net, *len)).map(|(_, _, why)| *why)
}

/// IPv6 ranges forbidden outright (no IPv4 inside worth looking at).
const V6_RANGES: &[(u128, u32, &str)] = &[
    (0, 128, "unspecified address"),
    (1, 128, "loopback"),
    // 64:ff9b:1::/48, local-use NAT64 (RFC 8215): the translation is site-specific.
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48, "local-use NAT64 (64:ff9b:1::/48)"),
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64, "discard-only (100::/64)"),
    // Teredo embeds an obfuscated IPv4 address; nothing legitimate needs it.
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 32, "Teredo (2001::/32)"),
    (0x2001_0002_0000_0000_0000_0000_0000_0000, 48, "benchmarking (2001:2::/48)"),
    (0x2001_0010_0000_0000_0000_0000_0000_0000, 28, "ORCHID (2001:10::/28)"),
    (0x2001_0020_0000_0000_0000_0000_0000_0000, 28, "ORCHIDv2 (2001:20::/28)"),
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32, "documentation (2001:db8::/32)"),
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20, "documentation (3fff::/20)"),
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7, "unique local address (fc00::/7)"),
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10, "link-local (fe80::/10)"),
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10, "site-local (fec0::/10, deprecated)"),
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8, "multicast"),
];

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let a = u128::from(ip);
    if let Some((_, _, why)) = V6_RANGES.iter().find(|(net, len, _)| in_v6(a, *net, *len)) {
        return Some(why);
    }
    // Forms that carry an IPv4 address: judge the address inside.
    embedded_v4(ip).and_then(forbidden_v4)
}

/// The IPv4 address an IPv6 address stands for, if it is one of the wrapping forms:
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d` (deprecated), SIIT
/// `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48`.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let a = u128::from(ip);
    let low32 = Ipv4Addr::from((a & 0xffff_ffff) as u32);
    if in_v6(a, 0x0000_0000_0000_0000_0000_ffff_0000_0000, 96) // IPv4-mapped
        || in_v6(a, 0, 96) // IPv4-compatible (:: and ::1 are caught before)
        || in_v6(a, 0x0000_0000_0000_0000_ffff_0000_0000_0000, 96) // SIIT / IPv4-translated
        || in_v6(a, 0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96)
    // NAT64 well-known prefix
    {
        return Some(low32);
    }
    if in_v6(a, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        return Some(Ipv4Addr::from(((a >> 80) & 0xffff_ffff) as u32));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Option<&'static str> {
        is_forbidden(s.parse().expect("test address"))
    }

    #[test]
    fn public_addresses_pass() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "11.0.0.1",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
            "2001:db7:ffff::1",
        ] {
            assert_eq!(f(s), None, "{s} should be allowed");
        }
    }

    #[test]
    fn edges_of_v4_ranges() {
        for (s, blocked) in [
            ("9.255.255.255", false),
            ("10.0.0.0", true),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("100.64.0.0", true),
            ("100.127.255.255", true),
            ("126.255.255.255", false),
            ("127.255.255.255", true),
            ("128.0.0.0", false),
            ("169.253.255.255", false),
            ("169.254.0.0", true),
            ("169.255.0.0", false),
            ("198.18.0.0", true),
            ("198.19.255.255", true),
            ("223.255.255.255", false),
            ("224.0.0.0", true),
            ("239.255.255.255", true),
            ("240.0.0.0", true),
            ("255.255.255.254", true),
        ] {
            assert_eq!(f(s).is_some(), blocked, "{s}");
        }
    }

    #[test]
    fn reasons_are_specific() {
        assert_eq!(f("169.254.169.254"), Some("cloud metadata endpoint (link-local)"));
        assert_eq!(f("255.255.255.255"), Some("broadcast"));
        assert_eq!(f("0.0.0.0"), Some("unspecified address"));
        assert_eq!(f("::"), Some("unspecified address"));
        assert_eq!(f("::1"), Some("loopback"));
        assert_eq!(f("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(f("2002:a00:1::"), Some("private network (RFC 1918)"));
    }

    #[test]
    fn embedded_forms_unwrap() {
        let v4: Ipv4Addr = "10.1.2.3".parse().expect("v4");
        for s in [
            "::ffff:10.1.2.3",
            "::10.1.2.3",
            "::ffff:0:10.1.2.3",
            "64:ff9b::10.1.2.3",
            "2002:0a01:0203::",
            "2002:a01:203:ffff::1",
        ] {
            let v6: Ipv6Addr = s.parse().expect("v6");
            assert_eq!(embedded_v4(v6), Some(v4), "{s}");
        }
        assert_eq!(embedded_v4("2606:4700::1".parse().expect("v6")), None);
    }
}
