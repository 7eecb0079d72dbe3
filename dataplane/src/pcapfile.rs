//! Classic pcap files for pcap mode: dealing one input over several queues, and
//! merging several queues' outputs in time order.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

struct Record {
    ts: (u32, u32),
    bytes: Vec<u8>,
}

fn read(path: &Path) -> Result<(Vec<u8>, Vec<Record>)> {
    let d = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if d.len() < 24 {
        bail!(
            "{}: not a pcap file (shorter than its header)",
            path.display()
        );
    }
    let le = match [d[0], d[1], d[2], d[3]] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => bail!(
            "{}: not a classic pcap file (pcapng is not read by DPDK's net_pcap either)",
            path.display()
        ),
    };
    let u32_at = |at: usize| {
        let b = [d[at], d[at + 1], d[at + 2], d[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= d.len() {
        let caplen = u32_at(at + 8) as usize;
        let end = at + 16 + caplen;
        if end > d.len() {
            bail!("{}: record at byte {at} is truncated", path.display());
        }
        out.push(Record {
            ts: (u32_at(at), u32_at(at + 4)),
            bytes: d[at..end].to_vec(),
        });
        at = end;
    }
    Ok((d[..24].to_vec(), out))
}

/// The queue a NIC's RSS on IPv4 addresses would give a frame: a hash of source and
/// destination, so one conversation stays on one queue while a subscriber's
/// conversations spread over all of them. Other frames go to queue 0.
fn rss_queue(frame: &[u8], n: usize) -> usize {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return 0;
    }
    let a = u32::from_be_bytes([frame[26], frame[27], frame[28], frame[29]]);
    let b = u32::from_be_bytes([frame[30], frame[31], frame[32], frame[33]]);
    let h = (a ^ b.rotate_left(16)).wrapping_mul(0x9e37_79b1);
    (h >> 16) as usize % n
}

/// Deals the records of `input` over `n` files `PREFIX{q}.pcap` as RSS would.
pub fn split(input: &Path, prefix: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let (header, records) = read(input)?;
    let mut files: Vec<Vec<u8>> = (0..n).map(|_| header.clone()).collect();
    for r in &records {
        files[rss_queue(&r.bytes[16..], n)].extend_from_slice(&r.bytes);
    }
    let mut paths = Vec::new();
    for (q, f) in files.into_iter().enumerate() {
        let p = PathBuf::from(format!("{}{q}.pcap", prefix.display()));
        std::fs::write(&p, f).with_context(|| format!("writing {}", p.display()))?;
        paths.push(p);
    }
    Ok(paths)
}

/// Merges pcap files (as net_pcap wrote them, one per queue) in time order.
pub fn merge(parts: &[PathBuf], out: &Path) -> Result<()> {
    let mut header = None;
    let mut all = Vec::new();
    for p in parts {
        let (h, mut r) = read(p)?;
        header.get_or_insert(h);
        all.append(&mut r);
        let _ = std::fs::remove_file(p);
    }
    all.sort_by_key(|r| r.ts);
    let mut bytes = header.unwrap_or_default();
    for r in all {
        bytes.extend_from_slice(&r.bytes);
    }
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}
