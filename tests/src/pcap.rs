//! Classic pcap files: the dataplane's reader and writer, with the test kit's errors.

use anyhow::{Context, Result};
use std::path::Path;

/// Writes frames as a classic pcap, one per `interval_us` microseconds from `start_s`.
pub fn write(path: &Path, frames: &[Vec<u8>], start_s: u32, interval_us: u32) -> Result<()> {
    cgnat_dataplane::pcap::write(path, frames, start_s, interval_us)
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads the frames of a classic pcap (either byte order, micro- or nanosecond).
pub fn read(path: &Path) -> Result<Vec<Vec<u8>>> {
    cgnat_dataplane::pcap::frames(path).with_context(|| format!("reading {}", path.display()))
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
