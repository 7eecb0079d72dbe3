#!/usr/bin/env python3
"""A VLAN switch in user space, for test beds whose kernel has no 802.1Q support
(no 8021q module: `ip link add ... type vlan` fails): it joins access interfaces to a
trunk interface, pushing each access port's tags (one: 802.1Q; two, written
OUTER.INNER: an 802.1ad outer tag and an 802.1Q inner one) on what it forwards to the
trunk and forwarding what comes in on the trunk with those tags, stripped, to that
port. Frames with other tags, or none, are dropped.

Usage: vlan-switch.py TRUNK ACCESS=TAGS [ACCESS=TAGS ...]   e.g. vs a100=100 aq=10.300

Linux moves a received frame's outer tag into the packet's metadata; it is read back
from the packet socket's auxiliary data.
"""
import select
import socket
import struct
import sys

ETH_P_ALL = 3
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
TPIDS = (0x8100, 0x88A8)


def open_port(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((name, 0))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    return s


def receive(s):
    """A received frame with its tags in place, or None for one this host sent."""
    data, anc, _, addr = s.recvmsg(65535, socket.CMSG_SPACE(64))
    if addr[2] == socket.PACKET_OUTGOING:
        return None
    for level, kind, d in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(d) >= 20:
            status, _, _, _, _, tci, tpid = struct.unpack("IIIHHHH", d[:20])
            if status & TP_STATUS_VLAN_VALID:
                if not status & TP_STATUS_VLAN_TPID_VALID:
                    tpid = 0x8100
                data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data


def tags_of(frame):
    """The frame's VLAN ids (outermost first) and its bytes without the tags."""
    ids, at = [], 12
    while len(frame) >= at + 4 and struct.unpack("!H", frame[at:at + 2])[0] in TPIDS:
        ids.append(struct.unpack("!H", frame[at + 2:at + 4])[0] & 0xFFF)
        at += 4
    return tuple(ids), frame[:12] + frame[at:]


def tagged(frame, ids):
    tags = b""
    for i, v in enumerate(ids):
        tpid = 0x88A8 if len(ids) == 2 and i == 0 else 0x8100
        tags += struct.pack("!HH", tpid, v)
    return frame[:12] + tags + frame[12:]


def main():
    trunk = open_port(sys.argv[1])
    ports = {}
    for arg in sys.argv[2:]:
        name, ids = arg.split("=")
        ports[tuple(int(x) for x in ids.split("."))] = open_port(name)
    tags = {s: ids for ids, s in ports.items()}
    print("vlan-switch up", flush=True)
    while True:
        ready, _, _ = select.select([trunk, *ports.values()], [], [])
        for s in ready:
            frame = receive(s)
            if frame is None:
                continue
            if s is trunk:
                ids, bare = tags_of(frame)
                if ids in ports:
                    ports[ids].send(bare)
            else:
                trunk.send(tagged(frame, tags[s]))


if __name__ == "__main__":
    main()
