//! End to end with IPv6 on the inside port (issue 17): a Linux subscriber resolves
//! cgnat by neighbour discovery, pings its global and link-local addresses, and fails
//! duplicate address detection on cgnat's address (scripts/ipv6-inside-e2e.sh).

mod bed;

#[test]
fn a_linux_host_resolves_and_pings_the_inside_port_over_ipv6() {
    if bed::skip_without_root("the IPv6 inside end-to-end test") {
        return;
    }
    bed::run_script("ipv6-inside-e2e.sh", "e2e-ipv6", "IPV6 INSIDE E2E PASS");
}
