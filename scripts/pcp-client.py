#!/usr/bin/env python3
"""A small PCP (RFC 6887) client for the end-to-end bed: raw struct packing, since
Debian has no PCP client. Usage:
  pcp-client.py SERVER CLIENT_ADDR map PROTO INTERNAL_PORT LIFETIME [SUGGESTED_PORT]
  pcp-client.py SERVER CLIENT_ADDR peer PROTO INTERNAL_PORT LIFETIME PEER_ADDR PEER_PORT
Prints `result=R lifetime=L epoch=E external=A:P` from the response."""
import os
import socket
import struct
import sys


def mapped(addr):
    return b"\0" * 10 + b"\xff\xff" + socket.inet_aton(addr)


def main():
    server, client, op, proto, iport, life = sys.argv[1:7]
    proto = {"tcp": 6, "udp": 17}[proto]
    nonce = os.urandom(12)
    opcode = {"map": 1, "peer": 2}[op]
    data = nonce + struct.pack("!B3xHH", proto, int(iport), 0) + b"\0" * 16
    if op == "map" and len(sys.argv) > 7:
        data = nonce + struct.pack("!B3xHH", proto, int(iport), int(sys.argv[7])) + b"\0" * 16
    if op == "peer":
        data += struct.pack("!HH", int(sys.argv[8]), 0) + mapped(sys.argv[7])
    msg = struct.pack("!BBHI", 2, opcode, 0, int(life)) + mapped(client) + data
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    for _ in range(4):
        s.sendto(msg, (server, 5351))
        try:
            resp, _ = s.recvfrom(1100)
            break
        except socket.timeout:
            continue
    else:
        print("no answer")
        sys.exit(2)
    ver, r_op, _, result, rlife, epoch = struct.unpack("!BBBBII", resp[:12])
    assert ver == 2 and r_op == 0x80 | opcode, resp[:4]
    assert resp[24:36] == nonce, "nonce not echoed"
    eport = struct.unpack("!H", resp[42:44])[0]
    eaddr = socket.inet_ntoa(resp[56:60])
    print(f"result={result} lifetime={rlife} epoch={epoch} external={eaddr}:{eport}")


main()
