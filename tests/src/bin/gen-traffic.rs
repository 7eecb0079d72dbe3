//! Writes a pcap of sample subscriber traffic for the NAT's inside port.
//!
//! ```text
//! gen-traffic --out FILE [--flows N] [--subscribers S] [--dst-mac aa:bb:cc:dd:ee:ff]
//!             [--seed X] [--servers A,B,...] [--mix udp,tcp,icmp] [--packets-per-flow K]
//!             [--pad] [--ipv6 [--nat64-prefix P] [--subscriber-prefix P]
//!             [--subscriber-prefix-len L]]
//! ```
//!
//! See `cgnat_testkit::traffic` for what the flows look like.

use anyhow::{anyhow, bail, Context, Result};
use cgnat_testkit::traffic::{generate, Ipv6Spec, Net6, Proto, Spec};
use std::net::Ipv4Addr;
use std::path::PathBuf;

const USAGE: &str = "\
usage: gen-traffic --out FILE [options]

Writes a pcap of subscriber traffic (hosts of 100.64.0.0/10 to internet servers) as the
inside port of the NAT receives it.

  --out FILE               the pcap to write (classic, microseconds, Ethernet)
  --flows N                number of flows (default 10000)
  --subscribers S          number of subscribers (default 1000)
  --dst-mac MAC            destination MAC of every frame (default 02:70:63:61:70:00)
  --seed X                 seed of the pseudo-random choices (default 1)
  --servers A,B,...        server addresses (default 192.0.2.10-20, 198.18.0.1-10)
  --mix udp,tcp,icmp       protocols, used in turn (default udp,tcp,icmp)
  --packets-per-flow K     frames per flow (default 3): UDP datagrams; a TCP SYN, then
                           ACK segments with data; ICMP echo requests
  --pad                    pad frames to 60 bytes, as on a real wire

IPv6 subscribers to a NAT64 (RFC 6052 addresses; UDP and ICMPv6 echo carry 8 bytes):
  --ipv6, --family 6       IPv6 hosts, servers embedded in the NAT64 prefix
  --nat64-prefix P         the NAT64 prefix (default 64:ff9b::/96, which carries only
                           global IPv4 addresses: give --servers, or a network-specific
                           prefix for the default servers)
  --subscriber-prefix P    where the subscribers' prefixes are (default 2001:db8:100::/40)
  --subscriber-prefix-len L  one subscriber's prefix (default 56; its host is ::1 in it)
";

fn mac(s: &str) -> Result<[u8; 6]> {
    let v: Vec<u8> = s
        .split([':', '-'])
        .map(|p| {
            if p.len() > 2 {
                bail!("{p:?} is not a byte");
            }
            u8::from_str_radix(p, 16).map_err(|e| anyhow!("{p:?}: {e}"))
        })
        .collect::<Result<_>>()
        .with_context(|| format!("--dst-mac {s}"))?;
    v.try_into()
        .map_err(|_| anyhow!("--dst-mac {s}: a MAC has six bytes"))
}

fn net6(name: &str, s: &str) -> Result<Net6> {
    s.parse().with_context(|| name.to_string())
}

fn seed(s: &str) -> Result<u64> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.with_context(|| format!("--seed {s}"))
}

fn main() -> Result<()> {
    let mut spec = Spec::default();
    let mut v6 = Ipv6Spec::default();
    let mut family6 = false;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        // Both "--flows 10" and "--flows=10".
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| anyhow!("{name} needs a value"))
        };
        match name.as_str() {
            "--out" => out = Some(val()?.into()),
            "--flows" => spec.flows = val()?.parse().context("--flows")?,
            "--subscribers" => spec.subscribers = val()?.parse().context("--subscribers")?,
            "--dst-mac" => spec.dst_mac = mac(&val()?)?,
            "--seed" => spec.seed = seed(&val()?)?,
            "--servers" => {
                spec.servers = val()?
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        s.trim()
                            .parse::<Ipv4Addr>()
                            .with_context(|| format!("--servers: {s:?}"))
                    })
                    .collect::<Result<_>>()?
            }
            "--mix" => {
                spec.mix = val()?
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.parse::<Proto>().context("--mix"))
                    .collect::<Result<_>>()?
            }
            "--packets-per-flow" => {
                spec.packets_per_flow = val()?.parse().context("--packets-per-flow")?
            }
            "--pad" => spec.pad = true,
            "--ipv6" => family6 = true,
            "--family" => {
                family6 = match val()?.as_str() {
                    "4" => false,
                    "6" => true,
                    f => bail!("--family {f}: 4 or 6"),
                }
            }
            "--nat64-prefix" => v6.nat64_prefix = net6(&name, &val()?)?,
            "--subscriber-prefix" => v6.subscriber_net = net6(&name, &val()?)?,
            "--subscriber-prefix-len" => {
                v6.subscriber_prefix_len = val()?.parse().context("--subscriber-prefix-len")?
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            _ => bail!("unknown argument {a}\n{USAGE}"),
        }
    }
    let out = out.ok_or_else(|| anyhow!("--out FILE is required\n{USAGE}"))?;
    if family6 {
        spec.ipv6 = Some(v6);
    } else if v6 != Ipv6Spec::default() {
        bail!("--nat64-prefix and --subscriber-prefix(-len) need --ipv6");
    }
    for w in spec.warnings() {
        eprintln!("gen-traffic: warning: {w}");
    }
    let traffic = generate(&spec)?;
    traffic.write_pcap(&out)?;
    eprintln!(
        "gen-traffic: {} flows ({} udp, {} tcp, {} icmp), {} frames from {} subscribers -> {}",
        traffic.flows.len(),
        traffic.count(Proto::Udp),
        traffic.count(Proto::Tcp),
        traffic.count(Proto::Icmp),
        traffic.frames.len(),
        spec.subscribers,
        out.display()
    );
    Ok(())
}
