//! Subscriber traffic as the NAT's inside port receives it: flows from hosts of
//! 100.64.0.0/10 to servers on the internet. UDP datagrams, TCP connections (a SYN,
//! then ACK segments with data, from the client side only: the outside is a sink) and
//! ICMP echo requests, interleaved in a deterministic pseudo-random order that keeps
//! each flow's own frames in order.

use crate::packet::{Frame, Mac, TcpFlags, DEFAULT_DST_MAC, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use anyhow::{bail, Result};
use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::str::FromStr;

/// A flow's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// A TCP connection: SYN, then ACK segments with data.
    Tcp,
    /// ICMP echo requests.
    Icmp,
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Udp => PROTO_UDP,
            Proto::Tcp => PROTO_TCP,
            Proto::Icmp => PROTO_ICMP,
        }
    }
}

impl FromStr for Proto {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Ok(Proto::Udp),
            "tcp" => Ok(Proto::Tcp),
            "icmp" => Ok(Proto::Icmp),
            _ => bail!("unknown protocol {s:?}: udp, tcp or icmp"),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Icmp => "icmp",
        })
    }
}

/// The servers flows go to unless told otherwise: 192.0.2.10 to 192.0.2.20 and
/// 198.18.0.1 to 198.18.0.10. None is in 198.51.100.0/24 or 203.0.113.0/24, the NAT
/// pool and the outside link of the sample configurations.
pub fn default_servers() -> Vec<Ipv4Addr> {
    (10..=20)
        .map(|i| Ipv4Addr::new(192, 0, 2, i))
        .chain((1..=10).map(|i| Ipv4Addr::new(198, 18, 0, i)))
        .collect()
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Number of flows (default 10,000).
    pub flows: usize,
    /// Number of subscribers (hosts) the flows come from (default 1,000); each gets
    /// `flows / subscribers` flows or one more.
    pub subscribers: u32,
    /// Destination MAC of every frame: the NAT's inside port (default
    /// 02:70:63:61:70:00, net_pcap's).
    pub dst_mac: Mac,
    /// Seed of every pseudo-random choice (default 1).
    pub seed: u64,
    /// Servers the flows go to (default [`default_servers`]).
    pub servers: Vec<Ipv4Addr>,
    /// Protocols, used in turn (default UDP, TCP, ICMP: a third of the flows each).
    pub mix: Vec<Proto>,
    /// Frames of each flow (default 3): UDP datagrams; a TCP SYN and then data segments;
    /// ICMP echo requests.
    pub packets_per_flow: usize,
    /// Pad every frame with zeros to 60 bytes, the Ethernet minimum, as frames that came
    /// off a real wire are (default off: the IPv4 total length ends each frame).
    pub pad: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            flows: 10_000,
            subscribers: 1000,
            dst_mac: DEFAULT_DST_MAC,
            seed: 1,
            servers: default_servers(),
            mix: vec![Proto::Udp, Proto::Tcp, Proto::Icmp],
            packets_per_flow: 3,
            pad: false,
        }
    }
}

/// Largest number of flows one subscriber may have (ports and identifiers are drawn at
/// random, distinct per subscriber and protocol).
pub const MAX_FLOWS_PER_SUBSCRIBER: usize = 30_000;
/// Largest number of frames per flow.
pub const MAX_PACKETS_PER_FLOW: usize = 10_000;

fn in_net(a: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(a) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

impl Spec {
    /// Checks that the spec can be generated.
    pub fn validate(&self) -> Result<()> {
        if self.subscribers == 0 || self.subscribers > SUBSCRIBER_CAPACITY {
            bail!(
                "subscribers: {} is not within 1..={SUBSCRIBER_CAPACITY}",
                self.subscribers
            );
        }
        if self.mix.is_empty() {
            bail!("mix: at least one of udp, tcp, icmp");
        }
        if self.servers.is_empty() {
            bail!("servers: at least one");
        }
        if let Some(s) = self
            .servers
            .iter()
            .find(|s| in_net(**s, [100, 64, 0, 0], 10))
        {
            bail!("server {s} is in 100.64.0.0/10, where the subscribers are");
        }
        if self.packets_per_flow == 0 || self.packets_per_flow > MAX_PACKETS_PER_FLOW {
            bail!(
                "packets per flow: {} is not within 1..={MAX_PACKETS_PER_FLOW}",
                self.packets_per_flow
            );
        }
        let per_sub = self.flows.div_ceil(self.subscribers as usize);
        if per_sub > MAX_FLOWS_PER_SUBSCRIBER {
            bail!(
                "{} flows from {} subscribers is {per_sub} each, more than {MAX_FLOWS_PER_SUBSCRIBER}",
                self.flows,
                self.subscribers
            );
        }
        Ok(())
    }

    /// Remarks on servers that would make poor samples: in the NAT pool or on the outside
    /// link of the sample configurations, or in private space.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for &s in &self.servers {
            if in_net(s, [198, 51, 100, 0], 24) {
                out.push(format!(
                    "server {s} is in 198.51.100.0/24, the NAT pool of the sample configs"
                ));
            } else if in_net(s, [203, 0, 113, 0], 24) {
                out.push(format!(
                    "server {s} is in 203.0.113.0/24, the outside link of the sample configs"
                ));
            } else if s.is_private() || s.is_loopback() || s.is_unspecified() {
                out.push(format!(
                    "server {s} is not a public address, a NAT may not translate it"
                ));
            }
        }
        out
    }
}

/// One generated flow.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Protocol.
    pub proto: Proto,
    /// Subscriber's address.
    pub src: Ipv4Addr,
    /// Subscriber's port, or the ICMP echo identifier.
    pub sport: u16,
    /// Server's address.
    pub dst: Ipv4Addr,
    /// Server's port (0 for ICMP).
    pub dport: u16,
    /// Number of frames.
    pub frames: usize,
}

/// One generated frame and the flow it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficFrame {
    /// Index of the flow in [`Traffic::flows`].
    pub flow: usize,
    /// The Ethernet frame.
    pub data: Vec<u8>,
}

/// What [`generate`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traffic {
    /// The flows, in the order they were drawn.
    pub flows: Vec<Flow>,
    /// Every frame of every flow, interleaved.
    pub frames: Vec<TrafficFrame>,
}

impl Traffic {
    /// Writes the frames as a classic pcap, the first at
    /// [`crate::pcap::DEFAULT_START_NANOS`], then one every 100 microseconds.
    pub fn write_pcap(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = crate::pcap::PcapWriter::create(path)?;
        for (i, f) in self.frames.iter().enumerate() {
            let ts =
                crate::pcap::DEFAULT_START_NANOS + i as u64 * crate::pcap::DEFAULT_INTERVAL_NANOS;
            w.write(ts, &f.data)?;
        }
        w.finish()
    }

    /// Number of flows of a protocol.
    pub fn count(&self, proto: Proto) -> usize {
        self.flows.iter().filter(|f| f.proto == proto).count()
    }
}

/// A tiny xorshift64* generator: deterministic, good enough to spread choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        // One splitmix64 step, so that nearby seeds start far apart and the state is
        // never zero.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0; the slight bias of a modulo does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// How many distinct subscribers [`subscriber`] can place in 100.64.0.0/10: hosts .1 to
/// .254 of every /24 but 100.64.0.0/24 (which holds the NAT's own inside address).
pub const SUBSCRIBER_CAPACITY: u32 = ((1 << 14) - 1) * 254;

/// Address of subscriber `i` of `n` (`i` < `n` ≤ [`SUBSCRIBER_CAPACITY`]): spread
/// evenly over 100.64.0.0/10, never a .0 or .255, never in 100.64.0.0/24.
pub fn subscriber(i: u32, n: u32) -> Ipv4Addr {
    let n = n.clamp(1, SUBSCRIBER_CAPACITY);
    let stride = SUBSCRIBER_CAPACITY / n;
    let j = (i % n) * stride;
    let block = j / 254 + 1;
    let host = j % 254 + 1;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + block * 256 + host)
}

/// The MAC a subscriber's frames come from: 02:00 and its IPv4 address.
pub fn subscriber_mac(a: Ipv4Addr) -> Mac {
    let o = a.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// Smallest Ethernet frame without its frame check sequence.
pub const MIN_FRAME: usize = 60;

/// Payload of datagram `n` of flow `i` to port `dport`: a DNS query for the A record of
/// `f<i>.example` to port 53 (so that tcpdump shows it as one), short text otherwise.
fn udp_payload(dport: u16, i: usize, n: usize) -> Vec<u8> {
    if dport != 53 {
        return format!("flow {i} datagram {n}").into_bytes();
    }
    let id = (i as u16).wrapping_mul(31).wrapping_add(n as u16);
    let label = format!("f{i}");
    let mut q = Vec::with_capacity(29 + label.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    q.push(label.len() as u8);
    q.extend_from_slice(label.as_bytes());
    q.push(7);
    q.extend_from_slice(b"example");
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    q
}

/// Generates the traffic of `spec` (after [`Spec::validate`]). The same spec always gives
/// the same frames.
pub fn generate(spec: &Spec) -> Result<Traffic> {
    spec.validate()?;
    let mut rng = Rng::new(spec.seed);
    let k = spec.packets_per_flow;

    // Which subscriber each flow comes from: each in turn, in a shuffled order.
    let mut owner: Vec<u32> = (0..spec.flows)
        .map(|i| (i % spec.subscribers as usize) as u32)
        .collect();
    for i in (1..owner.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        owner.swap(i, j);
    }

    let mut used = HashSet::with_capacity(spec.flows);
    let mut flows = Vec::with_capacity(spec.flows);
    let mut per_flow: Vec<Vec<Vec<u8>>> = Vec::with_capacity(spec.flows);
    for (i, &sub) in owner.iter().enumerate() {
        let proto = spec.mix[i % spec.mix.len()];
        let src = subscriber(sub, spec.subscribers);
        let dst = *rng.pick(&spec.servers);
        // Ports from the ephemeral-ish range, identifiers from all 16 bits; distinct per
        // subscriber and protocol, so every flow is its own session.
        let sport = loop {
            let p = match proto {
                Proto::Icmp => rng.below(1 << 16) as u16,
                _ => 1024 + rng.below(65536 - 1024) as u16,
            };
            if used.insert((proto, src, p)) {
                break p;
            }
        };
        let dport = match proto {
            Proto::Udp => match rng.below(3) {
                0 => 53,
                1 => 443,
                _ => 1024 + rng.below(65536 - 1024) as u16,
            },
            Proto::Tcp => *rng.pick(&[80u16, 443, 443, 8080, 22]),
            Proto::Icmp => 0,
        };
        let frame = Frame::new()
            .src_mac(subscriber_mac(src))
            .dst_mac(spec.dst_mac)
            .df(proto == Proto::Tcp);
        let ident0 = rng.next_u64() as u16;
        let b = |n: usize| frame.clone().ident(ident0.wrapping_add(n as u16));
        let (s, d) = (SocketAddrV4::new(src, sport), SocketAddrV4::new(dst, dport));
        let mut frames = Vec::with_capacity(k);
        match proto {
            Proto::Udp => {
                for n in 0..k {
                    let payload = udp_payload(dport, i, n);
                    frames.push(b(n).udp(s, d, &payload));
                }
            }
            Proto::Tcp => {
                let isn = rng.next_u64() as u32;
                let server_isn = rng.next_u64() as u32;
                frames.push(b(0).tcp(s, d, isn, 0, TcpFlags::SYN, &[]));
                let mut seq = isn.wrapping_add(1);
                for n in 1..k {
                    let payload = format!("flow {i} segment {n}\r\n");
                    let ack = server_isn.wrapping_add(1);
                    frames.push(b(n).tcp(s, d, seq, ack, TcpFlags::PSH_ACK, payload.as_bytes()));
                    seq = seq.wrapping_add(payload.len() as u32);
                }
            }
            Proto::Icmp => {
                for n in 0..k {
                    let seq = (n + 1) as u16;
                    frames.push(b(n).icmp_echo(src, dst, sport, seq, false, b"cgnat sample ping"));
                }
            }
        }
        if spec.pad {
            for f in &mut frames {
                if f.len() < MIN_FRAME {
                    f.resize(MIN_FRAME, 0);
                }
            }
        }
        flows.push(Flow {
            proto,
            src,
            sport,
            dst,
            dport,
            frames: frames.len(),
        });
        per_flow.push(frames);
    }

    // Interleave: again and again, the next frame of a random flow that has some left.
    let mut next = vec![0usize; per_flow.len()];
    let mut live: Vec<usize> = (0..per_flow.len()).collect();
    let mut out = Vec::with_capacity(spec.flows * k);
    while !live.is_empty() {
        let at = rng.below(live.len() as u64) as usize;
        let f = live[at];
        let data = std::mem::take(&mut per_flow[f][next[f]]);
        out.push(TrafficFrame { flow: f, data });
        next[f] += 1;
        if next[f] == per_flow[f].len() {
            live.swap_remove(at);
        }
    }
    Ok(Traffic { flows, frames: out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{checksums_ok, parse, L4};

    fn small() -> Spec {
        Spec {
            flows: 3000,
            subscribers: 50,
            ..Spec::default()
        }
    }

    #[test]
    fn subscribers_are_spread_over_the_shared_space() {
        for n in [1, 2, 100, 1000, 65_536, SUBSCRIBER_CAPACITY] {
            let mut seen = HashSet::new();
            let step = (n / 1000).max(1);
            let mut idx: Vec<u32> = (0..n).step_by(step as usize).collect();
            if idx.last() != Some(&(n - 1)) {
                idx.push(n - 1);
            }
            for i in idx {
                let a = subscriber(i, n);
                assert!(in_net(a, [100, 64, 0, 0], 10), "{a}");
                assert!(!in_net(a, [100, 64, 0, 0], 24), "{a}");
                let last = a.octets()[3];
                assert!(last != 0 && last != 255, "{a}");
                assert!(seen.insert(a), "{a} twice for n={n}");
            }
        }
        // A hundred subscribers reach far into the /10.
        assert!(subscriber(99, 100).octets()[1] >= 120);
        assert_eq!(subscriber(0, 100), Ipv4Addr::new(100, 64, 1, 1));
    }

    #[test]
    fn flows_are_distinct_checksummed_and_deterministic() {
        let spec = small();
        let t = generate(&spec).unwrap();
        assert_eq!(t.flows.len(), 3000);
        assert_eq!(t.frames.len(), 3000 * 3);
        assert_eq!(t.count(Proto::Udp), 1000);
        assert_eq!(t.count(Proto::Tcp), 1000);
        assert_eq!(t.count(Proto::Icmp), 1000);
        let subs: HashSet<_> = t.flows.iter().map(|f| f.src).collect();
        assert_eq!(subs.len(), 50, "every subscriber has flows");
        let keys: HashSet<_> = t
            .flows
            .iter()
            .map(|f| (f.proto, f.src, f.sport, f.dst, f.dport))
            .collect();
        assert_eq!(keys.len(), 3000);
        // Each frame parses back to its flow, in order within the flow.
        let mut seen = vec![0usize; t.flows.len()];
        for fr in &t.frames {
            let f = &t.flows[fr.flow];
            assert!(checksums_ok(&fr.data));
            let p = parse(&fr.data).unwrap();
            assert_eq!((p.src, p.dst, p.protocol), (f.src, f.dst, f.proto.number()));
            assert_eq!(p.src_mac, subscriber_mac(f.src));
            assert_eq!(p.dst_mac, DEFAULT_DST_MAC);
            let n = seen[fr.flow];
            match p.l4 {
                L4::Udp { sport, dport } => assert_eq!((sport, dport), (f.sport, f.dport)),
                L4::Tcp {
                    sport,
                    dport,
                    flags,
                    ..
                } => {
                    assert_eq!((sport, dport), (f.sport, f.dport));
                    let want = if n == 0 {
                        TcpFlags::SYN
                    } else {
                        TcpFlags::PSH_ACK
                    };
                    assert_eq!(flags, want);
                }
                L4::Icmp {
                    icmp_type, id, seq, ..
                } => {
                    assert_eq!((icmp_type, id, seq), (8, f.sport, n as u16 + 1));
                }
                L4::Other => panic!("unexpected frame"),
            }
            seen[fr.flow] += 1;
        }
        assert!(seen.iter().all(|&n| n == 3));
        // Deterministic, and the seed matters.
        assert_eq!(generate(&spec).unwrap(), t);
        let other = generate(&Spec { seed: 2, ..spec }).unwrap();
        assert_ne!(other.frames, t.frames);
    }

    #[test]
    fn flows_are_interleaved() {
        let t = generate(&small()).unwrap();
        // The first 100 frames belong to many different flows.
        let first: HashSet<_> = t.frames[..100].iter().map(|f| f.flow).collect();
        assert!(first.len() > 80, "{}", first.len());
    }

    #[test]
    fn options_are_honoured() {
        let spec = Spec {
            flows: 20,
            subscribers: 3,
            mix: vec![Proto::Tcp],
            packets_per_flow: 1,
            servers: vec![Ipv4Addr::new(192, 0, 2, 99)],
            dst_mac: [2, 9, 9, 9, 9, 9],
            ..Spec::default()
        };
        let t = generate(&spec).unwrap();
        assert_eq!(t.frames.len(), 20);
        for fr in &t.frames {
            let p = parse(&fr.data).unwrap();
            assert_eq!(p.tcp_flags(), Some(TcpFlags::SYN));
            assert_eq!(p.dst, Ipv4Addr::new(192, 0, 2, 99));
            assert_eq!(p.dst_mac, [2, 9, 9, 9, 9, 9]);
        }
        let t = generate(&Spec {
            flows: 0,
            ..spec.clone()
        })
        .unwrap();
        assert!(t.frames.is_empty());
    }

    #[test]
    fn padding_keeps_packets_intact() {
        let spec = Spec {
            flows: 300,
            subscribers: 10,
            pad: true,
            ..Spec::default()
        };
        let padded = generate(&spec).unwrap();
        let plain = generate(&Spec { pad: false, ..spec }).unwrap();
        let mut grew = 0;
        for (a, b) in padded.frames.iter().zip(&plain.frames) {
            assert!(a.data.len() >= MIN_FRAME);
            assert!(checksums_ok(&a.data));
            assert_eq!(parse(&a.data), parse(&b.data));
            grew += usize::from(a.data.len() > b.data.len());
        }
        assert!(grew > 100, "{grew}");
    }

    #[test]
    fn udp_payloads_look_like_their_protocols() {
        let dns = udp_payload(53, 12, 0);
        assert_eq!(&dns[2..6], &[0x01, 0x00, 0, 1]);
        assert_eq!(&dns[12..], b"\x03f12\x07example\x00\x00\x01\x00\x01");
        assert_eq!(udp_payload(443, 1, 2), b"flow 1 datagram 2");
    }

    #[test]
    fn bad_specs_are_refused() {
        let ok = Spec::default();
        assert!(ok.validate().is_ok());
        assert!(ok.warnings().is_empty());
        for bad in [
            Spec {
                subscribers: 0,
                ..ok.clone()
            },
            Spec {
                mix: vec![],
                ..ok.clone()
            },
            Spec {
                servers: vec![],
                ..ok.clone()
            },
            Spec {
                servers: vec![Ipv4Addr::new(100, 100, 0, 1)],
                ..ok.clone()
            },
            Spec {
                packets_per_flow: 0,
                ..ok.clone()
            },
            Spec {
                flows: 100_000,
                subscribers: 1,
                ..ok.clone()
            },
        ] {
            assert!(generate(&bad).is_err(), "{bad:?}");
        }
        let w = Spec {
            servers: vec![
                Ipv4Addr::new(198, 51, 100, 1),
                Ipv4Addr::new(203, 0, 113, 9),
            ],
            ..ok
        };
        assert_eq!(w.warnings().len(), 2);
        assert!(default_servers()
            .iter()
            .all(|s| !in_net(*s, [198, 51, 100, 0], 24) && !in_net(*s, [203, 0, 113, 0], 24)));
    }

    #[test]
    fn protocols_parse() {
        assert_eq!("UDP".parse::<Proto>().unwrap(), Proto::Udp);
        assert_eq!(" tcp".parse::<Proto>().unwrap(), Proto::Tcp);
        assert_eq!("icmp".parse::<Proto>().unwrap().to_string(), "icmp");
        assert!("sctp".parse::<Proto>().is_err());
    }

    #[test]
    fn rng_is_deterministic() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(Rng::new(0).next_u64(), Rng::new(1).next_u64());
        let mut r = Rng::new(3);
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}
