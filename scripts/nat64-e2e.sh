#!/usr/bin/env bash
# End to end: stateful NAT64 (issue 17) with real Linux hosts. The subscriber namespace
# is IPv6-only (its IPv4 address goes once cgnat is up): fd00:ffff::10/64 on the inside
# link, the NAT64 prefix 2001:db8:64::/96 (network-specific: the IPv4 server is on a
# documentation address, which the Well-Known Prefix may not carry) routed to cgnat's
# fd00:ffff::1. The internet namespace is IPv4-only: 192.0.2.10 serves a 3 MB file over
# HTTP and echoes UDP. The subscriber downloads the file with curl (sha256 checked),
# pings the server and makes a UDP round trip, all to 2001:db8:64::c000:20a; a capture
# on the internet side shows only pool addresses (198.51.100.0/28) as sources toward
# the server. UDP in fragments: 3,000 bytes out, 1,472 back cut to 1280. Needs root.
# Usage: nat64-e2e.sh CGNAT_BINARY WORKDIR
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
bin=$(realpath "$1")
work=$(realpath -m "$2")
mkdir -p "$work"
bed_init c64
fail() { bed_fail6 "NAT64 E2E" "$*"; }
server6=2001:db8:64::c000:20a

bed_up "$sub" "$inet" "$vs" "$vsn" "$vi" "$vin"
bed_inside='ipv4 = "100.64.0.1/10"
ipv6 = ["fd00:ffff::1/64"]'
write_cgnat_config "$work/cgnat.toml" nat64 "$vsn" "$vin" '
[nat64]
prefix = "2001:db8:64::/96"'
"$bin" check -c "$work/cgnat.toml" > "$work/check.txt" || fail "config refused: $(cat "$work/check.txt")"
start_cgnat "$bin" "$work/cgnat.toml"
wait_up "$cg" || fail "cgnat did not answer ping on 100.64.0.1 (or exited)"
echo "nat64-e2e: appliance up"

# The subscriber becomes IPv6-only.
ip netns exec "$sub" sh -c "
    ip route del default
    ip addr flush dev $vs
    sysctl -qw net.ipv6.conf.all.disable_ipv6=0
    sysctl -qw net.ipv6.conf.$vs.disable_ipv6=0
    ip -6 addr add fd00:ffff::10/64 dev $vs nodad
    ip -6 route add 2001:db8:64::/96 via fd00:ffff::1"
for _ in $(seq 1 50); do
    ip netns exec "$sub" ip -6 addr show dev "$vs" -tentative | grep -q "fe80::" && break
    sleep 0.1
done

# The IPv4 server: a 3 MB file over HTTP, and a UDP echo.
head -c 3000000 /dev/urandom > "$work/blob"
want=$(sha256sum "$work/blob" | cut -d' ' -f1)
ip netns exec "$inet" python3 -m http.server 8080 --bind 192.0.2.10 --directory "$work" \
    > "$work/http.log" 2>&1 &
pids+=($!)
ip netns exec "$inet" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('192.0.2.10', 7000))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b'echo:' + d, a)" > "$work/udp.log" 2>&1 &
pids+=($!)
ip netns exec "$inet" tcpdump -i "$vi" -nn -U --immediate-mode -w "$work/outside.pcap" ip 2>/dev/null &
pids+=($!)
sleep 1

# Ping: the first answers may wait for cgnat to resolve the host (neighbour discovery).
ip netns exec "$sub" ping -6 -c 2 -i 0.5 -W 2 "$server6" > "$work/ping-warm.txt" 2>&1 || true
ip netns exec "$sub" ping -6 -c 3 -i 0.2 -W 2 "$server6" > "$work/ping6.txt" 2>&1 \
    || fail "ping -6 $server6: $(cat "$work/ping6.txt")"
echo "nat64-e2e: ping -6 $server6: $(grep -o '[0-9]* received' "$work/ping6.txt")"

ip netns exec "$sub" curl -6 -sS --max-time 60 -o "$work/got" "http://[$server6]:8080/blob" \
    || fail "curl over NAT64"
got=$(sha256sum "$work/got" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256 $got, want $want"
echo "nat64-e2e: curl 3000000 bytes over NAT64, sha256 matches"

answer=$(ip netns exec "$sub" python3 -c "
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
for _ in range(3):
    s.sendto(b'hello64', ('$server6', 7000))
    try:
        print(s.recv(2048).decode()); break
    except socket.timeout:
        pass") || true
[ "$answer" = "echo:hello64" ] || fail "UDP round trip: got '$answer'"
echo "nat64-e2e: UDP round trip: $answer"

# ---- step: fragments both ways (RFC 7915 4.1, 5.1.1) ----
# A 3,000-byte UDP datagram from the subscriber: its kernel cuts it into IPv6
# fragments at the link's 1500 bytes; cgnat sends them on as IPv4 fragments of one
# session, which the server's kernel reassembles. The server answers with the first
# 1,472 bytes of it reversed in one IPv4 packet of 1,500 bytes without DF
# (IP_PMTUDISC_DONT): 1,520 bytes as IPv6, so cgnat cuts it into IPv6 fragments of
# lowest_ipv6_mtu (1280), which the subscriber's kernel reassembles; the content is
# checked. (IPv4 fragments toward cgnat cannot be shown here: the af_packet PMD's
# PACKET_FANOUT socket has the kernel reassemble IPv4 fragments before cgnat sees
# them, PACKET_FANOUT_FLAG_DEFRAG; the pipeline tests cover that way.)
ip netns exec "$inet" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER: IP_PMTUDISC_DONT
s.bind(('192.0.2.10', 7001))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d[::-1][:1472], a)" > "$work/udp-frag.log" 2>&1 &
pids+=($!)
sleep 0.3
big=$(ip netns exec "$sub" python3 -c "
import os, socket
d = os.urandom(3000)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
for _ in range(3):
    s.sendto(d, ('$server6', 7001))
    try:
        r = s.recv(65535)
    except socket.timeout:
        continue
    print(len(r), 'ok' if r == d[::-1][:1472] else 'differs'); break") || true
[ "$big" = "1472 ok" ] || fail "UDP in fragments: 3,000 bytes out, 1,472 back: got '$big'"
echo "nat64-e2e: 3000 bytes out in IPv6 fragments, 1472 back cut into IPv6 fragments, content matches"
# ---- end of step: fragments ----

sleep 0.5
stop_cgnat "$cg"
python3 - "$work/summary.json" "$work/outside.pcap" <<'PY' || fail "summary or capture: $(cat "$work/summary.json")"
import json, struct, sys
s = json.load(open(sys.argv[1]))
print("nat64-e2e: translated", s["translated"]["in2out"], "out,", s["translated"]["out2in"], "in")
# Every IPv4 packet toward the server comes from the pool (pcap, Ethernet).
data = open(sys.argv[2], "rb").read()
at, srcs = 24, set()
while at + 16 <= len(data):
    caplen = struct.unpack("<I", data[at + 8:at + 12])[0]
    f = data[at + 16:at + 16 + caplen]
    at += 16 + caplen
    if len(f) >= 34 and f[12:14] == b"\x08\x00" and f[30:34] == bytes([192, 0, 2, 10]):
        srcs.add(".".join(map(str, f[26:30])))
print("nat64-e2e: sources toward 192.0.2.10:", sorted(srcs))
assert srcs, "nothing captured toward the server"
assert all(a.startswith("198.51.100.") and int(a.split(".")[3]) < 16 for a in srcs), srcs
PY
echo "NAT64 E2E PASS"
