//! End-to-end failover of an HA pair (scripts/ha-e2e.sh): two `cgnat run` appliances
//! on the same subscriber and internet segments, their state synced over UDP,
//! keepalived (VRRP) choosing the active and calling `cgnat ha promote|demote`; a
//! 50 MB download through the active, the active SIGKILLed mid-way, the download
//! completing with the right sha256 through the promoted standby, on the same outside
//! port, no inside address on the internet side; an FTP control connection and a UDP
//! stream across the failover; and a SIP call (baresip alice behind the NAT calling
//! baresip bob through kamailio) established through the active: its sessions are on
//! the standby with the same outside ports, its RTP resumes both ways through the
//! promoted standby within 3 s (gaps measured from captures on both sides), with no
//! BYE or re-INVITE until alice hangs up through it.

mod bed;

#[test]
fn a_download_survives_the_active_being_killed() {
    if bed::skip_without_root("the HA failover end-to-end test") {
        return;
    }
    bed::run_script("ha-e2e.sh", "e2e-ha", "HA E2E PASS");
}
