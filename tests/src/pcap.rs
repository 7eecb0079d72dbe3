//! Capture files: classic libpcap (read and write) and pcapng (read).
//!
//! Reading detects the format by its magic number. Classic files may be in either byte
//! order, with microsecond or nanosecond timestamps. Pcapng files may hold several
//! sections of either byte order; Section Header, Interface Description, Enhanced
//! Packet, Simple Packet (and the obsolete Packet) blocks are understood, every other
//! block is skipped. Each packet carries the link type of its interface.
//!
//! Every length read from a file is checked against what is left of the file before it
//! is used, so a truncated or garbage file gives an error, never a panic, and nothing is
//! allocated beyond the size of the file itself.
//!
//! Writing produces a classic little-endian pcap with microsecond timestamps, link type
//! 1 (Ethernet) and a snap length of 65535: what DPDK's net_pcap, tcpdump and Wireshark
//! all read.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Link type of Ethernet (DLT_EN10MB).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The snap length written in the header of the files we write, and the largest frame
/// [`PcapWriter::write`] accepts.
pub const SNAPLEN: u32 = 65535;
/// Largest captured length a record may claim (libpcap's own limit): a larger one is
/// taken as a sign of a corrupt file.
pub const MAX_CAPLEN: usize = 262_144;
/// Timestamp of the first frame [`write_packets`] writes (2023-11-14 22:13:20 UTC).
pub const DEFAULT_START_NANOS: u64 = 1_700_000_000 * NANOS_PER_SEC;
/// Interval between the frames [`write_packets`] writes: 100 microseconds.
pub const DEFAULT_INTERVAL_NANOS: u64 = 100_000;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

/// One packet read from a capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapPacket {
    /// Capture time in nanoseconds since the Unix epoch (0 where the file has none, as
    /// in pcapng Simple Packet blocks).
    pub ts_nanos: u64,
    /// Link type of the packet's interface (1 = Ethernet, 101 = raw IP, 113 = Linux
    /// cooked, ...).
    pub linktype: u32,
    /// The captured bytes (possibly fewer than were on the wire, if the capture had a
    /// snap length).
    pub data: Vec<u8>,
}

/// Link type of raw IP (LINKTYPE_RAW).
pub const LINKTYPE_RAW: u32 = 101;
/// Link type of raw IPv4 (LINKTYPE_IPV4).
pub const LINKTYPE_IPV4: u32 = 228;
/// Link type of Linux "cooked" captures, v1 (LINKTYPE_LINUX_SLL, `tcpdump -i any`).
pub const LINKTYPE_LINUX_SLL: u32 = 113;

impl PcapPacket {
    /// The packet as an Ethernet frame, as net_pcap and [`crate::packet::parse`] want
    /// it: Ethernet frames as they are; raw IP (101, 228) and Linux cooked (113) packets
    /// of IPv4 or IPv6 under a made-up Ethernet header, from the cooked header's
    /// address when it has a 6-byte one (else [`crate::packet::DEFAULT_SRC_MAC`]) to
    /// [`crate::packet::DEFAULT_DST_MAC`]. `None` for other link types.
    pub fn to_ethernet(&self) -> Option<Vec<u8>> {
        let mut src = crate::packet::DEFAULT_SRC_MAC;
        let (ethertype, payload) = match self.linktype {
            LINKTYPE_ETHERNET => return Some(self.data.clone()),
            LINKTYPE_RAW | LINKTYPE_IPV4 => match self.data.first()? >> 4 {
                4 => (0x0800u16, &self.data[..]),
                6 if self.linktype == LINKTYPE_RAW => (0x86dd, &self.data[..]),
                _ => return None,
            },
            LINKTYPE_LINUX_SLL => {
                let d = &self.data;
                if d.len() < 16 {
                    return None;
                }
                if u16::from_be_bytes([d[4], d[5]]) == 6 {
                    src.copy_from_slice(&d[6..12]);
                }
                (u16::from_be_bytes([d[14], d[15]]), &d[16..])
            }
            _ => return None,
        };
        let mut f = Vec::with_capacity(14 + payload.len());
        f.extend_from_slice(&crate::packet::DEFAULT_DST_MAC);
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        Some(f)
    }
}

/// Reads every packet of a classic pcap or pcapng file, whichever its magic says.
pub fn read_packets(path: impl AsRef<Path>) -> Result<Vec<PcapPacket>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_packets(&bytes).with_context(|| format!("reading {}", path.display()))
}

/// Reads only the frames of a capture (see [`read_packets`]), whatever their link type.
pub fn read_frames(path: impl AsRef<Path>) -> Result<Vec<Vec<u8>>> {
    Ok(read_packets(path)?.into_iter().map(|p| p.data).collect())
}

/// Parses a whole capture file held in memory (classic pcap or pcapng).
pub fn parse_packets(bytes: &[u8]) -> Result<Vec<PcapPacket>> {
    if bytes.len() < 4 {
        bail!("{} bytes: too short for a capture file", bytes.len());
    }
    let m = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if u32::from_le_bytes(m) == PCAPNG_SHB {
        parse_pcapng(bytes)
    } else {
        parse_classic(bytes)
    }
}

/// A cursor over a byte slice that reads integers of one byte order and never reads
/// past the end.
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    big: bool,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], big: bool) -> Self {
        Reader { bytes, at: 0, big }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.left() {
            bail!(
                "truncated at byte {}: {} more bytes needed, {} left",
                self.at,
                n,
                self.left()
            );
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        let b = [b[0], b[1]];
        Ok(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// A 64-bit integer in the reader's byte order.
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(if self.big {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        })
    }

    /// A pcapng packet timestamp: the high 32 bits, then the low 32 bits, each in the
    /// reader's byte order.
    fn ts_high_low(&mut self) -> Result<u64> {
        let hi = u64::from(self.u32()?);
        let lo = u64::from(self.u32()?);
        Ok((hi << 32) | lo)
    }
}

fn parse_classic(bytes: &[u8]) -> Result<Vec<PcapPacket>> {
    let le = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let be = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let (big, nanos) = match (le, be) {
        (MAGIC_MICROS, _) => (false, false),
        (MAGIC_NANOS, _) => (false, true),
        (_, MAGIC_MICROS) => (true, false),
        (_, MAGIC_NANOS) => (true, true),
        _ => bail!("not a pcap or pcapng file (magic {be:#010x})"),
    };
    let mut r = Reader::new(bytes, big);
    r.take(4)?;
    let _major = r.u16().context("file header")?;
    let _minor = r.u16().context("file header")?;
    let _thiszone = r.u32().context("file header")?;
    let _sigfigs = r.u32().context("file header")?;
    let _snaplen = r.u32().context("file header")?;
    // The upper bits may carry FCS information; the link type is the low 16 bits.
    let linktype = r.u32().context("file header")? & 0xffff;
    let mut out = Vec::new();
    while r.left() > 0 {
        let n = out.len();
        let sec = u64::from(r.u32().with_context(|| format!("record {n}"))?);
        let frac = u64::from(r.u32().with_context(|| format!("record {n}"))?);
        let caplen = r.u32().with_context(|| format!("record {n}"))? as usize;
        let _origlen = r.u32().with_context(|| format!("record {n}"))?;
        if caplen > MAX_CAPLEN {
            bail!("record {n}: captured length {caplen} is implausible (corrupt file?)");
        }
        let data = r.take(caplen).with_context(|| format!("record {n}"))?;
        let frac_nanos = if nanos { frac } else { frac * 1000 };
        out.push(PcapPacket {
            ts_nanos: sec * NANOS_PER_SEC + frac_nanos,
            linktype,
            data: data.to_vec(),
        });
    }
    Ok(out)
}

/// What a pcapng Interface Description block says about its interface.
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp resolution: units per second is 10^v, or 2^v when `binary`.
    resol: u8,
    binary: bool,
    /// Seconds to add to every timestamp (if_tsoffset).
    offset_secs: i64,
}

impl Interface {
    fn nanos(&self, ts: u64) -> u64 {
        let ts = u128::from(ts);
        let n: u128 = if self.binary {
            let v = u32::from(self.resol);
            if v >= 128 {
                0
            } else {
                (ts * u128::from(NANOS_PER_SEC)) >> v
            }
        } else if self.resol <= 9 {
            ts * 10u128.pow(9 - u32::from(self.resol))
        } else {
            let div = 10u128.checked_pow(u32::from(self.resol) - 9);
            div.map_or(0, |d| ts / d)
        };
        let off = i128::from(self.offset_secs) * i128::from(NANOS_PER_SEC);
        let total = (n as i128).saturating_add(off);
        total.clamp(0, i128::from(u64::MAX)) as u64
    }
}

fn parse_pcapng(bytes: &[u8]) -> Result<Vec<PcapPacket>> {
    let mut out = Vec::new();
    let mut ifaces: Vec<Interface> = Vec::new();
    let mut big = false;
    let mut at = 0usize;
    let mut seen_shb = false;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < 12 {
            bail!("truncated block at byte {at}: {} bytes left", rest.len());
        }
        let raw_type = [rest[0], rest[1], rest[2], rest[3]];
        if u32::from_le_bytes(raw_type) == PCAPNG_SHB {
            // A new section: its byte-order magic says how to read everything in it.
            let bom = [rest[8], rest[9], rest[10], rest[11]];
            big = if u32::from_le_bytes(bom) == PCAPNG_BOM {
                false
            } else if u32::from_be_bytes(bom) == PCAPNG_BOM {
                true
            } else {
                bail!("section header at byte {at}: bad byte-order magic");
            };
            ifaces.clear();
            seen_shb = true;
        } else if !seen_shb {
            bail!("pcapng file does not start with a section header");
        }
        let mut r = Reader::new(rest, big);
        let btype = r.u32()?;
        let len = r.u32()? as usize;
        if len < 12 || len % 4 != 0 || len > rest.len() {
            bail!(
                "block at byte {at}: bad total length {len} ({} bytes left)",
                rest.len()
            );
        }
        let mut tail = Reader::new(&rest[len - 4..len], big);
        if tail.u32()? as usize != len {
            bail!("block at byte {at}: trailing length differs from leading length");
        }
        let body = &rest[8..len - 4];
        let mut b = Reader::new(body, big);
        let ctx = || format!("block type {btype:#x} at byte {at}");
        match btype {
            PCAPNG_SHB => {
                b.take(4).with_context(ctx)?; // byte-order magic
                let major = b.u16().with_context(ctx)?;
                if major != 1 {
                    bail!("section header at byte {at}: pcapng version {major} unsupported");
                }
            }
            PCAPNG_IDB => {
                let linktype = u32::from(b.u16().with_context(ctx)?);
                b.u16().with_context(ctx)?; // reserved
                let snaplen = b.u32().with_context(ctx)?;
                let mut iface = Interface {
                    linktype,
                    snaplen,
                    resol: 6,
                    binary: false,
                    offset_secs: 0,
                };
                for (code, value) in options(b).with_context(ctx)? {
                    match (code, value.len()) {
                        (9, 1) => {
                            iface.binary = value[0] & 0x80 != 0;
                            iface.resol = value[0] & 0x7f;
                        }
                        (14, 8) => {
                            let mut o = Reader::new(value, big);
                            iface.offset_secs = o.u64().with_context(ctx)? as i64;
                        }
                        _ => {}
                    }
                }
                ifaces.push(iface);
            }
            PCAPNG_EPB | PCAPNG_PB => {
                let id = if btype == PCAPNG_EPB {
                    b.u32().with_context(ctx)? as usize
                } else {
                    let id = b.u16().with_context(ctx)? as usize;
                    b.u16().with_context(ctx)?; // drops count
                    id
                };
                let ts = b.ts_high_low().with_context(ctx)?;
                let caplen = b.u32().with_context(ctx)? as usize;
                let _origlen = b.u32().with_context(ctx)?;
                let iface = ifaces
                    .get(id)
                    .ok_or_else(|| anyhow!("{}: unknown interface {id}", ctx()))?;
                if caplen > MAX_CAPLEN {
                    bail!("{}: captured length {caplen} is implausible", ctx());
                }
                let data = b.take(caplen).with_context(ctx)?;
                out.push(PcapPacket {
                    ts_nanos: iface.nanos(ts),
                    linktype: iface.linktype,
                    data: data.to_vec(),
                });
            }
            PCAPNG_SPB => {
                let iface = ifaces
                    .first()
                    .ok_or_else(|| anyhow!("{}: no interface described", ctx()))?;
                let origlen = b.u32().with_context(ctx)? as usize;
                let mut caplen = origlen.min(b.left());
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                let data = b.take(caplen).with_context(ctx)?;
                out.push(PcapPacket {
                    ts_nanos: 0,
                    linktype: iface.linktype,
                    data: data.to_vec(),
                });
            }
            _ => {} // statistics, name resolution, custom, ...: not needed
        }
        at += len;
    }
    if !seen_shb {
        bail!("empty pcapng file");
    }
    Ok(out)
}

/// The options that follow a block's fixed fields: (code, value) until opt_endofopt or
/// the end of the body.
fn options(mut r: Reader<'_>) -> Result<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while r.left() >= 4 {
        let code = r.u16()?;
        let len = r.u16()? as usize;
        if code == 0 {
            break;
        }
        let value = r.take(len)?;
        r.take((4 - len % 4) % 4)?;
        out.push((code, value));
    }
    Ok(out)
}

/// Writes a classic pcap (little-endian, microseconds, Ethernet, snap length 65535),
/// one frame at a time.
pub struct PcapWriter {
    out: BufWriter<File>,
    path: PathBuf,
    count: u64,
}

impl PcapWriter {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = PcapWriter {
            out: BufWriter::new(file),
            path,
            count: 0,
        };
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_MICROS.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.put(&h)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .write_all(b)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Appends one frame captured at `ts_nanos` (nanoseconds since the epoch, stored to
    /// the microsecond). Fails on a frame longer than [`SNAPLEN`] or a time past 2106.
    pub fn write(&mut self, ts_nanos: u64, frame: &[u8]) -> Result<()> {
        if frame.len() > SNAPLEN as usize {
            bail!(
                "frame {} of {} bytes is longer than the snap length {SNAPLEN}",
                self.count,
                frame.len()
            );
        }
        let sec = u32::try_from(ts_nanos / NANOS_PER_SEC)
            .map_err(|_| anyhow!("timestamp {ts_nanos} ns does not fit a pcap record"))?;
        let usec = ((ts_nanos % NANOS_PER_SEC) / 1000) as u32;
        let len = frame.len() as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&usec.to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.put(&h)?;
        self.put(frame)?;
        self.count += 1;
        Ok(())
    }

    /// Number of frames written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Flushes the file and closes it.
    pub fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| anyhow!("writing {}: {}", self.path.display(), e.error()))?;
        file.sync_all().ok();
        Ok(())
    }
}

/// Writes `frames` as a classic pcap, the first at [`DEFAULT_START_NANOS`] and one every
/// [`DEFAULT_INTERVAL_NANOS`] after it.
pub fn write_packets(path: impl AsRef<Path>, frames: &[Vec<u8>]) -> Result<()> {
    let mut w = PcapWriter::create(path)?;
    for (i, f) in frames.iter().enumerate() {
        w.write(DEFAULT_START_NANOS + i as u64 * DEFAULT_INTERVAL_NANOS, f)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary directory, removed when dropped.
    struct Temp(PathBuf);

    impl Temp {
        fn new() -> Self {
            Temp(crate::temp_dir("pcap-test").unwrap())
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A classic pcap header and records built by hand, in either byte order.
    fn classic(big: bool, magic: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut b = Vec::new();
        b.extend_from_slice(&w32(magic));
        b.extend_from_slice(&w16(2));
        b.extend_from_slice(&w16(4));
        b.extend_from_slice(&w32(0));
        b.extend_from_slice(&w32(0));
        b.extend_from_slice(&w32(65535));
        b.extend_from_slice(&w32(1));
        for (s, f, d) in records {
            b.extend_from_slice(&w32(*s));
            b.extend_from_slice(&w32(*f));
            b.extend_from_slice(&w32(d.len() as u32));
            b.extend_from_slice(&w32(d.len() as u32));
            b.extend_from_slice(d);
        }
        b
    }

    #[test]
    fn round_trip() {
        let t = Temp::new();
        let p = t.join("round-trip.pcap");
        let frames = vec![vec![1u8; 60], vec![2u8; 1514], vec![], vec![3u8; 65535]];
        write_packets(&p, &frames).unwrap();
        let back = read_packets(&p).unwrap();
        assert_eq!(back.len(), frames.len());
        for (i, (b, f)) in back.iter().zip(&frames).enumerate() {
            assert_eq!(&b.data, f);
            assert_eq!(b.linktype, LINKTYPE_ETHERNET);
            assert_eq!(
                b.ts_nanos,
                DEFAULT_START_NANOS + i as u64 * DEFAULT_INTERVAL_NANOS
            );
        }
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&bytes[16..20], &65535u32.to_le_bytes());
        assert_eq!(&bytes[20..24], &1u32.to_le_bytes());
        assert_eq!(read_frames(&p).unwrap(), frames);
    }

    #[test]
    fn writer_keeps_microseconds_and_refuses_oversize_frames() {
        let t = Temp::new();
        let p = t.join("writer.pcap");
        let mut w = PcapWriter::create(&p).unwrap();
        w.write(1_234_567_891_999, &[9; 20]).unwrap();
        assert!(w.write(0, &vec![0; 65536]).is_err());
        assert!(w.write(u64::MAX, &[0; 20]).is_err());
        assert_eq!(w.count(), 1);
        w.finish().unwrap();
        let back = read_packets(&p).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].ts_nanos, 1_234_567_891_000);
    }

    #[test]
    fn both_byte_orders_and_nanosecond_magic() {
        for big in [false, true] {
            for (magic, mult) in [(MAGIC_MICROS, 1000u64), (MAGIC_NANOS, 1)] {
                let b = classic(big, magic, &[(5, 7, b"abc"), (6, 0, b"")]);
                let p = parse_packets(&b).unwrap();
                assert_eq!(p.len(), 2, "big={big} magic={magic:#x}");
                assert_eq!(p[0].ts_nanos, 5 * NANOS_PER_SEC + 7 * mult);
                assert_eq!(p[0].data, b"abc");
                assert_eq!(p[0].linktype, 1);
                assert_eq!(p[1].ts_nanos, 6 * NANOS_PER_SEC);
            }
        }
    }

    #[test]
    fn truncated_and_garbage_files_are_errors() {
        let good = classic(false, MAGIC_MICROS, &[(1, 2, &[7; 100]), (3, 4, &[8; 50])]);
        assert_eq!(parse_packets(&good).unwrap().len(), 2);
        // Every strict prefix that is not on a record boundary is an error.
        let boundaries = [24, 24 + 16 + 100, good.len()];
        for n in 0..good.len() {
            let r = parse_packets(&good[..n]);
            if boundaries.contains(&n) {
                assert!(r.is_ok(), "prefix {n}");
            } else {
                assert!(r.is_err(), "prefix {n}");
            }
        }
        assert!(parse_packets(b"garbage garbage garbage garbage").is_err());
        assert!(parse_packets(&[]).is_err());
        // A huge claimed length is refused without allocating it.
        let mut huge = classic(false, MAGIC_MICROS, &[(1, 2, &[7; 4])]);
        huge[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_packets(&huge).is_err());
        let t = Temp::new();
        let p = t.join("garbage.pcap");
        std::fs::write(&p, b"garbage").unwrap();
        assert!(read_packets(&p).is_err());
        assert!(read_packets(t.join("missing.pcap")).is_err());
    }

    /// A pcapng block: type, body, lengths, in the given byte order.
    fn block(big: bool, btype: u32, body: &[u8]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = body.len() as u32 + 12;
        let mut b = Vec::new();
        b.extend_from_slice(&w32(btype));
        b.extend_from_slice(&w32(len));
        b.extend_from_slice(&body);
        b.extend_from_slice(&w32(len));
        b
    }

    fn pcapng(big: bool, tsresol: Option<u8>) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut shb = Vec::new();
        shb.extend_from_slice(&w32(PCAPNG_BOM));
        shb.extend_from_slice(&w16(1));
        shb.extend_from_slice(&w16(0));
        shb.extend_from_slice(&[0xff; 8]);
        let mut idb = Vec::new();
        idb.extend_from_slice(&w16(1));
        idb.extend_from_slice(&w16(0));
        idb.extend_from_slice(&w32(0));
        if let Some(r) = tsresol {
            idb.extend_from_slice(&w16(9));
            idb.extend_from_slice(&w16(1));
            idb.extend_from_slice(&[r, 0, 0, 0]);
            idb.extend_from_slice(&w32(0));
        }
        let mut idb2 = Vec::new();
        idb2.extend_from_slice(&w16(101));
        idb2.extend_from_slice(&w16(0));
        idb2.extend_from_slice(&w32(3));
        let ts: u64 = 1_500_000_000_123_456;
        let mut epb = Vec::new();
        epb.extend_from_slice(&w32(1));
        epb.extend_from_slice(&w32((ts >> 32) as u32));
        epb.extend_from_slice(&w32(ts as u32));
        epb.extend_from_slice(&w32(5));
        epb.extend_from_slice(&w32(5));
        epb.extend_from_slice(b"hello");
        let mut spb = Vec::new();
        spb.extend_from_slice(&w32(6));
        spb.extend_from_slice(b"simple");
        let mut out = block(big, PCAPNG_SHB, &shb);
        out.extend(block(big, PCAPNG_IDB, &idb));
        out.extend(block(big, PCAPNG_IDB, &idb2));
        out.extend(block(big, 5, &[0; 8])); // statistics: skipped
        out.extend(block(big, PCAPNG_EPB, &epb));
        out.extend(block(big, PCAPNG_SPB, &spb));
        out
    }

    #[test]
    fn pcapng_both_byte_orders() {
        for big in [false, true] {
            let b = pcapng(big, None);
            let p = parse_packets(&b).unwrap();
            assert_eq!(p.len(), 2, "big={big}");
            assert_eq!(p[0].data, b"hello");
            assert_eq!(p[0].linktype, 101, "from the second interface");
            assert_eq!(p[0].ts_nanos, 1_500_000_000_123_456_000);
            assert_eq!(p[1].data, b"simple");
            assert_eq!(p[1].linktype, 1);
            // Nanosecond resolution on interface 0 does not change interface 1.
            let p = parse_packets(&pcapng(big, Some(9))).unwrap();
            assert_eq!(p[0].ts_nanos, 1_500_000_000_123_456_000);
        }
    }

    #[test]
    fn pcapng_timestamp_resolutions() {
        let iface = |resol, binary| Interface {
            linktype: 1,
            snaplen: 0,
            resol,
            binary,
            offset_secs: 0,
        };
        assert_eq!(iface(6, false).nanos(1_000_001), 1_000_001_000);
        assert_eq!(iface(9, false).nanos(1_000_001), 1_000_001);
        assert_eq!(iface(12, false).nanos(1_000_001_000), 1_000_001);
        assert_eq!(iface(10, true).nanos(1024), NANOS_PER_SEC);
        assert_eq!(iface(127, false).nanos(u64::MAX), 0);
        assert_eq!(iface(0, false).nanos(u64::MAX), u64::MAX);
        let mut i = iface(6, false);
        i.offset_secs = 10;
        assert_eq!(i.nanos(1), 10 * NANOS_PER_SEC + 1000);
    }

    #[test]
    fn pcapng_truncated_and_garbage_are_errors() {
        let good = pcapng(false, Some(6));
        assert!(parse_packets(&good).is_ok());
        // Block boundaries: a cut there is a shorter file, a cut anywhere else an error.
        let mut boundaries = vec![];
        let mut at = 0;
        while at < good.len() {
            at += u32::from_le_bytes(good[at + 4..at + 8].try_into().unwrap()) as usize;
            boundaries.push(at);
        }
        for n in 1..good.len() {
            let r = parse_packets(&good[..n]);
            assert_eq!(r.is_ok(), boundaries.contains(&n), "prefix {n}");
        }
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff; // trailing length of the last block
        assert!(parse_packets(&bad).is_err());
        let mut bad = good.clone();
        bad[8] = 0; // byte-order magic
        assert!(parse_packets(&bad).is_err());
        // A packet block before any interface is described.
        let mut b = block(false, PCAPNG_SHB, &{
            let mut s = PCAPNG_BOM.to_le_bytes().to_vec();
            s.extend_from_slice(&[1, 0, 0, 0]);
            s.extend_from_slice(&[0xff; 8]);
            s
        });
        b.extend(block(false, PCAPNG_EPB, &[0; 20]));
        assert!(parse_packets(&b).is_err());
        // Random bytes after a valid magic never panic.
        let mut x: u64 = 0x1234_5678;
        for _ in 0..2000 {
            let mut g = good.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x % g.len() as u64) as usize;
                g[i] = (x >> 32) as u8;
            }
            let _ = parse_packets(&g);
        }
    }

    #[test]
    fn other_link_types_become_ethernet() {
        let ip = crate::packet::ip_packet(&crate::packet::udp(
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:2".parse().unwrap(),
            b"x",
        ))
        .unwrap()
        .to_vec();
        let eth = |linktype, data: Vec<u8>| {
            PcapPacket {
                ts_nanos: 0,
                linktype,
                data,
            }
            .to_ethernet()
        };
        let raw = eth(LINKTYPE_RAW, ip.clone()).unwrap();
        assert_eq!(&raw[12..14], &[0x08, 0x00]);
        assert_eq!(&raw[14..], &ip[..]);
        assert!(crate::packet::checksums_ok(&raw));
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 3, 4, 5, 6, 7, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        let f = eth(LINKTYPE_LINUX_SLL, sll).unwrap();
        assert_eq!(&f[6..12], &[2, 3, 4, 5, 6, 7]);
        assert_eq!(&f[14..], &ip[..]);
        assert_eq!(eth(LINKTYPE_LINUX_SLL, vec![0; 15]), None);
        assert_eq!(eth(LINKTYPE_IPV4, vec![0x60; 40]), None);
        assert_eq!(eth(LINKTYPE_RAW, vec![]), None);
        assert_eq!(eth(147, ip.clone()), None);
        assert_eq!(eth(LINKTYPE_ETHERNET, ip.clone()), Some(ip));
    }

    #[test]
    fn every_real_capture_reads() {
        let mut files = 0;
        for path in crate::listed_captures() {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let packets = read_packets(&path).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!packets.is_empty(), "{name}: no packets");
            for p in &packets {
                assert!(!p.data.is_empty(), "{name}: an empty packet");
            }
            println!(
                "{name}: {} packets, link type {}",
                packets.len(),
                packets[0].linktype
            );
            files += 1;
        }
        assert_eq!(files, 17, "captures read");
    }
}
