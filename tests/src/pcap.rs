//! Classic libpcap files (microsecond, Ethernet), read and written.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

/// Writes frames as a classic pcap, one per `interval_us` microseconds from `start_s`.
pub fn write(path: &Path, frames: &[Vec<u8>], start_s: u32, interval_us: u32) -> Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    f.write_all(&h)?;
    for (i, fr) in frames.iter().enumerate() {
        let t = u64::from(interval_us) * i as u64;
        let sec = start_s + (t / 1_000_000) as u32;
        let usec = (t % 1_000_000) as u32;
        f.write_all(&sec.to_le_bytes())?;
        f.write_all(&usec.to_le_bytes())?;
        f.write_all(&(fr.len() as u32).to_le_bytes())?;
        f.write_all(&(fr.len() as u32).to_le_bytes())?;
        f.write_all(fr)?;
    }
    f.flush()?;
    Ok(())
}

/// Reads the frames of a classic pcap (either byte order, micro- or nanosecond).
pub fn read(path: &Path) -> Result<Vec<Vec<u8>>> {
    let d = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if d.len() < 24 {
        bail!("{}: shorter than a pcap header", path.display());
    }
    let le = match [d[0], d[1], d[2], d[3]] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => bail!("{}: not a classic pcap file", path.display()),
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
        at += 16;
        if caplen > d.len() - at {
            bail!("{}: record truncated at byte {at}", path.display());
        }
        out.push(d[at..at + caplen].to_vec());
        at += caplen;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_truncation() {
        let dir = std::env::temp_dir().join(format!("cgnat-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.pcap");
        let frames = vec![vec![1u8; 60], vec![2u8; 1514]];
        super::write(&p, &frames, 1, 10).unwrap();
        assert_eq!(super::read(&p).unwrap(), frames);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 1);
        std::fs::write(&p, bytes).unwrap();
        assert!(super::read(&p).is_err());
        std::fs::write(&p, b"garbage").unwrap();
        assert!(super::read(&p).is_err());
    }
}
