//! IPv4 fragments through the NAT (RFC 4787 REQ-14, RFC 6864): the first fragment is
//! translated like any packet and leaves a record of its datagram's translation;
//! later fragments (no L4 header) follow that record. Fragments that arrive before
//! the first are held, bounded in number and time, and released when it comes.
//!
//! A datagram of an ALG session (SIP or TFTP over UDP, FTP in a fragmented TCP
//! segment) is reassembled instead: the ALG reads whole messages. Its fragments are
//! held, bounded in bytes too (per datagram, per source, per worker), until all have
//! come; the worker then translates the whole and the ALG reads it (see
//! `pipeline`), and it leaves as one packet or fragmented again.
//!
//! Datagrams that are fragmented get a new IP identifier, the same for all their
//! fragments: after translation many subscribers share one source address, and their
//! own identifiers could collide at the receiver's reassembly (RFC 6864 section 4).

use crate::buf::PacketBuf;
use hashbrown::HashMap;

/// Datagrams whose translation is remembered at once, per worker.
pub const MAX_DATAGRAMS: usize = 4096;
/// Fragments held at once, per worker.
pub const MAX_HELD: usize = 256;
/// Datagrams one source (a subscriber inside, a remote host outside) may have recorded
/// at once: a sixteenth of the table.
pub const MAX_DATAGRAMS_PER_SOURCE: usize = MAX_DATAGRAMS / 16;
/// Fragments one source may have held at once: a sixteenth of them.
pub const MAX_HELD_PER_SOURCE: usize = MAX_HELD / 16;
/// [`Translation::out`] of a datagram whose fragments are all dropped (an ALG's
/// datagram, which cannot be read whole).
pub const DROPPED: u8 = 2;
/// [`Translation::out`] of an outside datagram that another worker owns (with several
/// workers): its fragments are handed to worker [`Translation::id`].
pub const HANDED: u8 = 3;
/// [`Translation::out`] of an ALG session's datagram being reassembled: its fragments
/// are held until all have come.
pub const REASSEMBLE: u8 = 4;
/// [`Translation::out`] of an outside datagram to a NAT64 session's host
/// ([`Translation::dst`], its handle): each fragment leaves translated to IPv6 (RFC
/// 7915 4.1), its identification zero-extended.
pub const NAT64: u8 = 5;
/// Largest datagram reassembled for an ALG (IP payload bytes): a SIP message over UDP
/// with a large SDP body is a few kilobytes.
pub const MAX_REASSEMBLED: usize = 16 * 1024;
/// Frame bytes one source may have held for reassembly at once: the largest datagram
/// with its fragments' headers.
pub const REASSEMBLY_BYTES_PER_SOURCE: usize = MAX_REASSEMBLED + MAX_REASSEMBLED / 4;
/// Frame bytes held for reassembly at once, per worker: eight of the largest.
pub const REASSEMBLY_BYTES: usize = 8 * MAX_REASSEMBLED;
/// Seconds a record or a held fragment lives (RFC 791 suggests 15 s for reassembly).
pub const TIMEOUT: u32 = 15;

/// A datagram, as its fragments identify it before translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// IP identification.
    pub id: u16,
    /// Protocol.
    pub proto: u8,
}

impl Key {
    /// The worker (of `workers`) that all fragments of an outside datagram reach
    /// first: a device spreads fragments on their addresses alone (no ports in
    /// later fragments), so they land anywhere; this one learns the owner from the
    /// first fragment and hands the datagram's fragments to it.
    pub fn director(&self, workers: u16) -> u16 {
        let mix = self.src
            ^ self.dst.rotate_left(11)
            ^ (u32::from(self.id) << 8 | u32::from(self.proto)).rotate_left(21);
        (crate::nat::hash32(mix) % u32::from(workers.max(1))) as u16
    }
}

/// What identifies a datagram among its fragments, and the source whose share of the
/// tables it takes ([`MAX_DATAGRAMS_PER_SOURCE`], [`MAX_HELD_PER_SOURCE`]).
pub trait DatagramKey: Copy + Eq + std::hash::Hash {
    /// The source a datagram counts against.
    type Source: Copy + Eq + std::hash::Hash;
    /// This datagram's source.
    fn source(&self) -> Self::Source;
}

impl DatagramKey for Key {
    type Source = u32;
    fn source(&self) -> u32 {
        self.src
    }
}

/// An IPv6 datagram from an inside host to NAT64, as its fragments identify it (RFC
/// 8200 4.5: source, destination, identification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key6 {
    /// Source address.
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// Fragment header identification.
    pub id: u32,
    /// The source's subscriber prefix (`src` masked to `[nat64]
    /// subscriber_prefix_len`): the source a subscriber's hosts share.
    pub subscriber: u128,
}

impl DatagramKey for Key6 {
    type Source = u128;
    fn source(&self) -> u128 {
        self.subscriber
    }
}

/// How every fragment of a datagram is translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// New source address.
    pub src: u32,
    /// New destination address.
    pub dst: u32,
    /// New identification.
    pub id: u16,
    /// Port side it leaves on (0 inside, 1 outside; [`DROPPED`]: none; [`HANDED`]:
    /// another worker's).
    pub out: u8,
    /// Dies at this second.
    pub until: u32,
    /// NAT64: where the first fragment's payload ends in the datagram (it carries the
    /// translated transport header); a later fragment starting before it overlaps it
    /// and is refused. 0: not checked (NAT44). [`HANDED`]: the side the datagram came
    /// in on (0 inside, 1 outside), which the worker it is handed to processes it as.
    pub first_end: u16,
}

impl Translation {
    /// A record that translates nothing: `out` is [`DROPPED`], [`REASSEMBLE`] or
    /// [`HANDED`] (to worker `worker`), until `now` + [`TIMEOUT`].
    pub fn mark(out: u8, worker: u16, now: u32) -> Translation {
        Translation {
            src: 0,
            dst: 0,
            id: worker,
            out,
            until: now + TIMEOUT,
            first_end: 0,
        }
    }

    /// The record of a datagram whose fragments worker `worker` translates, having come
    /// in on side `from` (0 inside, 1 outside), until `now` + [`TIMEOUT`].
    pub fn handed(worker: u16, from: u8, now: u32) -> Translation {
        Translation {
            first_end: u16::from(from),
            ..Translation::mark(HANDED, worker, now)
        }
    }
}

/// Why a fragment or a datagram's record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The worker's table is full.
    Full,
    /// Its source holds its share already.
    Source,
    /// The bytes held for reassembly, its source's or the worker's, are at their bound.
    Bytes,
}

/// A held fragment.
struct Held<B, K> {
    key: K,
    buf: B,
    from: u8,
    until: u32,
    /// Frame bytes.
    bytes: u32,
    /// Held for reassembly (an ALG's datagram), not only until its first fragment.
    reasm: bool,
}

/// Fragment state of one worker; `B` is the packet buffer type it holds.
pub struct Fragments<B, K: DatagramKey = Key> {
    records: HashMap<K, Translation>,
    /// Records per source (sources with none are absent).
    per_source: HashMap<K::Source, u16>,
    held: Vec<Held<B, K>>,
    next_id: u16,
}

impl<B, K: DatagramKey> Fragments<B, K> {
    /// Empty, sized for [`MAX_DATAGRAMS`] and [`MAX_HELD`].
    pub fn new(seed: u16) -> Fragments<B, K> {
        Fragments {
            records: HashMap::with_capacity(2 * MAX_DATAGRAMS),
            per_source: HashMap::with_capacity(2 * MAX_DATAGRAMS),
            held: Vec::with_capacity(MAX_HELD),
            next_id: seed,
        }
    }

    /// The translation of a datagram's later fragments, if its first one passed.
    pub fn lookup(&self, k: &K, now: u32) -> Option<Translation> {
        self.records.get(k).filter(|t| t.until >= now).copied()
    }

    /// A fresh identifier for a fragmented datagram.
    pub fn new_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// Records a datagram's translation, unless the table is full or its source
    /// holds [`MAX_DATAGRAMS_PER_SOURCE`] records already.
    pub fn record(&mut self, k: K, t: Translation) -> Result<(), Refused> {
        if let Some(r) = self.records.get_mut(&k) {
            *r = t;
            return Ok(());
        }
        if self.records.len() >= MAX_DATAGRAMS {
            return Err(Refused::Full);
        }
        let n = self.per_source.entry(k.source()).or_insert(0);
        if usize::from(*n) >= MAX_DATAGRAMS_PER_SOURCE {
            return Err(Refused::Source);
        }
        *n += 1;
        self.records.insert(k, t);
        Ok(())
    }

    /// Whether a fragment of `k` can be held: the table has room and its source holds
    /// fewer than [`MAX_HELD_PER_SOURCE`] (a scan of at most [`MAX_HELD`] keys).
    pub fn can_hold(&self, k: &K) -> Result<(), Refused> {
        if self.held.len() >= MAX_HELD {
            return Err(Refused::Full);
        }
        if self
            .held
            .iter()
            .filter(|h| h.key.source() == k.source())
            .count()
            >= MAX_HELD_PER_SOURCE
        {
            return Err(Refused::Source);
        }
        Ok(())
    }

    /// Whether `bytes` more can be held for reassembly for `k`'s source: within
    /// [`REASSEMBLY_BYTES_PER_SOURCE`] and [`REASSEMBLY_BYTES`].
    pub fn reasm_room(&self, k: &K, bytes: usize) -> Result<(), Refused> {
        let (mut all, mut source) = (bytes, bytes);
        for h in self.held.iter().filter(|h| h.reasm) {
            all += h.bytes as usize;
            if h.key.source() == k.source() {
                source += h.bytes as usize;
            }
        }
        if all > REASSEMBLY_BYTES || source > REASSEMBLY_BYTES_PER_SOURCE {
            return Err(Refused::Bytes);
        }
        Ok(())
    }

    /// Holds a fragment (of `bytes` frame bytes) received on side `from`, until its
    /// first fragment comes or, `reasm`, until its datagram is whole.
    pub fn hold(
        &mut self,
        k: K,
        buf: B,
        from: u8,
        now: u32,
        bytes: usize,
        reasm: bool,
    ) -> Result<(), (B, Refused)> {
        if let Err(r) = self.can_hold(&k) {
            return Err((buf, r));
        }
        self.held.push(Held {
            key: k,
            buf,
            from,
            until: now + TIMEOUT,
            bytes: bytes as u32,
            reasm,
        });
        Ok(())
    }

    /// Marks the fragments held for `k` as held for reassembly; returns their bytes.
    pub fn mark_reasm(&mut self, k: &K) -> usize {
        let mut n = 0;
        for h in self.held.iter_mut().filter(|h| h.key == *k) {
            h.reasm = true;
            n += h.bytes as usize;
        }
        n
    }

    /// The fragments held for `k`, with the side each came from.
    pub fn held_of<'a>(&'a self, k: &'a K) -> impl Iterator<Item = (&'a B, u8)> + 'a {
        self.held
            .iter()
            .filter(move |h| h.key == *k)
            .map(|h| (&h.buf, h.from))
    }

    /// Takes the held fragments of datagram `k`.
    pub fn take_held(&mut self, k: &K, mut f: impl FnMut(B)) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].key == *k {
                f(self.held.swap_remove(i).buf);
            } else {
                i += 1;
            }
        }
    }

    /// Forgets expired records and drops expired held fragments; returns how many
    /// fragments were dropped: held for their first fragment, held for reassembly.
    pub fn expire(&mut self, now: u32) -> (usize, usize) {
        let per_source = &mut self.per_source;
        self.records.retain(|k, t| {
            if t.until >= now {
                return true;
            }
            if let Some(n) = per_source.get_mut(&k.source()) {
                *n -= 1;
                if *n == 0 {
                    per_source.remove(&k.source());
                }
            }
            false
        });
        let (mut first, mut reasm) = (0, 0);
        self.held.retain(|h| {
            if h.until >= now {
                return true;
            }
            if h.reasm {
                reasm += 1;
            } else {
                first += 1;
            }
            false
        });
        (first, reasm)
    }

    /// Fragments held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

/// Ethernet header length before every datagram here.
const ETH: usize = 14;
/// Fragments one datagram may have when put together.
pub const MAX_PARTS: usize = 64;

/// What putting a datagram's fragments together gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assembly {
    /// Some fragment is missing yet.
    Incomplete,
    /// The datagram is whole; the frame's length.
    Whole(usize),
    /// Fragments overlap with other bytes, a fragment lies past the last, or one is
    /// malformed: the datagram cannot be trusted.
    Bad,
    /// Larger than allowed, or than the buffer.
    TooBig,
}

/// Offset, payload length, more-fragments flag and header end of a fragment's frame.
fn part(d: &[u8]) -> Option<(usize, usize, bool, usize)> {
    let ip = crate::wire::ipv4::Packet::new_checked(d.get(ETH..)?).ok()?;
    let (ihl, total) = (ip.header_len(), ip.total_len());
    let ff = ip.flags_frag();
    Some((
        usize::from(ff & 0x1fff) * 8,
        total - ihl,
        ff & crate::wire::ipv4::FLAG_MF != 0,
        ETH + ihl,
    ))
}

/// Puts the fragments of one datagram (Ethernet frames, in any order) together into
/// `out`: the first fragment's Ethernet and IPv4 header, then the payload of all;
/// the header says the whole (length, no fragment offset or MF, checksum).
/// Duplicates are ignored; fragments that overlap with other bytes make the datagram
/// [`Assembly::Bad`] (RFC 5722's rule, for IPv4 too). At most `max` payload bytes.
pub fn assemble<B: PacketBuf>(frames: &[&[u8]], out: &mut B, max: usize) -> Assembly {
    if frames.len() > MAX_PARTS {
        return Assembly::Bad;
    }
    let mut parts = [(0usize, 0usize, false, 0usize, 0usize); MAX_PARTS];
    for (k, f) in frames.iter().enumerate() {
        let Some((off, len, mf, hdr)) = part(f) else {
            return Assembly::Bad;
        };
        if off + len > max {
            return Assembly::TooBig;
        }
        parts[k] = (off, len, mf, hdr, k);
    }
    let parts = &mut parts[..frames.len()];
    parts.sort_unstable_by_key(|p| (p.0, p.1));
    let (mut expect, mut total) = (0, None);
    for &(off, len, mf, hdr, k) in parts.iter() {
        if off > expect {
            return Assembly::Incomplete;
        }
        if off < expect {
            // Only an exact copy of bytes already there is harmless.
            let prev = parts
                .iter()
                .find(|p| p.0 <= off && p.0 + p.1 >= off + len && p.4 != k);
            let same = prev.is_some_and(|p| {
                let a = &frames[p.4][p.3 + (off - p.0)..p.3 + (off - p.0) + len];
                a == &frames[k][hdr..hdr + len]
            });
            if !same || off + len > expect {
                return Assembly::Bad;
            }
            continue;
        }
        if total.is_some() {
            return Assembly::Bad;
        }
        expect = off + len;
        if !mf {
            total = Some(expect);
        }
    }
    let Some(total) = total else {
        return Assembly::Incomplete;
    };
    let (_, _, _, hdr0, k0) = parts[0];
    let first = frames[k0];
    if !out.set_len(hdr0 + total) {
        return Assembly::TooBig;
    }
    let d = out.data_mut();
    d[..hdr0].copy_from_slice(&first[..hdr0]);
    let mut at = 0;
    for &(off, len, _, hdr, k) in parts.iter() {
        if off == at {
            d[hdr0 + off..hdr0 + off + len].copy_from_slice(&frames[k][hdr..hdr + len]);
            at = off + len;
        }
    }
    let ff = crate::wire::be16(d, ETH + 6) & crate::wire::ipv4::FLAG_DF;
    crate::wire::put16(d, ETH + 6, ff);
    crate::wire::put16(d, ETH + 2, (hdr0 - ETH + total) as u16);
    crate::wire::ipv4::Packet::new_unchecked(&mut d[ETH..]).fill_checksum();
    Assembly::Whole(hdr0 + total)
}

/// Writes the IPv4 datagram of `frame` (an Ethernet frame holding it whole) into
/// `bufs`: as one packet when it fits `mtu` and the first buffer, else as fragments of
/// at most `mtu` bytes (DF clear, offsets in 8-byte units, each with the datagram's
/// header, identifier `id`). Returns how many buffers it used, or, Err, how many it
/// would need (`usize::MAX`: an MTU too small for any).
pub fn refragment<B: PacketBuf>(
    frame: &[u8],
    bufs: &mut [B],
    mtu: usize,
    id: u16,
) -> Result<usize, usize> {
    let ihl = usize::from(frame[ETH] & 0x0f) * 4;
    let hdr = ETH + ihl;
    let payload = &frame[hdr..];
    let set = |d: &mut [u8], len: usize, ff: u16| {
        crate::wire::put16(d, ETH + 2, len as u16);
        crate::wire::put16(d, ETH + 4, id);
        crate::wire::put16(d, ETH + 6, ff);
        crate::wire::ipv4::Packet::new_unchecked(&mut d[ETH..]).fill_checksum();
    };
    if frame.len() - ETH <= mtu {
        if let Some(b) = bufs.first_mut() {
            if b.set_len(frame.len()) {
                let d = b.data_mut();
                d.copy_from_slice(frame);
                let df = crate::wire::be16(d, ETH + 6) & crate::wire::ipv4::FLAG_DF;
                set(d, frame.len() - ETH, df);
                return Ok(1);
            }
        }
    }
    let per = mtu.saturating_sub(ihl) & !7;
    if per == 0 {
        return Err(usize::MAX);
    }
    let n = payload.len().div_ceil(per);
    if n > bufs.len() {
        return Err(n);
    }
    for (i, b) in bufs[..n].iter_mut().enumerate() {
        let off = i * per;
        let chunk = &payload[off..(off + per).min(payload.len())];
        if !b.set_len(hdr + chunk.len()) {
            return Err(n);
        }
        let d = b.data_mut();
        d[..hdr].copy_from_slice(&frame[..hdr]);
        d[hdr..].copy_from_slice(chunk);
        let more = if off + chunk.len() < payload.len() {
            crate::wire::ipv4::FLAG_MF
        } else {
            0
        };
        set(d, ihl + chunk.len(), more | (off / 8) as u16);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;

    /// A frame with a 20-byte IPv4 header (UDP), `payload`, DF set.
    fn datagram(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; ETH + 20];
        f[12] = 8;
        f[ETH] = 0x45;
        f[ETH + 6] = 0x40;
        f[ETH + 8] = 64;
        f[ETH + 9] = 17;
        f.extend_from_slice(payload);
        crate::wire::put16(&mut f, ETH + 2, (20 + payload.len()) as u16);
        crate::wire::ipv4::Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
        f
    }

    #[test]
    fn refragmented_pieces_assemble_to_the_same_datagram() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let whole = datagram(&payload);
        let mut bufs = vec![VecBuf::new(&[]), VecBuf::new(&[])];
        assert_eq!(refragment(&whole, &mut bufs, 1500, 9), Err(3));
        bufs.push(VecBuf::new(&[]));
        assert_eq!(refragment(&whole, &mut bufs, 1500, 9), Ok(3));
        for b in &bufs {
            let ip = crate::wire::ipv4::Packet::new_checked(&b.data()[ETH..]).unwrap();
            assert!(ip.total_len() <= 1500 && ip.checksum_ok() && ip.ident() == 9);
            assert_eq!(ip.flags_frag() & crate::wire::ipv4::FLAG_DF, 0);
        }
        // Any order, a duplicate among them.
        let frames: Vec<&[u8]> = [2, 0, 1, 2].iter().map(|&i| bufs[i].data()).collect();
        let mut out = VecBuf::with_room(&[], 4000);
        assert_eq!(
            assemble(&frames, &mut out, 4000),
            Assembly::Whole(whole.len())
        );
        assert_eq!(&out.data()[ETH + 20..], &payload[..]);
        assert!(crate::wire::ipv4::Packet::new_checked(&out.data()[ETH..])
            .unwrap()
            .checksum_ok());
        assert_eq!(assemble(&frames[..2], &mut out, 4000), Assembly::Incomplete);
        assert_eq!(assemble(&frames, &mut out, 2000), Assembly::TooBig);
        // One fitting the MTU goes whole, DF kept.
        let small = datagram(&payload[..1000]);
        assert_eq!(refragment(&small, &mut bufs, 1500, 9), Ok(1));
        assert_eq!(bufs[0].data()[ETH + 6], 0x40);
    }

    #[test]
    fn overlapping_fragments_with_other_bytes_refuse_the_datagram() {
        let payload = [7u8; 2000];
        let mut bufs: Vec<VecBuf> = (0..2).map(|_| VecBuf::new(&[])).collect();
        assert_eq!(refragment(&datagram(&payload), &mut bufs, 1500, 1), Ok(2));
        // The second fragment again, moved 8 bytes earlier with other bytes.
        let mut forged = bufs[1].data().to_vec();
        let off = crate::wire::be16(&forged, ETH + 6) & 0x1fff;
        crate::wire::put16(&mut forged, ETH + 6, off - 1);
        forged[ETH + 20] = 0xee;
        let frames = [bufs[0].data(), bufs[1].data(), &forged[..]];
        let mut out = VecBuf::with_room(&[], 4000);
        assert_eq!(assemble(&frames, &mut out, 4000), Assembly::Bad);
    }
}
