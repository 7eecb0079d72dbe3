//! End to end with VLANs: subscribers on Linux VLAN interfaces (802.1Q 100 and 200,
//! QinQ 10/300) of the inside veth, the internet on VLAN 7 of the outside one, a
//! running `cgnat run` between (scripts/netns-vlan-e2e.sh sets the bed up and checks
//! ping and a 1 MB HTTP download by sha256 per subscriber, only pool sources tagged 7
//! on the internet side, and the per-VLAN counters in /metrics and the summary).

mod bed;

#[test]
fn vlan_subscribers_reach_the_internet_through_cgnat() {
    if bed::skip_without_root("the VLAN end-to-end test") {
        return;
    }
    bed::run_script("netns-vlan-e2e.sh", "e2e-vlan", "E2E PASS");
}
