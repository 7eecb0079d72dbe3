//! Classic pcap files (what DPDK's net_pcap reads and writes): reading and writing
//! frames, dealing one input over several queues, merging queues' outputs in time
//! order. Used by pcap mode and by the tests.

use std::io::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};

struct Record {
    ts: (u32, u32),
    /// The record header and the frame, as in the file.
    bytes: Vec<u8>,
}

fn bad(path: &Path, what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// The global header of a little-endian, microsecond, Ethernet pcap.
pub fn header() -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

/// Writes `frames`, one every `interval_us` microseconds from `start_s`.
pub fn write(path: &Path, frames: &[Vec<u8>], start_s: u32, interval_us: u32) -> Result<()> {
    let mut out = header();
    for (i, f) in frames.iter().enumerate() {
        let t = u64::from(interval_us) * i as u64;
        out.extend_from_slice(&(start_s + (t / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out)
}

/// The frames of a classic pcap (either byte order, micro- or nanosecond).
pub fn frames(path: &Path) -> Result<Vec<Vec<u8>>> {
    Ok(read(path)?
        .1
        .into_iter()
        .map(|r| r.bytes[16..].to_vec())
        .collect())
}

/// The frames of a capture (classic pcap or pcapng; Ethernet, raw IP or Linux cooked,
/// the latter two under a made-up Ethernet header) with their capture time in whole
/// seconds. Packets of other link types are left out.
pub fn frames_with_time(path: &Path) -> Result<Vec<(u64, Vec<u8>)>> {
    let packets = cgnat_testkit::pcap::read_packets(path)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{e:#}")))?;
    Ok(packets
        .into_iter()
        .filter_map(|p| Some((p.ts_nanos / 1_000_000_000, p.to_ethernet()?)))
        .collect())
}

fn read(path: &Path) -> Result<(Vec<u8>, Vec<Record>)> {
    let d = std::fs::read(path)?;
    if d.len() < 24 {
        return Err(bad(path, "not a pcap file (shorter than its header)"));
    }
    let le = match [d[0], d[1], d[2], d[3]] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => {
            return Err(bad(
                path,
                "not a classic pcap file (DPDK's net_pcap does not read pcapng either)",
            ))
        }
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
            return Err(bad(path, &format!("record at byte {at} is truncated")));
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
        std::fs::write(&p, f)?;
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
    std::fs::write(out, bytes)
}
