//! Subscriber traffic as the inside port sees it: flows from hosts of 100.64.0.0/10 to
//! servers on the internet, UDP, TCP (SYN, then ACK with data) and ICMP echo.

use etherparse::PacketBuilder;
use std::net::Ipv4Addr;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Number of flows.
    pub flows: usize,
    /// Number of subscribers (hosts) they come from.
    pub subscribers: u32,
    /// Destination MAC of every frame (the NAT's inside port).
    pub dst_mac: [u8; 6],
    /// Seed of the pseudo-random order and ports.
    pub seed: u64,
    /// Which protocols, among "udp", "tcp", "icmp".
    pub mix: Vec<String>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            flows: 1000,
            subscribers: 100,
            dst_mac: [0x02, 0x70, 0x63, 0x61, 0x70, 0x00],
            seed: 1,
            mix: vec!["udp".into(), "tcp".into(), "icmp".into()],
        }
    }
}

/// A flow's first frames and its identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// 6, 17 or 1.
    pub proto: u8,
    /// Subscriber.
    pub src: Ipv4Addr,
    /// Source port, or ICMP identifier.
    pub sport: u16,
    /// Server.
    pub dst: Ipv4Addr,
    /// Destination port (0 for ICMP).
    pub dport: u16,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Subscriber `i` of `n`: spread over 100.64.0.0/10.
pub fn subscriber(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(
        u32::from(Ipv4Addr::new(100, 64, 1, 0)) + i.wrapping_mul(257) % ((1 << 22) - 512),
    )
}

/// The flows of `spec`, each with the frames its client sends, interleaved in a
/// pseudo-random order that keeps each flow's own frames in order.
pub fn generate(spec: &Spec) -> (Vec<Flow>, Vec<(usize, Vec<u8>)>) {
    let mut rng = Rng(spec.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let servers: Vec<Ipv4Addr> = (10..20)
        .map(|i| Ipv4Addr::new(192, 0, 2, i))
        .chain((1..=10).map(|i| Ipv4Addr::new(198, 18, 0, i)))
        .collect();
    let mut flows = Vec::with_capacity(spec.flows);
    let mut per_flow: Vec<Vec<Vec<u8>>> = Vec::with_capacity(spec.flows);
    let smac = |s: Ipv4Addr| {
        let o = s.octets();
        [0x02, 0x00, o[0], o[1], o[2], o[3]]
    };
    let mut used = std::collections::HashSet::new();
    for i in 0..spec.flows {
        let src = subscriber((rng.next() % u64::from(spec.subscribers.max(1))) as u32);
        let dst = servers[(rng.next() % servers.len() as u64) as usize];
        let kind = spec.mix[i % spec.mix.len()].as_str();
        let proto = match kind {
            "tcp" => 6,
            "icmp" => 1,
            _ => 17,
        };
        let mut sport = 1024 + (rng.next() % 64000) as u16;
        while !used.insert((proto, src, sport)) {
            sport = 1024 + (rng.next() % 64000) as u16;
        }
        let dport = match proto {
            6 => [80u16, 443, 8080][(rng.next() % 3) as usize],
            17 => [53u16, 123, 443, 4500][(rng.next() % 4) as usize],
            _ => 0,
        };
        let b = || {
            PacketBuilder::ethernet2(smac(src), spec.dst_mac).ipv4(src.octets(), dst.octets(), 64)
        };
        let mut frames = Vec::new();
        match proto {
            6 => {
                let isn = rng.next() as u32;
                let mut f = Vec::new();
                b().tcp(sport, dport, isn, 64240)
                    .syn()
                    .write(&mut f, &[])
                    .expect("sized");
                frames.push(f);
                let mut f = Vec::new();
                b().tcp(sport, dport, isn.wrapping_add(1), 64240)
                    .ack(rng.next() as u32)
                    .psh()
                    .write(&mut f, format!("GET /{i} HTTP/1.1\r\n\r\n").as_bytes())
                    .expect("sized");
                frames.push(f);
            }
            17 => {
                let mut f = Vec::new();
                b().udp(sport, dport)
                    .write(&mut f, format!("datagram {i}").as_bytes())
                    .expect("sized");
                frames.push(f);
            }
            _ => {
                for seq in 1..=2u16 {
                    let mut f = Vec::new();
                    b().icmpv4_echo_request(sport, seq)
                        .write(&mut f, b"cgnat sample ping")
                        .expect("sized");
                    frames.push(f);
                }
            }
        }
        flows.push(Flow {
            proto,
            src,
            sport,
            dst,
            dport,
        });
        per_flow.push(frames);
    }
    // Interleave: repeatedly take the next frame of a random flow that has some left.
    let mut next = vec![0usize; per_flow.len()];
    let mut live: Vec<usize> = (0..per_flow.len()).collect();
    let mut out = Vec::new();
    while !live.is_empty() {
        let k = (rng.next() % live.len() as u64) as usize;
        let f = live[k];
        out.push((f, per_flow[f][next[f]].clone()));
        next[f] += 1;
        if next[f] == per_flow[f].len() {
            live.swap_remove(k);
        }
    }
    (flows, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_distinct_and_from_shared_address_space() {
        let spec = Spec {
            flows: 3000,
            subscribers: 50,
            ..Spec::default()
        };
        let (flows, frames) = generate(&spec);
        assert_eq!(flows.len(), 3000);
        let cgn: std::net::Ipv4Addr = "100.64.0.0".parse().unwrap();
        for f in &flows {
            assert_eq!(u32::from(f.src) >> 22, u32::from(cgn) >> 22);
        }
        let subs: std::collections::HashSet<_> = flows.iter().map(|f| f.src).collect();
        assert!(subs.len() <= 50 && subs.len() > 40);
        assert_eq!(frames.len(), 3000 / 3 * 5);
        // Deterministic.
        assert_eq!(generate(&spec).1, frames);
    }
}
