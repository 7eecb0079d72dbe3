#!/usr/bin/env python3
"""The UDP stream of scripts/ha-e2e.sh (RTP-like: 50 datagrams a second each way).

server ADDR PORT LOG: echoes every datagram back to its sender; LOG gets the arrival
time of each (the subscriber -> internet direction).
client ADDR PORT SECS LOG: sends a numbered datagram every 20 ms for SECS seconds;
LOG gets the arrival time of each echo (so the internet -> subscriber direction too).
gap LOG FROM TO: the longest gap between arrivals in LOG that overlaps [FROM, TO]
(Unix times), in seconds.
"""
import socket
import sys
import time


def server(addr, port, log):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    with open(log, "w", buffering=1) as out:
        while True:
            try:
                data, peer = s.recvfrom(2048)
                out.write(f"{time.time():.3f}\n")
                s.sendto(data, peer)
            except OSError as e:
                # A transient error (an ICMP error reported, no route for a moment
                # during the failover) loses one echo, not the stream.
                print(f"{time.time():.3f} server: {e}", file=sys.stderr, flush=True)


def client(addr, port, secs, log):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    end = time.time() + float(secs)
    n = 0
    with open(log, "w", buffering=1) as out:
        nxt = time.time()
        while time.time() < end:
            now = time.time()
            if now >= nxt:
                try:
                    s.sendto(n.to_bytes(4, "big") + b"x" * 156, (addr, int(port)))
                except OSError as e:
                    # The gateway unresolved while the pair fails over (the kernel
                    # gives EHOSTUNREACH once its ARP entry failed): this datagram is
                    # lost, the stream goes on, as a phone's RTP does.
                    print(f"{time.time():.3f} send: {e}", file=sys.stderr, flush=True)
                n += 1
                nxt += 0.02
            try:
                while True:
                    s.recv(2048)
                    out.write(f"{time.time():.3f}\n")
            except BlockingIOError:
                pass
            except OSError as e:
                print(f"{time.time():.3f} recv: {e}", file=sys.stderr, flush=True)
            time.sleep(0.002)


def gap(log, start, stop):
    times = [float(x) for x in open(log) if x.strip()]
    start, stop = float(start), float(stop)
    worst = 0.0
    for a, b in zip(times, times[1:]):
        if b >= start and a <= stop:
            worst = max(worst, b - a)
    print(f"{worst:.2f}")


if __name__ == "__main__":
    {"server": server, "client": client, "gap": gap}[sys.argv[1]](*sys.argv[2:])
