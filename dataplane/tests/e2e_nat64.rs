//! End to end with stateful NAT64 (issue 17), scripts/nat64-e2e.sh: an IPv6-only Linux
//! subscriber reaches an IPv4-only server through cgnat (curl of 5 MB with sha256,
//! ping, a UDP round trip) by the address under the prefix, by name through a real
//! DNS64 (unbound's dns64 module), and from an IPv4-only application through a CLAT
//! (tayga, 464XLAT, cgnat as the PLAT); the server side sees only pool addresses; FTP
//! through the RFC 6384 ALG (curl EPSV, --disable-epsv, EPRT to pyftpdlib, 5 MB each)
//! and TFTP (tftp-hpa to tftpd-hpa); UDP in fragments (3,000 bytes out as IPv6
//! fragments, 1,472 back cut into IPv6 fragments). Then
//! the same checks with the usual Linux PLAT (tayga plus nftables snat) in cgnat's
//! place, on the same namespaces.

mod bed;

#[test]
fn an_ipv6_only_subscriber_reaches_an_ipv4_server_through_nat64() {
    if bed::skip_without_root("the NAT64 end-to-end test") {
        return;
    }
    bed::run_script("nat64-e2e.sh", "e2e-nat64", "NAT64 E2E PASS");
}
