//! Writes a pcap of subscriber traffic for the NAT's inside port.
//!
//! gen-traffic --out FILE [--flows N] [--subscribers S] [--seed X] [--mix udp,tcp,icmp]
//!             [--dst-mac aa:bb:cc:dd:ee:ff]

use anyhow::{anyhow, bail, Context, Result};
use cgnat_testkit::traffic::{generate, Spec};
use std::path::PathBuf;

fn mac(s: &str) -> Result<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .context("bad MAC")?;
    v.try_into().map_err(|_| anyhow!("a MAC has six bytes"))
}

fn main() -> Result<()> {
    let mut spec = Spec::default();
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--out" => out = Some(val()?.into()),
            "--flows" => spec.flows = val()?.parse().context("--flows")?,
            "--subscribers" => spec.subscribers = val()?.parse().context("--subscribers")?,
            "--seed" => spec.seed = val()?.parse().context("--seed")?,
            "--mix" => spec.mix = val()?.split(',').map(String::from).collect(),
            "--dst-mac" => spec.dst_mac = mac(&val()?)?,
            "-h" | "--help" => {
                println!("gen-traffic --out FILE [--flows N] [--subscribers S] [--seed X] [--mix udp,tcp,icmp] [--dst-mac MAC]");
                return Ok(());
            }
            _ => bail!("unknown argument {a}"),
        }
    }
    if spec
        .mix
        .iter()
        .any(|m| !["udp", "tcp", "icmp"].contains(&m.as_str()))
        || spec.mix.is_empty()
    {
        bail!("--mix takes udp, tcp and icmp");
    }
    let out = out.ok_or_else(|| anyhow!("--out FILE is required"))?;
    let (flows, frames) = generate(&spec);
    let frames: Vec<Vec<u8>> = frames.into_iter().map(|(_, f)| f).collect();
    cgnat_testkit::pcap::write(&out, &frames, 1_700_000_000, 100)?;
    eprintln!(
        "gen-traffic: {} flows, {} frames from {} subscribers -> {}",
        flows.len(),
        frames.len(),
        spec.subscribers,
        out.display()
    );
    Ok(())
}
