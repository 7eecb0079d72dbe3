//! End to end with real hosts: a subscriber and an internet namespace joined to a
//! running `cgnat run` by veth pairs through net_af_packet (scripts/netns-e2e.sh sets
//! the bed up and checks ping, a 1 MB HTTP download by sha256, a UDP round trip, and
//! that only pool addresses reach the internet side).

mod bed;

#[test]
fn subscriber_reaches_internet_host_through_cgnat() {
    if bed::skip_without_root("the end-to-end test") {
        return;
    }
    bed::run_script("netns-e2e.sh", "e2e-netns", "E2E PASS");
}
