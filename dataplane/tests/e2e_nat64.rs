//! End to end with stateful NAT64 (issue 17): an IPv6-only Linux subscriber reaches an
//! IPv4-only server through cgnat: curl of 3 MB (sha256), ping, a UDP round trip, UDP
//! in fragments (3,000 bytes out as IPv6 fragments, 1,472 back cut into IPv6
//! fragments); the server side sees only pool addresses (scripts/nat64-e2e.sh).

mod bed;

#[test]
fn an_ipv6_only_subscriber_reaches_an_ipv4_server_through_nat64() {
    if bed::skip_without_root("the NAT64 end-to-end test") {
        return;
    }
    bed::run_script("nat64-e2e.sh", "e2e-nat64", "NAT64 E2E PASS");
}
