//! The safe layer against a real EAL. DPDK can be initialised once per process, so this
//! file holds exactly one test, which walks through everything in order: EAL init,
//! mempool and mbuf operations, bursts, a net_ring port looping frames back, a net_null
//! sink, rings of mbufs and of messages, closures on a worker lcore, and teardown.
//!
//! No hugepages needed: `--no-huge -m 256`; `--no-shconf` and a file prefix of its own
//! keep it clear of other DPDK processes on the machine.

use cgnat_ffi::{
    current_lcore, launch, rss_hash, tsc, tsc_hz, wait, Eal, Error, Mbuf, MbufBurst, Mempool,
    MsgRing, Port, PortConf, Ring, RssConf, JOB_PANICKED, MAX_BURST, MAX_QUEUES,
};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

fn eal_args(lcores: &str) -> Vec<String> {
    [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--file-prefix=cgnat-ffi-test",
        "--vdev=net_ring0",
        "--vdev=net_null0",
        "-l",
        lcores,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A frame of `len` bytes, every byte `tag`.
fn frame(pool: &Mempool, len: usize, tag: u8) -> Mbuf {
    let mut m = pool.alloc().expect("an mbuf");
    assert!(m.append(len));
    m.data_mut().fill(tag);
    m
}

#[test]
fn eal_end_to_end() {
    let two_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let args = eal_args(if two_cpus { "0,1" } else { "0" });

    // Refused before anything happens, and does not use up the one init.
    let mut bad = args.clone();
    bad.push("a\0b".into());
    assert!(matches!(Eal::init(&bad), Err(Error::Nul { .. })));

    let eal = Eal::init(&args).expect("EAL init");
    assert_eq!(Eal::init(&args).unwrap_err(), Error::EalAlreadyInitialised);
    assert_eq!(Eal::main_lcore(), 0);
    assert_eq!(
        current_lcore(),
        0,
        "the thread that ran init is the main lcore"
    );
    let expected: Vec<u32> = if two_cpus { vec![0, 1] } else { vec![0] };
    assert_eq!(Eal::lcores(), expected);
    assert_eq!(Eal::lcore_count() as usize, expected.len());
    let socket = Eal::socket_id();
    assert!(socket >= 0, "an lcore has a socket");
    assert!(tsc_hz() > 0);
    let t0 = tsc();
    assert!(tsc() >= t0);

    mempool_and_mbuf(socket);
    let pool = Mempool::new_pktmbuf("ffi_pool", 1023, 32, 2048 + 128, socket).expect("pool");
    assert!(matches!(
        Mempool::new_pktmbuf("ffi_pool", 63, 0, 2176, socket),
        Err(Error::Invalid(m)) if m.contains("exists already")
    ));
    bursts(&pool);
    let ring_port = ring_port(&pool, socket);
    racing_pollers(ring_port, &pool);
    null_port(&pool, socket);
    mbuf_rings(&pool, socket);
    msg_rings(socket);
    if two_cpus {
        lcores(&pool, socket);
    }
    orphaned_pool(socket);

    // Teardown: the pool is freed once its last handle goes (its mbufs are all back
    // and no RX queue holds it once the port is closed), so its name is free again.
    ring_port.close();
    assert_eq!(pool.in_use(), 0, "every mbuf is back");
    drop(pool);
    let again = Mempool::new_pktmbuf("ffi_pool", 63, 0, 2176, socket).expect("name free");
    drop(again);

    drop(eal);
    // Cleaned up: everything refuses politely instead of touching unmapped memory.
    assert_eq!(
        Port::by_name("net_ring0").unwrap_err(),
        Error::EalNotRunning
    );
    assert_eq!(Port::count(), 0);
    let mut b = MbufBurst::new();
    assert_eq!(ring_port.rx_burst(0, &mut b), 0);
    assert_eq!(ring_port.stats(), Default::default());
    assert_eq!(
        Mempool::new_pktmbuf("late", 63, 0, 2176, -1).unwrap_err(),
        Error::EalNotRunning
    );
    assert_eq!(Eal::init(&args).unwrap_err(), Error::EalAlreadyInitialised);
}

fn mempool_and_mbuf(socket: i32) {
    let pool = Mempool::new_pktmbuf("ffi_mbufs", 63, 0, 2048 + 128, socket).expect("pool");
    assert_eq!((pool.available(), pool.in_use()), (63, 0));

    let mut m = pool.alloc().expect("mbuf");
    assert_eq!(pool.in_use(), 1);
    assert!(m.is_empty() && m.data().is_empty() && m.is_contiguous());
    assert_eq!((m.headroom(), m.tailroom()), (128, 2048));

    let payload: Vec<u8> = (0..60).collect();
    assert!(m.append(60));
    m.data_mut().copy_from_slice(&payload);
    assert!(m.prepend(14), "an Ethernet header fits in the headroom");
    assert_eq!((m.len(), m.headroom()), (74, 114));
    m.data_mut()[..14].fill(0xee);
    assert_eq!(&m.data()[14..], &payload[..]);
    assert!(m.adj(14));
    assert!(m.trim(10));
    assert_eq!(m.data(), &payload[..50]);
    assert_eq!((m.len(), m.headroom(), m.tailroom()), (50, 128, 1998));

    // Refusals leave the mbuf as it was.
    assert!(!m.adj(51), "cannot strip more than the packet");
    assert!(!m.trim(51));
    assert!(!m.prepend(129), "more than the headroom");
    assert!(!m.append(1999), "more than the tailroom");
    assert!(!m.append(1 << 20), "more than an mbuf can ever grow");
    assert_eq!(m.data(), &payload[..50]);

    m.set_port(7);
    assert_eq!(m.port(), 7);
    // The stamp: cgnat's own dynamic field, registered when the EAL started, 0 in a
    // fresh mbuf, apart from every other field.
    assert_eq!(m.stamp(), Some(0));
    m.set_stamp(0x1234_5678_9abc_def0);
    assert_eq!(m.stamp(), Some(0x1234_5678_9abc_def0));
    assert_eq!((m.port(), m.len(), m.headroom()), (7, 50, 128));
    assert_eq!((m.ol_flags(), m.packet_type()), (0, 0));
    assert_eq!(format!("{m:?}"), "Mbuf { len: 50, segments: 1, port: 7 }");

    // Ownership leaves and comes back.
    let raw = m.into_raw();
    assert_eq!(pool.in_use(), 1, "into_raw does not free");
    // SAFETY: `raw` came from into_raw just above and nothing else has it.
    let m = unsafe { Mbuf::from_raw(raw) };
    assert_eq!(m.data(), &payload[..50]);
    drop(m);
    assert_eq!(pool.in_use(), 0, "Drop frees");

    // Empty pool: alloc says so.
    let all: Vec<Mbuf> = std::iter::from_fn(|| pool.alloc()).collect();
    assert_eq!((all.len(), pool.available()), (63, 0));
    assert!(
        all.iter().all(|m| m.stamp() == Some(0)),
        "the stamped mbuf, reused, starts at 0 again"
    );
    assert!(pool.alloc().is_none());
    drop(all);
    assert_eq!(pool.in_use(), 0);
}

fn bursts(pool: &Mempool) {
    let base = pool.in_use();
    let mut b = MbufBurst::new();
    for i in 0..MAX_BURST {
        let mut m = pool.alloc().unwrap();
        m.set_port(i as u16);
        b.push(m).unwrap();
    }
    assert!(b.is_full());
    let extra = b
        .push(pool.alloc().unwrap())
        .expect_err("a full burst gives it back");
    drop(extra);

    assert_eq!(b.pop().unwrap().port(), 31, "pop takes the last");
    assert_eq!(b.pop_front().unwrap().port(), 0, "pop_front the first");
    // Room at the front is reused: the burst moves its mbufs down.
    for port in [200, 201] {
        let mut m = pool.alloc().unwrap();
        assert_eq!(m.port(), u16::MAX, "a fresh mbuf has no input port");
        m.set_port(port);
        b.push(m).unwrap();
    }
    b.push(pool.alloc().unwrap()).expect_err("full again");
    for m in b.iter_mut() {
        let p = m.port();
        m.set_port(p + 100);
    }
    let ports: Vec<u16> = b.iter().map(Mbuf::port).collect();
    assert_eq!(ports.len(), MAX_BURST);
    assert_eq!(&ports[..2], &[101, 102]);
    assert_eq!(&ports[29..], &[130, 300, 301]);

    // take_all yields in order; what it did not yield when dropped is freed.
    let mut seen = Vec::new();
    for m in b.take_all().take(5) {
        seen.push(m.port());
    }
    assert_eq!(seen, [101, 102, 103, 104, 105]);
    assert!(b.is_empty());
    assert_eq!(pool.in_use(), base, "take_all freed the rest");

    assert!(pool.alloc_bulk(&mut b, 20));
    assert_eq!(b.len(), 20);
    assert!(!pool.alloc_bulk(&mut b, 13), "no room for 13 more");
    assert_eq!(b.len(), 20, "all or none");
    assert!(pool.alloc_bulk(&mut b, 12));
    assert_eq!(pool.in_use(), base + 32);
    b.clear();
    assert_eq!(pool.in_use(), base, "clear frees in bulk");

    assert!(pool.alloc_bulk(&mut b, 3));
    drop(b);
    assert_eq!(pool.in_use(), base, "drop frees");
}

/// net_ring0, as a vdev with no arguments, is one ring used as both its RX and its TX
/// queue: what it transmits, it receives.
fn ring_port(pool: &Mempool, socket: i32) -> Port {
    assert_eq!(Port::count(), 2);
    let port = Port::by_name("net_ring0").expect("net_ring0");
    assert_eq!(Port::from_id(port.id()), Ok(port));
    assert_eq!(port.name().as_deref(), Some("net_ring0"));
    let Err(Error::NotFound(msg)) = Port::by_name("net_nope9") else {
        panic!("a missing port is NotFound")
    };
    assert!(
        msg.contains("net_ring0") && msg.contains("net_null0"),
        "{msg}"
    );

    let info = port.info().unwrap();
    assert_eq!(info.driver_name, "net_ring");
    assert!(info.max_rx_queues >= 1 && info.max_tx_queues >= 1);

    assert!(matches!(
        port.configure(0, 1, &PortConf::default()),
        Err(Error::Invalid(_))
    ));
    let tiny = PortConf {
        mtu: 10,
        ..PortConf::default()
    };
    let Err(Error::Invalid(msg)) = port.configure(1, 1, &tiny) else {
        panic!("an MTU below the device's minimum is refused")
    };
    assert!(msg.contains("MTU"), "{msg}");
    port.configure(
        1,
        1,
        &PortConf {
            rss: true,
            steer: Some(RssConf {
                hash: rss_hash::NONFRAG_IPV4_UDP | rss_hash::L3_DST_ONLY,
                key: [0x6d; 40],
            }),
            mtu: 1500,
        },
    )
    .unwrap();
    // net_ring has no RSS: nothing to steer (the configuration above ignored it).
    assert_eq!(info.reta_size, 0);
    let Err(Error::Dpdk { errno, .. }) = port.rss_steer(&[0, 1]) else {
        panic!("net_ring has no redirection table")
    };
    assert_eq!(errno, 95, "ENOTSUP");

    let mut b = MbufBurst::new();
    assert_eq!(port.rx_burst(0, &mut b), 0, "queue not set up yet");
    assert!(matches!(
        port.rx_queue_setup(MAX_QUEUES, 256, socket, pool),
        Err(Error::Invalid(_))
    ));
    port.rx_queue_setup(0, 256, socket, pool).unwrap();
    port.tx_queue_setup(0, 256, socket).unwrap();
    port.start().unwrap();
    port.promiscuous(true).unwrap();
    assert!(port.link().up);
    assert_eq!(port.mac_addr().len(), 6);
    port.reset_stats().unwrap();

    for i in 0..5u8 {
        b.push(frame(pool, 64 + usize::from(i), i)).unwrap();
    }
    assert_eq!(port.tx_burst(1, &mut b), 0, "TX queue 1 does not exist");
    assert_eq!(b.len(), 5, "nothing left the burst");
    assert_eq!(port.tx_burst(0, &mut b), 5);
    assert!(b.is_empty());
    let mut rx = MbufBurst::new();
    assert_eq!(port.rx_burst(0, &mut rx), 5);
    for (i, m) in rx.take_all().enumerate() {
        assert_eq!(
            m.data(),
            &vec![i as u8; 64 + i][..],
            "frame {i} came back intact"
        );
    }
    let s = port.stats();
    assert_eq!((s.opackets, s.ipackets), (5, 5));
    // net_ring counts packets only (22.11); a driver that counts bytes must count these.
    assert!(
        [(0, 0), (330, 330)].contains(&(s.obytes, s.ibytes)),
        "{s:?}"
    );
    assert_eq!((s.imissed, s.ierrors, s.oerrors, s.rx_nombuf), (0, 0, 0, 0));

    // Receive fills only the free space.
    for i in 0..40u8 {
        b.push(frame(pool, 60, i)).ok();
        if b.is_full() {
            assert_eq!(port.tx_burst(0, &mut b), MAX_BURST);
        }
    }
    assert_eq!(port.tx_burst(0, &mut b), 8);
    rx.push(pool.alloc().unwrap()).unwrap();
    assert_eq!(port.rx_burst(0, &mut rx), MAX_BURST - 1);
    assert_eq!(port.rx_burst(0, &mut rx), 0, "full");
    rx.clear();
    assert_eq!(port.rx_burst(0, &mut rx), 9);
    rx.clear();

    // A stopped port moves nothing, and starts again.
    port.stop();
    b.push(frame(pool, 60, 1)).unwrap();
    assert_eq!(port.tx_burst(0, &mut b), 0);
    port.start().unwrap();
    assert_eq!(port.tx_burst(0, &mut b), 1);
    assert_eq!(port.rx_burst(0, &mut rx), 1);
    rx.clear();
    port
}

/// Two plain threads poll the same RX queue while the main thread transmits and
/// stops and starts the port: the queue gates let one burst in at a time and none
/// while the port changes state, so every frame arrives exactly once.
fn racing_pollers(port: Port, pool: &Mempool) {
    const FRAMES: u32 = 3000;
    let done = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..2)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                let mut b = MbufBurst::new();
                loop {
                    let finished = done.load(Ordering::Acquire);
                    if port.rx_burst(0, &mut b) == 0 {
                        // Empty, or the other poller had the queue; the last one out
                        // saw it empty after the sender finished.
                        if finished {
                            break;
                        }
                        std::thread::yield_now();
                    }
                    for m in b.take_all() {
                        seqs.push(u32::from_be_bytes(m.data()[..4].try_into().unwrap()));
                    }
                }
                seqs
            })
        })
        .collect();
    let mut b = MbufBurst::new();
    for seq in 0..FRAMES {
        // The pollers free what they receive; wait for them when the pool runs dry.
        let mut m = loop {
            match pool.alloc() {
                Some(m) => break m,
                None => std::thread::yield_now(),
            }
        };
        assert!(m.append(60));
        m.data_mut()[..4].copy_from_slice(&seq.to_be_bytes());
        b.push(m).unwrap();
        if b.is_full() || seq == FRAMES - 1 {
            while !b.is_empty() {
                port.tx_burst(0, &mut b);
            }
        }
        if seq % 500 == 499 {
            port.stop();
            port.start().unwrap();
        }
    }
    done.store(true, Ordering::Release);
    let mut all: Vec<u32> = pollers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..FRAMES).collect::<Vec<_>>());
}

/// net_null0 frees what it transmits and receives zero-filled frames from the pool.
fn null_port(pool: &Mempool, socket: i32) {
    let port = Port::by_name("net_null0").expect("net_null0");
    assert_eq!(port.info().unwrap().driver_name, "net_null");
    port.configure(1, 1, &PortConf::default()).unwrap();
    port.rx_queue_setup(0, 128, socket, pool).unwrap();
    port.tx_queue_setup(0, 128, socket).unwrap();
    port.start().unwrap();
    let base = pool.in_use();
    let mut b = MbufBurst::new();
    for i in 0..8 {
        b.push(frame(pool, 100, i)).unwrap();
    }
    assert_eq!(port.tx_burst(0, &mut b), 8);
    assert_eq!(pool.in_use(), base, "the sink freed them");
    assert_eq!(port.rx_burst(0, &mut b), MAX_BURST);
    assert!(
        b.iter().all(|m| m.len() == 64),
        "net_null's default frame size"
    );
    b.clear();
    assert_eq!(port.stats().opackets, 8);
    port.close();
    assert_eq!(port.name(), None, "a closed vdev is gone");
    assert!(port.info().is_err());
}

fn mbuf_rings(pool: &Mempool, socket: i32) {
    let base = pool.in_use();
    let ring = Ring::new("ffi_ring", 64, true, true, socket).unwrap();
    assert!(matches!(
        Ring::new("ffi_ring", 64, true, true, socket),
        Err(Error::Invalid(m)) if m.contains("exists already")
    ));
    assert!(matches!(
        Ring::new("a_ring_name_far_too_long_for_dpdk", 64, true, true, socket),
        Err(Error::Invalid(m)) if m.contains("too long")
    ));
    assert_eq!(
        (ring.capacity(), ring.count(), ring.free_count()),
        (64, 0, 64)
    );

    let mut b = MbufBurst::new();
    for i in 0..MAX_BURST {
        b.push(frame(pool, 60, i as u8)).unwrap();
    }
    assert_eq!(ring.enqueue_burst(&mut b), MAX_BURST);
    assert!(b.is_empty());
    assert_eq!((ring.count(), ring.free_count()), (32, 32));
    b.push(pool.alloc().unwrap()).unwrap();
    assert_eq!(ring.dequeue_burst(&mut b), MAX_BURST - 1);
    assert_eq!(b.as_slice()[1].data()[0], 0, "first in, first out");
    b.clear();
    assert_eq!(ring.count(), 1);

    // A small ring takes what fits; the rest stays in the burst, in order.
    let small = Ring::new("ffi_small", 8, false, true, socket).unwrap();
    for i in 0..10 {
        b.push(frame(pool, 60, i)).unwrap();
    }
    assert_eq!(small.enqueue_burst(&mut b), 8);
    assert_eq!(b.len(), 2);
    assert_eq!(b.as_slice()[0].data()[0], 8);
    assert_eq!(small.enqueue_burst(&mut b), 0, "full");
    b.clear();

    // Mbufs still queued are freed with the ring.
    drop(small);
    drop(ring);
    assert_eq!(pool.in_use(), base);
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Event {
    id: u32,
    addr: [u8; 4],
    port: u16,
    flag: bool,
}

fn msg_rings(socket: i32) {
    // 12 bytes: DPDK copies in place.
    let r: MsgRing<[u32; 3]> = MsgRing::new("ffi_msgs", 4, true, true, socket).unwrap();
    assert_eq!(r.enqueue_burst(&[[1, 2, 3], [4, 5, 6]]), 2);
    let mut out = [[0u32; 3]; 8];
    assert_eq!(r.dequeue_burst(&mut out), 2);
    assert_eq!(&out[..2], &[[1, 2, 3], [4, 5, 6]]);
    let many: Vec<[u32; 3]> = (0..6).map(|i| [i; 3]).collect();
    assert_eq!(r.enqueue_burst(&many), 4, "exactly the capacity");
    assert_eq!(r.free_count(), 0);
    assert_eq!(r.dequeue_burst(&mut out), 4);
    assert_eq!(&out[..4], &many[..4]);

    // 6 bytes: staged through 8-byte elements.
    let r6: MsgRing<[u8; 6]> = MsgRing::new("ffi_msgs6", 600, true, true, socket).unwrap();
    let macs: Vec<[u8; 6]> = (0..500u16)
        .map(|i| [1, 2, 3, 4, (i >> 8) as u8, i as u8])
        .collect();
    assert_eq!(r6.enqueue_burst(&macs), 500, "several staging passes");
    let mut back = vec![[0u8; 6]; 700];
    assert_eq!(r6.dequeue_burst(&mut back), 500);
    assert_eq!(&back[..500], &macs[..]);

    // A struct with padding and a bool.
    let re: MsgRing<Event> = MsgRing::new("ffi_events", 16, true, false, socket).unwrap();
    let ev: Vec<Event> = (0..20)
        .map(|i| Event {
            id: i,
            addr: [10, 0, 0, i as u8],
            port: 1000 + i as u16,
            flag: i % 2 == 0,
        })
        .collect();
    assert_eq!(re.enqueue_burst(&ev), 16);
    let mut got = [Event::default(); 20];
    assert_eq!(re.dequeue_burst(&mut got[..3]), 3);
    assert_eq!(re.dequeue_burst(&mut got[3..]), 13);
    assert_eq!(&got[..16], &ev[..16]);

    // 16-byte elements: DPDK copies them as 128-bit words, so in place only from a
    // 16-aligned array, staged otherwise.
    #[repr(C, align(16))]
    struct Aligned([[u64; 2]; 8]);
    #[repr(C, align(16))]
    struct Shifted {
        _pad: u64,
        items: [[u64; 2]; 8],
    }
    let r16: MsgRing<[u64; 2]> = MsgRing::new("ffi_msgs16", 64, true, true, socket).unwrap();
    let a = Aligned(std::array::from_fn(|i| [i as u64, !(i as u64)]));
    let mut sh = Shifted {
        _pad: 0,
        items: [[0; 2]; 8],
    };
    assert_eq!(sh.items.as_ptr() as usize % 16, 8);
    assert_eq!(r16.enqueue_burst(&a.0), 8);
    assert_eq!(r16.dequeue_burst(&mut sh.items), 8);
    assert_eq!(sh.items, a.0);
    assert_eq!(r16.enqueue_burst(&sh.items[..3]), 3);
    let mut back = Aligned([[0; 2]; 8]);
    assert_eq!(r16.dequeue_burst(&mut back.0), 3);
    assert_eq!(&back.0[..3], &a.0[..3]);
}

fn lcores(pool: &Mempool, socket: i32) {
    assert_eq!(Eal::worker_lcores(), [1]);
    assert!(
        matches!(launch(0, || 0), Err(Error::Invalid(_))),
        "not the main lcore"
    );
    assert!(matches!(launch(99, || 0), Err(Error::Invalid(_))));
    let from_thread = std::thread::spawn(|| launch(1, || 0)).join().unwrap();
    assert!(matches!(from_thread, Err(Error::Invalid(m)) if m.contains("main lcore")));

    // A worker allocates from the shared pool and hands frames back over a ring.
    let ring = Arc::new(Ring::new("ffi_handoff", 64, true, true, socket).unwrap());
    let seen = Arc::new(AtomicU32::new(u32::MAX));
    let (p, r, s) = (pool.clone(), ring.clone(), seen.clone());
    launch(1, move || {
        s.store(current_lcore(), Ordering::SeqCst);
        let mut b = MbufBurst::new();
        for i in 0..10 {
            b.push(frame(&p, 60, i)).unwrap();
        }
        r.enqueue_burst(&mut b) as i32
    })
    .unwrap();
    assert_eq!(wait(1), 10);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    let mut b = MbufBurst::new();
    assert_eq!(ring.dequeue_burst(&mut b), 10);
    assert_eq!(b.as_slice()[9].data()[0], 9);
    b.clear();

    // One job at a time per lcore.
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    launch(1, move || {
        while !g.load(Ordering::Acquire) {
            cgnat_ffi::pause();
        }
        7
    })
    .unwrap();
    let Err(Error::Invalid(msg)) = launch(1, || 0) else {
        panic!("a busy lcore refuses a second job")
    };
    assert!(msg.contains("still running"), "{msg}");
    go.store(true, Ordering::Release);
    assert_eq!(wait(1), 7);

    // A panic stays on its lcore.
    launch(1, || panic!("a job panics (expected by the test)")).unwrap();
    assert_eq!(wait(1), JOB_PANICKED);
    assert_eq!(wait(1), JOB_PANICKED, "waiting again returns the same");
}

/// A pool dropped while one of its mbufs is out is kept until the mbuf is back.
fn orphaned_pool(socket: i32) {
    let pool = Mempool::new_pktmbuf("ffi_orphan", 63, 0, 2176, socket).unwrap();
    let m = frame(&pool, 60, 0xab);
    drop(pool);
    assert_eq!(m.data(), &[0xab; 60][..], "the mbuf is still good");
    assert!(
        Mempool::new_pktmbuf("ffi_orphan", 63, 0, 2176, socket).is_err(),
        "not freed yet: the name is taken"
    );
    drop(m);
    // The next pool or ring drop frees it.
    drop(Ring::new("ffi_tick", 4, true, true, socket).unwrap());
    let again = Mempool::new_pktmbuf("ffi_orphan", 63, 0, 2176, socket).expect("freed");
    drop(again);
}
