#!/usr/bin/env python3
"""Cuts the seeds of the `cgnat` fuzz target (fuzz/fuzz_targets/cgnat.rs) from the real
captures in tests/captures: runs of a few consecutive frames of each conversation, in
the target's input format (a mode byte, then per frame a side-and-clock byte, a 2-byte
length and the Ethernet frame). Frames from the capture's inside host go in on the
inside; the others on the outside. Each run is written twice: as is (mode 0) and
replayed (mode 1). Needs editcap (Wireshark).

Usage: scripts/fuzz-cgnat-seeds.py [OUT_DIR]   (default fuzz/seeds/cgnat)
"""
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTURES = os.path.join(ROOT, "tests", "captures")
# capture: (inside host, how many runs to cut)
CUT = {
    "ftp-ipv4-pasv-port.pcap": ("141.142.220.235", 5),
    "ftp-retr-epsv.pcap": ("141.142.228.5", 4),
    "ftp-auth-tls.pcap": ("127.0.0.1", 2),
    "sip-sdp-rtp.pcap": ("192.168.1.2", 6),
    "rtsp-setup.pcap": ("10.1.1.10", 4),
    "rtsp-setup-single.pcapng": ("172.28.5.170", 1),
    "tftp-rrq.pcap": ("192.168.1.2", 2),
    "pptp-clear.pcap": ("192.168.43.22", 2),
    "h323-call.pcap": ("10.1.3.143", 2),
    "irc-dcc-send.pcapng": ("10.0.0.7", 2),
    "snmpv1-get.pcap": ("172.31.19.54", 1),
}
RUN = 6
MAX_SEED = 4096


def frames(path):
    """(seconds, Ethernet frame) of a classic pcap (Ethernet or Linux cooked v1)."""
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap")
    link = struct.unpack(e + "I", data[20:24])[0]
    at, out = 24, []
    while at + 16 <= len(data):
        sec, _, incl, _ = struct.unpack(e + "IIII", data[at : at + 16])
        pkt = data[at + 16 : at + 16 + incl]
        at += 16 + incl
        if link == 1:
            out.append((sec, pkt))
        elif link == 113 and len(pkt) >= 16:
            # Linux cooked v1: 16-byte header, protocol in its last two bytes.
            out.append((sec, b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + pkt[14:16] + pkt[16:]))
    return out


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "seeds", "cgnat")
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, (host, runs) in sorted(CUT.items()):
            path = os.path.join(CAPTURES, name)
            # Whatever the file's format (pcapng, nanosecond pcap): classic pcap.
            conv = os.path.join(tmp, name + ".pcap")
            subprocess.run(["editcap", "-F", "pcap", path, conv], check=True)
            path = conv
            fs = frames(path)
            hostb = bytes(int(x) for x in host.split("."))
            step = max(1, len(fs) // runs)
            for r in range(runs):
                run = fs[r * step : r * step + RUN]
                if not run:
                    continue
                for mode in (0, 1):
                    seed = bytearray([mode])
                    last = run[0][0]
                    for sec, f in run:
                        inside = len(f) >= 30 and f[12:14] == b"\x08\x00" and f[26:30] == hostb
                        clock = min(127, max(0, sec - last))
                        last = sec
                        chunk = bytes([(clock << 1) | (0 if inside else 1)]) + struct.pack(">H", len(f)) + f
                        if len(seed) + len(chunk) > MAX_SEED:
                            break
                        seed += chunk
                    if len(seed) > 1:
                        with open(os.path.join(out_dir, f"{name.split('.')[0]}-{r}-{mode}"), "wb") as fh:
                            fh.write(seed)
                        n += 1
    print(f"{n} seeds in {out_dir}")


if __name__ == "__main__":
    main()
