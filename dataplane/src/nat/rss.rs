//! Receive-side scaling in software: the Toeplitz hash NICs use to pick an RX queue,
//! and the steering of one port (its key and redirection table) that tells which
//! worker a frame reaches, so that ownership can follow the device instead of being
//! handed off.
//!
//! The hash is the one of Microsoft's RSS specification (and DPDK's `rte_softrss`):
//! every set bit `i` of the input (most significant bit of the first byte first)
//! XORs the 32 key bits starting at bit `i` into the result. The queue of a frame is
//! `reta[hash & (reta_size - 1)]`.
//!
//! What the device hashes (see `docs/scaling.md`):
//! - outside port: destination address then destination port (`L3_DST_ONLY |
//!   L4_DST_ONLY` on TCP and UDP), so the queue of a reply depends only on the
//!   mapping's outside address and port, whatever the remote: compatible with
//!   endpoint-independent mapping. The pool hands a worker only ports whose replies
//!   reach its own queue.
//! - inside port: the source address only (`L3_SRC_ONLY` on IPv4), so all of a
//!   subscriber's packets reach one queue, whose worker owns the subscriber.
//!
//! [`STEERING_KEY`] repeats one 16-bit word. Toeplitz is linear, and with such a key a
//! field contributes the same bits wherever it sits in the input as long as it moves
//! by a multiple of 16 bits: the hash is the same whether a device drops the fields it
//! does not select (destination address at byte 0, port at byte 4) or zeroes them in
//! the full 12-byte tuple (address at byte 4, port at byte 10).

/// The key cgnat sets on ports it steers (repeated to the device's key length).
pub const STEERING_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// The Toeplitz hash of `input` (network byte order) under `key`, bit by bit, as the
/// specification states it. `key` must be at least 4 bytes longer than `input`.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    assert!(
        key.len() >= input.len() + 4,
        "a {}-byte key cannot hash {} bytes",
        key.len(),
        input.len()
    );
    let mut h = 0u32;
    for (n, &byte) in input.iter().enumerate() {
        // The 40 key bits from byte n hold the windows of all 8 bits of this byte.
        let w = u64::from_be_bytes([
            key[n],
            key[n + 1],
            key[n + 2],
            key[n + 3],
            key.get(n + 4).copied().unwrap_or(0),
            0,
            0,
            0,
        ]);
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                h ^= ((w << b) >> 32) as u32;
            }
        }
    }
    h
}

/// The Toeplitz hash of `words` taken as host-order 32-bit values, as DPDK's
/// `rte_softrss` takes its input tuple (e.g. `[src, dst, sport << 16 | dport]`).
pub fn toeplitz_words(key: &[u8], words: &[u32]) -> u32 {
    let mut bytes = [0u8; 64];
    let n = words.len().min(16);
    for (i, w) in words[..n].iter().enumerate() {
        bytes[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
    }
    toeplitz(key, &bytes[..4 * n])
}

/// Why a port is not steered by RSS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoSteering(pub String);

/// The steering of one port: its key and redirection table, with the key's
/// contributions precomputed per input byte so that a frame's queue costs six
/// lookups (the hot path calls it for every frame when there are several workers).
#[derive(Clone)]
pub struct Steering {
    key: Vec<u8>,
    reta: Vec<u16>,
    mask: u32,
    /// `table[i][v]`: the hash of a 6-byte input that is zero but for byte `i` = `v`.
    table: Box<[[u32; 256]; 6]>,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("key_len", &self.key.len())
            .field("reta_size", &self.reta.len())
            .finish_non_exhaustive()
    }
}

impl Steering {
    /// The steering of a device whose hash key is `key` and whose redirection table
    /// sends entry `i` to queue `reta[i]` (as read back from the device). The table's
    /// size must be a power of two (the device indexes it with the hash's low bits).
    pub fn new(key: &[u8], reta: &[u16]) -> Result<Steering, NoSteering> {
        if key.len() < 10 {
            return Err(NoSteering(format!(
                "a {}-byte RSS key cannot hash an address and a port (10 bytes at least)",
                key.len()
            )));
        }
        if reta.is_empty() || !reta.len().is_power_of_two() {
            return Err(NoSteering(format!(
                "the redirection table has {} entries, not a power of two",
                reta.len()
            )));
        }
        let mut table = Box::new([[0u32; 256]; 6]);
        for (i, t) in table.iter_mut().enumerate() {
            for (v, slot) in t.iter_mut().enumerate() {
                let mut input = [0u8; 6];
                input[i] = v as u8;
                *slot = toeplitz(key, &input);
            }
        }
        Ok(Steering {
            key: key.to_vec(),
            reta: reta.to_vec(),
            mask: reta.len() as u32 - 1,
            table,
        })
    }

    /// A redirection table of `size` entries spreading them over `queues` queues
    /// (entry `i` to queue `i % queues`), as cgnat programs it.
    pub fn spread(queues: u16, size: u16) -> Vec<u16> {
        (0..size).map(|i| i % queues.max(1)).collect()
    }

    /// A redirection table of `size` entries (a power of two) over `queues` queues for
    /// a port hashing an address and a port under `key`, such that an even port and
    /// the next odd one reach the same queue whatever the address: the two entries
    /// they hash to differ by the key's contribution of the port's lowest bit, and
    /// each such pair of entries sends to one queue. An RTP port and its RTCP port
    /// (even, then the next, RFC 3550) then belong to one worker, which can map them
    /// as a pair. Pairs are spread like [`Steering::spread`] spreads entries.
    pub fn paired_spread(key: &[u8], queues: u16, size: u16) -> Vec<u16> {
        let mask = u32::from(size).next_power_of_two() - 1;
        let d = (toeplitz(key, &[0, 0, 0, 0, 0, 1]) & mask) as usize;
        let mut reta = vec![u16::MAX; usize::from(size)];
        let mut k = 0u16;
        for i in 0..reta.len() {
            if reta[i] == u16::MAX {
                let q = k % queues.max(1);
                reta[i] = q;
                if let Some(e) = reta.get_mut(i ^ d) {
                    *e = q;
                }
                k = k.wrapping_add(1);
            }
        }
        reta
    }

    /// The hash key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The redirection table.
    pub fn reta(&self) -> &[u16] {
        &self.reta
    }

    /// The address's share of the hash (an address at the start of the input).
    #[inline]
    pub fn addr_part(&self, addr: u32) -> u32 {
        let b = addr.to_be_bytes();
        self.table[0][usize::from(b[0])]
            ^ self.table[1][usize::from(b[1])]
            ^ self.table[2][usize::from(b[2])]
            ^ self.table[3][usize::from(b[3])]
    }

    /// The queue of a frame whose hash is `h`.
    #[inline]
    pub fn queue_of_hash(&self, h: u32) -> u16 {
        self.reta[(h & self.mask) as usize]
    }

    /// The queue of a frame hashed on one address (inside port: the source).
    #[inline]
    pub fn queue_of_addr(&self, addr: u32) -> u16 {
        self.queue_of_hash(self.addr_part(addr))
    }

    /// The queue of a frame hashed on an address and a port (outside port: the
    /// destination), given the address's share `part` ([`Steering::addr_part`]).
    #[inline]
    pub fn queue_with(&self, part: u32, port: u16) -> u16 {
        let p = port.to_be_bytes();
        self.queue_of_hash(
            part ^ self.table[4][usize::from(p[0])] ^ self.table[5][usize::from(p[1])],
        )
    }

    /// The queue of a frame hashed on `addr` and `port`.
    #[inline]
    pub fn queue_of(&self, addr: u32, port: u16) -> u16 {
        self.queue_with(self.addr_part(addr), port)
    }

    /// Entries of the redirection table that send to `queue`, out of the table's size.
    pub fn share(&self, queue: u16) -> (usize, usize) {
        (
            self.reta.iter().filter(|&&q| q == queue).count(),
            self.reta.len(),
        )
    }
}

/// The RSS hash types of a port, as DPDK names them (`RTE_ETH_RSS_*`).
pub use cgnat_ffi::rss_hash;

/// What cgnat asks of a port's RSS to steer it, by role: the hash types and field
/// selectors, all of which the device must offer.
pub fn wanted_hash(outside: bool) -> u64 {
    use rss_hash::*;
    if outside {
        NONFRAG_IPV4_TCP | NONFRAG_IPV4_UDP | L3_DST_ONLY | L4_DST_ONLY
    } else {
        // IPv4 types without L4 fields: the source address alone, for every packet of
        // a subscriber (TCP, UDP, ICMP, fragments).
        IPV4 | L3_SRC_ONLY
    }
}

/// Whether a port can be steered, from what the device reports: the hash types and
/// selectors cgnat needs (`offloads`, its `flow_type_rss_offloads`), a redirection
/// table (`reta_size`, a power of two) and a key long enough (`key_size`, 0 when the
/// device does not say). Several workers are needed for steering to mean anything.
pub fn can_steer(
    outside: bool,
    offloads: u64,
    reta_size: u16,
    key_size: u8,
    workers: u16,
) -> Result<u64, NoSteering> {
    let want = wanted_hash(outside);
    if workers < 2 {
        return Err(NoSteering("one worker: nothing to steer".into()));
    }
    if reta_size == 0 || offloads == 0 {
        return Err(NoSteering("the device has no RSS".into()));
    }
    if offloads & want != want {
        return Err(NoSteering(format!(
            "the device's RSS hash types {offloads:#x} lack {:#x}",
            want & !offloads
        )));
    }
    if !reta_size.is_power_of_two() || reta_size < workers {
        return Err(NoSteering(format!(
            "the device's redirection table has {reta_size} entries (need a power of two, \
             at least one per worker)"
        )));
    }
    if key_size != 0 && key_size < 12 {
        return Err(NoSteering(format!(
            "the device's RSS key has {key_size} bytes (need 12 at least)"
        )));
    }
    Ok(want)
}

/// How a port decides which worker owns a frame: a short name (`rss`, `hash`,
/// `range`, `blocks`, `single`) for the summary and metrics, and a sentence for the
/// start-up log. `deterministic`: under deterministic allocation a subscriber belongs
/// to the worker of its port range, whatever the inside port does.
pub fn ownership(
    outside: bool,
    steering: Result<&Steering, &NoSteering>,
    workers: u16,
    deterministic: bool,
) -> (&'static str, String) {
    let what = if outside {
        "destination address and port"
    } else {
        "source address"
    };
    match steering {
        _ if workers < 2 => ("single", "one worker owns everything".into()),
        _ if deterministic && !outside => (
            "range",
            "the worker of the subscriber's deterministic port range, other workers' \
             frames handed off"
                .into(),
        ),
        Ok(s) => (
            "rss",
            format!(
                "RSS steering on the {what} ({}-entry table, {}-byte key): frames reach \
                 their owner, handoff only for misdelivered ones",
                s.reta().len(),
                s.key().len()
            ),
        ),
        Err(NoSteering(why)) if outside => (
            "blocks",
            format!("port blocks per worker, other workers' frames handed off ({why})"),
        ),
        Err(NoSteering(why)) => (
            "hash",
            format!("a hash of the source address, other workers' frames handed off ({why})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The key of Microsoft's RSS verification suite.
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    /// The IPv4 vectors of the verification suite: destination, source, the hash of
    /// the addresses alone, the hash with TCP ports.
    const MS_VECTORS: [(&str, &str, u32, u32); 5] = [
        (
            "161.142.100.80:1766",
            "66.9.149.187:2794",
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            "65.69.140.83:4739",
            "199.92.111.2:14230",
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            "12.22.207.184:38024",
            "24.19.198.95:12898",
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            "209.142.163.6:2217",
            "38.27.205.30:48228",
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            "202.188.127.2:1303",
            "153.39.163.191:44251",
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    fn parse(s: &str) -> (u32, u16) {
        let a: std::net::SocketAddrV4 = s.parse().unwrap();
        (u32::from(*a.ip()), a.port())
    }

    #[test]
    fn microsoft_verification_suite() {
        for (dst, src, ip_hash, tcp_hash) in MS_VECTORS {
            let ((d, dp), (s, sp)) = (parse(dst), parse(src));
            assert_eq!(toeplitz_words(&MS_KEY, &[s, d]), ip_hash, "{src} -> {dst}");
            let with_ports = [s, d, u32::from(sp) << 16 | u32::from(dp)];
            assert_eq!(
                toeplitz_words(&MS_KEY, &with_ports),
                tcp_hash,
                "{src} -> {dst}"
            );
            // DPDK's own rte_softrss agrees.
            assert_eq!(cgnat_ffi::softrss(&[s, d], &MS_KEY), ip_hash);
            assert_eq!(cgnat_ffi::softrss(&with_ports, &MS_KEY), tcp_hash);
        }
    }

    /// A small deterministic generator for the random tuples (no dependency).
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn agrees_with_dpdk_softrss_on_random_tuples_and_keys() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for round in 0..2000 {
            let mut key = [0u8; 52];
            match round % 3 {
                0 => key[..40].copy_from_slice(&MS_KEY),
                1 => {
                    for (i, k) in key.iter_mut().enumerate() {
                        *k = STEERING_KEY[i % 40];
                    }
                }
                _ => key.iter_mut().for_each(|k| *k = rng(&mut seed) as u8),
            }
            let n = 1 + (rng(&mut seed) % 12) as usize;
            let words: Vec<u32> = (0..n).map(|_| rng(&mut seed) as u32).collect();
            assert_eq!(
                toeplitz_words(&key, &words),
                cgnat_ffi::softrss(&words, &key),
                "key {key:02x?} input {words:08x?}"
            );
        }
    }

    #[test]
    fn tables_agree_with_the_bitwise_hash() {
        let mut seed = 99u64;
        for key in [&MS_KEY, &STEERING_KEY] {
            let s = Steering::new(key, &Steering::spread(3, 128)).unwrap();
            for _ in 0..5000 {
                let (a, p) = (rng(&mut seed) as u32, rng(&mut seed) as u16);
                let mut input = [0u8; 6];
                input[..4].copy_from_slice(&a.to_be_bytes());
                input[4..].copy_from_slice(&p.to_be_bytes());
                let h = toeplitz(key, &input);
                assert_eq!(s.queue_of(a, p), ((h & 127) % 3) as u16);
                assert_eq!(s.queue_of(a, p), s.queue_of_hash(h));
                assert_eq!(s.addr_part(a), toeplitz(key, &a.to_be_bytes()));
                assert_eq!(
                    s.addr_part(a),
                    cgnat_ffi::softrss(&[a], key),
                    "DPDK agrees on the address alone"
                );
            }
        }
    }

    #[test]
    fn steering_key_hashes_the_same_whether_fields_are_dropped_or_zeroed() {
        let mut seed = 7u64;
        for _ in 0..2000 {
            let (src, dst) = (rng(&mut seed) as u32, rng(&mut seed) as u32);
            let dp = rng(&mut seed) as u16;
            let dropped = toeplitz_words(&STEERING_KEY, &[dst, u32::from(dp) << 16]);
            let zeroed = toeplitz_words(&STEERING_KEY, &[0, dst, u32::from(dp)]);
            assert_eq!(dropped, zeroed);
            // Inside: the source address alone, first or zero-padded.
            assert_eq!(
                toeplitz_words(&STEERING_KEY, &[src]),
                toeplitz_words(&STEERING_KEY, &[src, 0, 0])
            );
        }
    }

    #[test]
    fn steering_key_spreads_ports_and_subscribers_evenly() {
        for workers in [2u16, 3, 4, 8] {
            let s = Steering::new(&STEERING_KEY, &Steering::spread(workers, 128)).unwrap();
            let mut ports = vec![0u32; usize::from(workers)];
            let part = s.addr_part(u32::from(Ipv4Addr::new(198, 51, 100, 7)));
            for p in 1024..=65535u16 {
                ports[usize::from(s.queue_with(part, p))] += 1;
            }
            let mut subs = vec![0u32; usize::from(workers)];
            for i in 0..65536u32 {
                subs[usize::from(s.queue_of_addr(0x6440_0000 | i))] += 1;
            }
            for (counts, total) in [(&ports, 64512u32), (&subs, 65536)] {
                let even = total / u32::from(workers);
                for &c in counts.iter() {
                    // 128 entries over 3 workers is 43/43/42: within 5% of even.
                    assert!(
                        c.abs_diff(even) < even / 20,
                        "{workers} workers: {counts:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_paired_table_keeps_an_even_port_and_the_next_on_one_queue() {
        let mut seed = 5u64;
        for (workers, size) in [(2u16, 64u16), (3, 128), (4, 512), (8, 512)] {
            for key in [&STEERING_KEY, &MS_KEY] {
                let reta = Steering::paired_spread(key, workers, size);
                let s = Steering::new(key, &reta).unwrap();
                let (mine, of) = s.share(workers - 1);
                assert!(
                    mine * usize::from(workers) >= of - usize::from(workers),
                    "{reta:?}"
                );
                for _ in 0..20_000 {
                    let (a, p) = (rng(&mut seed) as u32, rng(&mut seed) as u16 & !1);
                    assert_eq!(s.queue_of(a, p), s.queue_of(a, p + 1), "{a:x}:{p}");
                }
            }
        }
    }

    #[test]
    fn ownership_is_named_for_the_log_and_metrics() {
        let s = Steering::new(&STEERING_KEY, &Steering::spread(2, 128)).unwrap();
        let no = NoSteering("the device has no RSS".into());
        assert_eq!(ownership(true, Ok(&s), 2, false).0, "rss");
        assert!(ownership(true, Ok(&s), 2, false).1.contains("128-entry"));
        assert_eq!(ownership(false, Ok(&s), 2, false).0, "rss");
        assert_eq!(ownership(true, Err(&no), 2, false).0, "blocks");
        assert!(ownership(true, Err(&no), 2, false).1.contains("no RSS"));
        assert_eq!(ownership(false, Err(&no), 4, false).0, "hash");
        assert_eq!(ownership(false, Err(&no), 4, true).0, "range");
        assert_eq!(ownership(true, Err(&no), 4, true).0, "blocks");
        assert_eq!(ownership(false, Err(&no), 1, false).0, "single");
    }

    #[test]
    fn steering_needs_what_the_device_must_offer() {
        use rss_hash::*;
        let all =
            IPV4 | NONFRAG_IPV4_TCP | NONFRAG_IPV4_UDP | L3_SRC_ONLY | L3_DST_ONLY | L4_DST_ONLY;
        assert_eq!(can_steer(true, all, 128, 40, 2), Ok(wanted_hash(true)));
        assert_eq!(can_steer(false, all, 512, 52, 4), Ok(wanted_hash(false)));
        assert_eq!(can_steer(false, all, 128, 0, 2), Ok(wanted_hash(false)));
        assert!(can_steer(true, all, 128, 40, 1).is_err());
        assert!(
            can_steer(true, 0, 0, 0, 2).is_err(),
            "net_pcap, net_ring..."
        );
        assert!(can_steer(true, all & !L4_DST_ONLY, 128, 40, 2).is_err());
        assert!(can_steer(false, all & !L3_SRC_ONLY, 128, 40, 2).is_err());
        assert!(can_steer(true, all, 96, 40, 2).is_err());
        assert!(can_steer(true, all, 128, 8, 2).is_err());
        assert!(Steering::new(&STEERING_KEY, &[0, 1, 0]).is_err());
        assert!(Steering::new(&STEERING_KEY[..8], &[0, 1]).is_err());
    }
}
