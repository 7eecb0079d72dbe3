//! Whole frames through the appliance: one worker and the control handler wired
//! together by the harness the pipeline tests use (no EAL), every ALG on, frames on
//! both sides. The input is a run of frames, each `[side and clock byte][length, 2
//! bytes big-endian][frame]`: bit 0 of the first byte says the side (0 inside, 1
//! outside), its other bits advance the clock by 0..127 seconds. The first input
//! byte picks the drive: even, the frames go in as they are (ARP, neighbour waits and
//! timers included); odd, they are replayed as `cgnat replay` does (frames to the
//! inside host played by the outside peer at the mapping it saw).
//!
//! Besides not crashing: nothing leaves the outside port with a source other than a
//! pool address or the port's own (no inside address in a header).
#![no_main]
use cgnat_config::Config;
use cgnat_dataplane::harness::Harness;
use cgnat_dataplane::pipeline::Side;
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

const CONFIG: &str = r#"
[dataplane]
control_lcore = 0
worker_lcores = [1]

[[ports]]
name = "inside"
role = "inside"
device = "net_null0"
ipv4 = "100.64.0.1/10"

[[ports]]
name = "outside"
role = "outside"
device = "net_null1"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"

[nat]
inside = ["100.64.0.0/10", "192.168.0.0/16", "141.142.0.0/16", "10.0.0.0/8", "172.16.0.0/12"]
pool = ["198.51.100.0/28"]
max_sessions = 4096
filtering = "address-and-port-dependent"

[alg]
ftp = { enabled = true }
tftp = { enabled = true }
sip = { enabled = true }
rtsp = { enabled = true }
irc = { enabled = true }
pptp = { enabled = true }

[pcp]
min_lifetime = 1
"#;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config::parse(CONFIG, "fuzz.toml").expect("the fuzz config parses"))
}

/// The frames of an input, with their side and time.
fn frames(mut data: &[u8]) -> Vec<(Side, u32, &[u8])> {
    let mut out = Vec::new();
    let mut now = 1000u32;
    while data.len() >= 3 && out.len() < 64 {
        let side = if data[0] & 1 == 0 {
            Side::Inside
        } else {
            Side::Outside
        };
        now += u32::from(data[0] >> 1);
        let len = usize::from(u16::from_be_bytes([data[1], data[2]])).min(data.len() - 3);
        out.push((side, now, &data[3..3 + len]));
        data = &data[3 + len..];
    }
    out
}

fn check_outside(frame: &[u8]) {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return;
    }
    let src = Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
    let pool = src.octets()[..3] == [198, 51, 100] && src.octets()[3] < 16;
    assert!(
        pool || src == Ipv4Addr::new(203, 0, 113, 1),
        "a frame left the outside port from {src}: {frame:02x?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let frames = frames(rest);
    if mode & 1 == 0 {
        let mut h = Harness::new(config(), 1000);
        let mut last = 1000;
        for (side, now, f) in frames {
            if now != last {
                for (s, out) in h.timer_frames(now) {
                    if s == Side::Outside {
                        check_outside(&out);
                    }
                }
                h.expire(now);
                last = now;
            }
            for (s, out) in h.inject(f, side, now) {
                if s == Side::Outside {
                    check_outside(&out);
                }
            }
        }
    } else {
        // The inside host: the source of the first frame from the inside.
        let host = frames
            .iter()
            .find(|(s, _, f)| *s == Side::Inside && f.len() >= 30)
            .map(|(_, _, f)| Ipv4Addr::new(f[26], f[27], f[28], f[29]));
        let Some(host) = host else { return };
        let timed: Vec<(u64, Vec<u8>)> = frames
            .iter()
            .map(|(_, now, f)| (u64::from(*now), f.to_vec()))
            .collect();
        let r = cgnat_dataplane::replay::replay(config(), host, &timed);
        for f in &r.outside_view {
            check_outside(f);
        }
    }
});
