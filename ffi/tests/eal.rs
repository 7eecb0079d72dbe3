//! The safe layer against a real EAL (one EAL per process, so one test): mempool and
//! mbuf operations, a net_ring port looping frames back, rings of mbufs and of
//! messages, and a closure launched on a worker lcore.

use cgnat_ffi::{launch, wait, Eal, MbufBurst, Mempool, MsgRing, Port, PortConf, Ring, MAX_BURST};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[test]
fn eal_mempool_mbuf_port_ring_lcore() {
    let args: Vec<String> = [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--file-prefix=cgnat-ffi-test",
        "-l",
        "0,1",
        "--vdev=net_ring0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let eal = Eal::init(&args).expect("EAL init");
    assert!(matches!(Eal::init(&args), Err(cgnat_ffi::Error::EalTwice)));
    assert_eq!(Eal::main_lcore(), 0);
    assert_eq!(Eal::lcore_count(), 2);

    let pool =
        Mempool::new_pktmbuf("ffi_test", 1023, 32, 2048 + 128, Eal::socket_id()).expect("pool");
    let mut m = pool.alloc().expect("mbuf");
    assert_eq!(m.len(), 0);
    assert!(m.append(60));
    m.data_mut().copy_from_slice(&[7u8; 60]);
    assert!(m.prepend(4));
    assert_eq!(m.len(), 64);
    assert!(m.adj(4));
    assert!(m.trim(10));
    assert_eq!(m.data(), &[7u8; 50][..]);
    assert!(!m.adj(1000), "cannot strip more than the packet");
    assert_eq!(m.headroom(), 128);
    assert!(m.is_contiguous());
    m.set_port(5);
    assert_eq!(m.port(), 5);
    let in_use = pool.in_use();
    drop(m);
    assert_eq!(pool.in_use(), in_use - 1, "Drop frees the mbuf");

    // net_ring0 with default arguments loops its TX ring back to its RX.
    let port = Port::by_name("net_ring0").expect("net_ring0");
    assert!(Port::by_name("net_nope9").is_err());
    let info = port.info().unwrap();
    assert_eq!(info.driver_name, "net_ring");
    port.configure(
        1,
        1,
        &PortConf {
            rss: false,
            mtu: 1500,
        },
    )
    .unwrap();
    port.rx_queue_setup(0, 256, Eal::socket_id(), &pool)
        .unwrap();
    port.tx_queue_setup(0, 256, Eal::socket_id()).unwrap();
    port.start().unwrap();
    let mut tx = MbufBurst::new();
    for i in 0..5u8 {
        let mut m = pool.alloc().unwrap();
        assert!(m.append(64));
        m.data_mut().fill(i);
        tx.push(m).ok().unwrap();
    }
    assert_eq!(port.tx_burst(0, &mut tx), 5);
    assert!(tx.is_empty());
    let mut rx = MbufBurst::new();
    assert_eq!(port.rx_burst(0, &mut rx), 5);
    for (i, m) in rx.take_all().enumerate() {
        assert_eq!(m.data(), &[i as u8; 64][..]);
    }
    let s = port.stats();
    assert_eq!((s.opackets, s.ipackets), (5, 5));
    assert_eq!(port.mac_addr().len(), 6);

    // A full burst refuses the 33rd mbuf and gives it back.
    let mut full = MbufBurst::new();
    for _ in 0..MAX_BURST {
        full.push(pool.alloc().unwrap()).ok().unwrap();
    }
    assert!(full.push(pool.alloc().unwrap()).is_err());

    let before = pool.in_use();
    let mut bulk = MbufBurst::new();
    assert!(pool.alloc_bulk(&mut bulk, 16));
    assert_eq!(bulk.len(), 16);
    assert!(!pool.alloc_bulk(&mut bulk, 17), "no room for 17 more");
    bulk.clear();
    assert_eq!(pool.in_use(), before, "clear frees in bulk");

    // Rings of mbufs and of messages.
    let ring = Ring::new("ffi_ring", 64, true, true, Eal::socket_id()).unwrap();
    assert_eq!(ring.enqueue_burst(&mut full), MAX_BURST);
    assert_eq!(ring.count(), MAX_BURST as u32);
    let mut back = MbufBurst::new();
    assert_eq!(ring.dequeue_burst(&mut back), MAX_BURST);
    back.clear();
    let msgs: MsgRing<[u32; 3]> =
        MsgRing::new("ffi_msgs", 16, true, true, Eal::socket_id()).unwrap();
    assert_eq!(msgs.enqueue_burst(&[[1, 2, 3], [4, 5, 6]]), 2);
    let mut out = [[0u32; 3]; 4];
    assert_eq!(msgs.dequeue_burst(&mut out), 2);
    assert_eq!(out[1], [4, 5, 6]);

    // Work on the worker lcore, reporting back through an atomic.
    let seen = Arc::new(AtomicU32::new(u32::MAX));
    let s2 = seen.clone();
    launch(1, move || {
        s2.store(cgnat_ffi::current_lcore(), Ordering::SeqCst);
        42
    })
    .unwrap();
    assert_eq!(wait(1), 42);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(cgnat_ffi::tsc_hz() > 0);

    port.stop();
    port.close();
    drop(ring);
    drop(msgs);
    drop(pool);
    drop(eal);
}
