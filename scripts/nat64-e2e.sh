#!/usr/bin/env bash
# End to end: stateful NAT64 (issue 17) with real Linux hosts. The subscriber namespace
# is IPv6-only (its IPv4 address goes once cgnat is up): fd00:ffff::10/64 on the inside
# link, the NAT64 prefix 2001:db8:64::/96 (network-specific: the IPv4 server is on a
# documentation address, which the Well-Known Prefix may not carry) routed to cgnat's
# fd00:ffff::1. The internet namespace is IPv4-only: 192.0.2.10 serves a 5 MB file over
# HTTP and echoes UDP. Steps:
# - literal: the subscriber downloads the file with curl (sha256 checked), pings the
#   server and makes a UDP round trip, all to 2001:db8:64::c000:20a;
# - DNS64: the same by name (www.nat64.test), resolved through a real unbound with its
#   dns64 module in a namespace of its own (fd00:53::53, linked to the subscriber):
#   the zone (an auth-zone, A records only) is local and everything else refused, so
#   no internet is needed; the AAAA is synthesised under the prefix;
# - 464XLAT (RFC 6877): an IPv4-only application in the subscriber namespace through a
#   CLAT, tayga on a TUN device doing stateless RFC 7915 translation of 192.0.0.1 to
#   fd00:ffff::464 (from the subscriber's /64, proxied by neighbour discovery) and of
#   IPv4 destinations into the prefix; cgnat is the PLAT: the same checks by IPv4
#   address;
# then a capture on the internet side shows only pool addresses (198.51.100.0/28) as
# sources toward the server. Last, side by side: cgnat stops and the usual Linux PLAT
# takes its place on the same veth ends (moved into a namespace of their own): tayga
# as a stateful-looking NAT64 (a dynamic pool of private IPv4 addresses, one per IPv6
# host) plus nftables snat to 198.51.100.1, with the same namespaces, resolver and
# CLAT, and the same checks. What differs is in docs/nat64.md. Before cgnat stops, the
# ALGs over NAT64 (a step of their own): FTP (RFC 6384) with curl to pyftpdlib, EPSV
# and EPRT, and TFTP with tftp-hpa to tftpd-hpa; UDP in fragments (3,000 bytes out,
# 1,472 back cut to 1280). Needs root.
# Usage: nat64-e2e.sh CGNAT_BINARY WORKDIR
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
bin=$(realpath "$1")
work=$(realpath -m "$2")
mkdir -p "$work"
bed_init c64
fail() { bed_fail6 "NAT64 E2E" "$*"; }
server6=2001:db8:64::c000:20a
# (DNS64 and 464XLAT setup) The resolver's namespace and its link to the subscriber
# (vd in the subscriber, vdn in dns), the Linux PLAT's namespace (step "Linux PLAT"),
# and the subscriber's resolv.conf (ip netns exec binds /etc/netns/NAME/ over /etc):
# all taken down on exit with the rest of the bed.
# (Routed subscriber setup) A host of a delegated prefix behind the subscriber
# namespace, which routes for it (step "routed subscriber"): its namespace and link.
dns=c64dns$tag plat=c64plat$tag vd=c64vd$tag vdn=c64vdn$tag
routed=c64rt$tag vr=c64vr$tag vrn=c64vrn$tag
trap 'bed_teardown "$sub" "$inet" "$dns" "$plat" "$routed" -- "$vsn" "$vin"; rm -rf "/etc/netns/$sub"' EXIT

bed_up "$sub" "$inet" "$vs" "$vsn" "$vi" "$vin"
bed_inside='ipv4 = "100.64.0.1/10"
ipv6 = ["fd00:ffff::1/64"]
gateway6 = "fd00:ffff::10"'
write_cgnat_config "$work/cgnat.toml" nat64 "$vsn" "$vin" '
[nat64]
prefix = "2001:db8:64::/96"

[alg]
tftp = { enabled = true }'
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

# The IPv4 server: a 5 MB file over HTTP, and a UDP echo.
size=5242880
head -c $size /dev/urandom > "$work/blob"
want=$(sha256sum "$work/blob" | cut -d' ' -f1)
serve_http "$inet" 192.0.2.10 8080 "$work" "$work/http.log" || fail "the HTTP server did not start"
ip netns exec "$inet" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('192.0.2.10', 7000))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b'echo:' + d, a)" > "$work/udp.log" 2>&1 &
pids+=($!)

# (DNS64 setup) unbound with its dns64 module in its own namespace, linked to the
# subscriber: the zone nat64.test (A records only) is an auth-zone the iterator reads
# (so dns64 synthesises from its answers, which it would not for local-data); every
# other name is refused, so nothing is asked of the internet.
ip netns add "$dns"
ip link add "$vd" type veth peer name "$vdn"
ip link set "$vd" netns "$sub"
ip link set "$vdn" netns "$dns"
ip netns exec "$dns" sh -c "
    ip link set lo up
    sysctl -qw net.ipv6.conf.all.disable_ipv6=0
    sysctl -qw net.ipv6.conf.$vdn.disable_ipv6=0
    ip -6 addr add fd00:53::53/64 dev $vdn nodad
    ip link set $vdn up"
ip netns exec "$sub" sh -c "
    sysctl -qw net.ipv6.conf.$vd.disable_ipv6=0
    ip -6 addr add fd00:53::2/64 dev $vd nodad
    ip link set $vd up"
cat > "$work/nat64.test.zone" <<'ZONE'
$ORIGIN nat64.test.
$TTL 60
@    IN SOA ns hostmaster 1 3600 600 86400 60
@    IN NS  ns
ns   IN A   192.0.2.53
www  IN A   192.0.2.10
ZONE
cat > "$work/unbound.conf" <<CONF
server:
    username: ""
    chroot: ""
    directory: "$work"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    interface: fd00:53::53
    do-ip4: no
    access-control: fd00:53::/64 allow
    module-config: "dns64 iterator"
    dns64-prefix: 2001:db8:64::/96
    local-zone: "test." nodefault
    local-zone: "." refuse
    local-zone: "nat64.test." transparent
auth-zone:
    name: "nat64.test."
    zonefile: "$work/nat64.test.zone"
    for-upstream: yes
    for-downstream: no
    fallback-enabled: no
CONF
unbound-checkconf "$work/unbound.conf" > "$work/unbound-check.txt" 2>&1 \
    || fail "unbound refused its config: $(cat "$work/unbound-check.txt")"
ip netns exec "$dns" unbound -d -c "$work/unbound.conf" > "$work/unbound.log" 2>&1 &
pids+=($!)
mkdir -p "/etc/netns/$sub"
echo "nameserver fd00:53::53" > "/etc/netns/$sub/resolv.conf"

ip netns exec "$inet" tcpdump -i "$vi" -nn -U --immediate-mode -w "$work/outside.pcap" ip 2>/dev/null &
capture=$!
pids+=("$capture")
sleep 1

# [ns=NAMESPACE] reach LABEL FAMILY HOST: from the subscriber (or NAMESPACE), to HOST (an address or a name) over
# IPv FAMILY: ping (the first answers may wait for the PLAT to resolve the host:
# neighbour discovery, so a warm-up first), curl of the 5 MB file (sha256 checked),
# and a UDP round trip to the echo on port 7000.
reach() {
    local label=$1 fam=$2 host=$3 url answer got ns=${ns:-$sub}
    ip netns exec "$ns" ping -"$fam" -c 2 -i 0.5 -W 2 "$host" > "$work/ping-warm-$label.txt" 2>&1 || true
    ip netns exec "$ns" ping -"$fam" -c 3 -i 0.2 -W 2 "$host" > "$work/ping-$label.txt" 2>&1 \
        || fail "$label: ping -$fam $host: $(cat "$work/ping-$label.txt")"
    echo "nat64-e2e: $label: ping -$fam $host: $(grep -o '[0-9]* received' "$work/ping-$label.txt")"
    url=$host
    [ "$fam" = 6 ] && [ "${host#*:}" != "$host" ] && url="[$host]"
    rm -f "$work/got"
    ip netns exec "$ns" curl -"$fam" -sS --max-time 60 -o "$work/got" -w '%{time_total}' "http://$url:8080/blob" \
        > "$work/curl-$label.txt" 2>&1 || fail "$label: curl -$fam http://$url:8080/blob: $(cat "$work/curl-$label.txt")"
    got=$(sha256sum "$work/got" | cut -d' ' -f1)
    [ "$got" = "$want" ] || fail "$label: sha256 $got, want $want"
    echo "nat64-e2e: $label: curl -$fam of $size bytes from http://$url:8080 in $(cat "$work/curl-$label.txt") s, sha256 matches"
    answer=$(ip netns exec "$ns" python3 -c "
import socket
fam = socket.AF_INET6 if '$fam' == '6' else socket.AF_INET
to = socket.getaddrinfo('$host', 7000, fam, socket.SOCK_DGRAM)[0][4]
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(2)
for _ in range(3):
    s.sendto(b'hello64', to)
    try:
        print(s.recv(2048).decode(), 'via', to[0]); break
    except socket.timeout:
        pass") || true
    [ "${answer%% *}" = "echo:hello64" ] || fail "$label: UDP round trip to $host: got '$answer'"
    echo "nat64-e2e: $label: UDP round trip: $answer"
}

# Literal: the server's address under the prefix.
reach literal 6 "$server6"

# ---- step DNS64 (unbound's dns64 module) ----
# The name has only an A record: the subscriber's resolver (glibc, through unbound)
# gets an AAAA synthesised under the prefix, and only that; then the same checks by
# name.
dns64_step() {
    local resolved
    resolved=$(ip netns exec "$sub" getent ahosts www.nat64.test | awk '{print $1}' | sort -u | tr '\n' ' ')
    [ "$resolved" = "$server6 " ] || fail "DNS64: www.nat64.test resolved to '$resolved', want $server6 ($(cat "$work/unbound.log"))"
    echo "nat64-e2e: DNS64: www.nat64.test is $resolved(synthesised from A 192.0.2.10)"
    reach dns64 6 www.nat64.test
}
dns64_step
# ---- end of step DNS64 ----

# ---- step 464XLAT (tayga as the CLAT, cgnat as the PLAT) ----
# (CLAT setup) tayga in the subscriber namespace on the TUN device clat: the
# application's 192.0.0.1 (RFC 7335's range) is fd00:ffff::464 on the IPv6 side, an
# address of the subscriber's /64 that the namespace routes to clat and answers
# neighbour solicitations for (proxy NDP, which needs forwarding on); every other IPv4
# address is written into the prefix. IPv4 to anywhere goes through clat, on a route
# whose MTU (1480) leaves room for the 20 bytes IPv6 adds; clat itself keeps 1500 for
# the IPv6 packets forwarded into it (with 1480 there, every full-sized answer would
# get the namespace's ICMPv6 packet too big instead).
clat_up() {
    mkdir -p "$work/clat"
    cat > "$work/clat/tayga.conf" <<CONF
tun-device clat
ipv4-addr 192.0.0.2
prefix 2001:db8:64::/96
map 192.0.0.1 fd00:ffff::464
data-dir $work/clat
CONF
    ip netns exec "$sub" tayga -c "$work/clat/tayga.conf" --mktun > "$work/clat/mktun.log" 2>&1 \
        || fail "tayga --mktun: $(cat "$work/clat/mktun.log")"
    ip netns exec "$sub" sh -c "
        sysctl -qw net.ipv6.conf.all.forwarding=1
        sysctl -qw net.ipv6.conf.all.proxy_ndp=1
        sysctl -qw net.ipv6.neigh.$vs.proxy_delay=0
        ip -6 neigh add proxy fd00:ffff::464 dev $vs
        ip link set clat up
        ip addr add 192.0.0.1/29 dev clat
        ip route add default dev clat src 192.0.0.1 mtu 1480
        ip -6 route add fd00:ffff::464/128 dev clat" || fail "CLAT: the namespace's setup"
    ip netns exec "$sub" tayga -c "$work/clat/tayga.conf" -d > "$work/clat/tayga.log" 2>&1 &
    pids+=($!)
    sleep 0.5
    kill -0 "${pids[-1]}" 2>/dev/null || fail "CLAT: tayga exited: $(cat "$work/clat/tayga.log")"
}
clat_up
route=$(ip netns exec "$sub" ip route get 192.0.2.10)
case $route in *" dev clat "*) ;; *) fail "CLAT: IPv4 does not go through clat: $route" ;; esac
reach 464xlat 4 192.0.2.10
# Path MTU discovery through the CLAT: with the TUN at 1480 (and the route's MTU
# lifted to it), every full-sized IPv6 answer from the PLAT is too big for the CLAT,
# and the namespace sends an ICMPv6 packet too big, which quotes only the first 1232
# bytes of the packet (RFC 4443 2.4(c)). cgnat must translate it to fragmentation
# needed for the server (RFC 7915 5.2), which then sends smaller packets: the
# download completes.
ip netns exec "$sub" sh -c "
    ip link set clat mtu 1480
    ip route replace default dev clat src 192.0.0.1" || fail "CLAT: MTU 1480"
ip netns exec "$inet" ip route flush cache 2>/dev/null || true
reach 464xlat-pmtud 4 192.0.2.10
# The server learned the smaller path MTU toward the pool address (1480 less 20).
pmtu=$(ip netns exec "$inet" ip -4 route show cache | grep -o 'mtu [0-9]*' | sort -u | tr '\n' ' ')
case $pmtu in *"mtu 1460"*) ;; *) fail "PMTUD through the CLAT: the server's route cache: '$pmtu'" ;; esac
echo "nat64-e2e: 464xlat: path MTU discovery through a 1480-byte CLAT (server's path MTU: $pmtu): 5 MB, sha256 matches"
ip netns exec "$sub" sh -c "
    ip link set clat mtu 1500
    ip route replace default dev clat src 192.0.0.1 mtu 1480" || fail "CLAT: MTU back"
# ---- end of step 464XLAT ----

# ---- ALGs over NAT64 (RFC 6384 FTP, TFTP) ---------------------------------------------
# An IPv4-only FTP server (pyftpdlib) and an IPv6-only client (curl): EPSV (cgnat sends
# PASV, the 227 comes back as a 229), --disable-epsv (curl keeps EPSV on IPv6), and
# EPRT |2| (--ftp-port -: cgnat sends PORT with the pool address, the server's data
# connection reaches the client); 5 MB each, sha256 checked. Then tftp-hpa over IPv6
# from tftpd-hpa on IPv4 (its answers come from a new port).
mkdir -p "$work/ftp" "$work/tftp"
head -c 5242880 /dev/urandom > "$work/ftp/blob5.bin"
want5=$(sha256sum "$work/ftp/blob5.bin" | cut -d' ' -f1)
ip netns exec "$inet" /usr/bin/python3 -m pyftpdlib -i 192.0.2.10 -p 21 -d "$work/ftp" \
    > "$work/ftp.log" 2>&1 &
pids+=($!)
head -c 262144 /dev/urandom > "$work/tftp/t.bin"
ip netns exec "$inet" /usr/sbin/in.tftpd -L -a 192.0.2.10:69 -s "$work/tftp" > "$work/tftpd.log" 2>&1 &
pids+=($!)
sleep 1
ftp64_get() { # mode, curl options...
    local mode=$1; shift
    ip netns exec "$sub" curl -6 -v -sS --max-time 60 "$@" -o "$work/got-ftp-$mode.bin" \
        "ftp://[$server6]/blob5.bin" > "$work/curl-ftp-$mode.log" 2>&1 \
        || fail "FTP $mode over NAT64: $(cat "$work/curl-ftp-$mode.log"; tail -5 "$work/ftp.log")"
    [ "$(sha256sum "$work/got-ftp-$mode.bin" | cut -d' ' -f1)" = "$want5" ] \
        || fail "FTP $mode over NAT64: sha256 mismatch"
    echo "nat64-e2e: ftp $mode over NAT64 ($(grep -o '^> \(EPSV\|PASV\|EPRT\|PORT\).*' "$work/curl-ftp-$mode.log" | tr -d '\r' | tr '\n' ' ')), 5 MB, sha256 matches"
}
ftp64_get epsv --ftp-pasv
ftp64_get pasv --ftp-pasv --disable-epsv
ftp64_get eprt --ftp-port -
(cd "$work" && ip netns exec "$sub" timeout 30 tftp -6 "$server6" -m binary -c get t.bin got-tftp.bin) \
    || fail "TFTP over NAT64"
[ "$(sha256sum "$work/got-tftp.bin" | cut -d' ' -f1)" = "$(sha256sum "$work/tftp/t.bin" | cut -d' ' -f1)" ] \
    || fail "TFTP over NAT64: sha256 mismatch"
echo "nat64-e2e: tftp over NAT64, 256 KB, sha256 matches"
# The EPRT's data connection and the TFTP answer came in by expectations; the two
# EPSVs went as PASV and their 227s came back as 229s, the EPRT went as PORT (five
# rewrites); nothing was left untranslated.
curl -s --max-time 5 "http://127.0.0.1:$metrics_port/metrics" > "$work/metrics-alg64.txt" \
    || fail "scraping /metrics"
python3 - "$work/metrics-alg64.txt" <<'PY' || fail "ALG counters: $(grep -i 'alg' "$work/metrics-alg64.txt")"
import sys
m = {}
for line in open(sys.argv[1]):
    if line and not line.startswith("#"):
        k, _, v = line.rpartition(" ")
        m[k] = float(v)
matched = m['cgnat_alg_expectations_total{event="matched"}']
rewritten = m['cgnat_alg_events_total{alg="ftp",event="rewritten"}']
print("nat64-e2e: ftp rewrites", int(rewritten), "expectations matched", int(matched), "refused lines",
      int(m["cgnat_alg_nat64_ftp_refused_total"]), "skipped", int(m["cgnat_alg_nat64_skipped_total"]))
assert matched >= 2, matched
assert rewritten >= 5, rewritten
assert m["cgnat_alg_nat64_ftp_refused_total"] == 0
assert m["cgnat_alg_nat64_skipped_total"] == 0
PY
# ---- end of the ALGs over NAT64 --------------------------------------------------------

# ---- step routed subscriber (ports[].gateway6) ----
# A host of a delegated prefix (2001:db8:100:1::/64) sits behind the subscriber
# namespace, which routes for it (IPv6 forwarding is on for the CLAT already) and does
# not answer neighbour discovery on its behalf. cgnat's gateway6 is the subscriber's
# address on the inside link: the answers to the routed host go there. Without it
# cgnat would solicit the routed host itself on the inside link, nobody would answer,
# and every answer would be dropped (nat64_neighbor_unresolved).
routed_step() {
    local ans
    ip netns add "$routed"
    ip link add "$vr" type veth peer name "$vrn"
    ip link set "$vr" netns "$sub"
    ip link set "$vrn" netns "$routed"
    ip netns exec "$sub" sh -c "
        sysctl -qw net.ipv6.conf.all.forwarding=1
        sysctl -qw net.ipv6.conf.$vr.disable_ipv6=0
        ip -6 addr add 2001:db8:100:1::1/64 dev $vr nodad
        ip link set $vr up" || fail "routed: the router's side"
    ip netns exec "$routed" sh -c "
        ip link set lo up
        sysctl -qw net.ipv6.conf.all.disable_ipv6=0
        sysctl -qw net.ipv6.conf.$vrn.disable_ipv6=0
        ip -6 addr add 2001:db8:100:1::10/64 dev $vrn nodad
        ip link set $vrn up
        ip -6 route add default via 2001:db8:100:1::1" || fail "routed: the host's side"
    ns=$routed reach routed 6 "$server6"
    ans=$(curl -s --max-time 5 "http://127.0.0.1:$api_port/subscribers/2001:db8:100:1::10" || true)
    case $ans in *2001:db8:100*) ;; *) fail "routed: cgnat does not list the routed host's subscriber: $ans" ;; esac
}
routed_step

# Hairpinning (RFC 6146 3.8), as two peers behind the same NAT64 find each other: the
# subscriber (A, port 7200) and the routed host (B, port 7100) each get a mapping by
# sending to the server; the bed's filtering is address-and-port-dependent, so B first
# sends to A's mapping (its pool address under the prefix and its port; dropped at A's
# filter, but it opens B's side), then A sends to B's mapping: the datagram reaches B's
# socket from A's pool address and port under the prefix.
hairpin_step() {
    local a_map b_map got mapped_of
    rm -f "$work/hp-a" "$work/hp-b" "$work/hp-punched"
    # hp-peer.py ADDR PORT ROLE: opens a mapping by a datagram to the server's echo,
    # then, as B, punches toward A's mapping and waits for A's datagram (printing its
    # source), or, as A, sends to B's mapping once B has punched.
    cat > "$work/hp-peer.py" <<PY
import ipaddress, os, socket, sys, time
addr, port, role = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def wait(f):
    while not os.path.exists(f):
        time.sleep(0.05)
def under(f):
    wait(f)
    a, p = open(f).read().strip().rsplit(':', 1)
    v6 = int(ipaddress.IPv6Address('2001:db8:64::')) | int(ipaddress.IPv4Address(a))
    return (str(ipaddress.IPv6Address(v6)), int(p))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((addr, port))
s.settimeout(15)
s.sendto(b'open', ('$server6', 7000))
s.recvfrom(2048)
if role == 'B':
    s.sendto(b'punch', under('$work/hp-a'))
    open('$work/hp-punched', 'w').close()
    while True:
        d, a = s.recvfrom(2048)
        if d == b'hairpin':
            print(a[0], a[1], d.decode())
            break
else:
    to = under('$work/hp-b')
    wait('$work/hp-punched')
    for _ in range(3):
        s.sendto(b'hairpin', to)
        time.sleep(0.1)
PY
    ip netns exec "$routed" python3 "$work/hp-peer.py" 2001:db8:100:1::10 7100 B > "$work/hairpin-b.txt" 2>&1 &
    local b=$!
    pids+=("$b")
    ip netns exec "$sub" python3 "$work/hp-peer.py" fd00:ffff::10 7200 A > "$work/hairpin-a.txt" 2>&1 &
    local a=$!
    pids+=("$a")
    # The outside endpoint of the session from inside port PORT to the server's echo.
    mapped_of() {
        "$bin" show sessions --api "127.0.0.1:$api_port" --remote 192.0.2.10:7000 --json 2>/dev/null \
            | python3 -c 'import json,sys
for s in json.load(sys.stdin)["sessions"]:
    if s["inside"].endswith(":'"$1"'"): print(s["outside"]); break' 2>/dev/null || true
    }
    for _ in $(seq 1 100); do
        a_map=$(mapped_of 7200)
        b_map=$(mapped_of 7100)
        [ -n "$a_map" ] && [ -n "$b_map" ] && break
        sleep 0.1
    done
    [ -n "$a_map" ] && [ -n "$b_map" ] || fail "hairpin: the peers' mappings are not listed ('$a_map', '$b_map')"
    # Renamed into place: a peer never reads a half-written file.
    echo "$a_map" > "$work/hp-a.tmp" && mv "$work/hp-a.tmp" "$work/hp-a"
    echo "$b_map" > "$work/hp-b.tmp" && mv "$work/hp-b.tmp" "$work/hp-b"
    wait "$b" || fail "hairpin: nothing reached the routed host: $(cat "$work/hairpin-b.txt" "$work/hairpin-a.txt")"
    wait "$a" || true
    got=$(cat "$work/hairpin-b.txt")
    # From A's pool address (under the prefix) and port.
    local want_src
    want_src=$(python3 -c "import ipaddress; a, p = '$a_map'.rsplit(':', 1); print(ipaddress.IPv6Address(int(ipaddress.IPv6Address('2001:db8:64::')) | int(ipaddress.IPv4Address(a))), p, 'hairpin')")
    [ "$got" = "$want_src" ] || fail "hairpin: got '$got', want '$want_src'"
    echo "nat64-e2e: hairpin: $a_map (the subscriber's mapping) reached $b_map (the routed host's): '$got'"
}
hairpin_step
# ---- end of step routed subscriber ----

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
kill "$capture"
wait "$capture" 2>/dev/null || true
# sources PCAP ADDRS...: the IPv4 sources of the packets toward 192.0.2.10 in PCAP
# (Ethernet) must all be among ADDRS (a pool address); prints them and the source
# ports seen.
sources() {
    python3 - "$@" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
allowed = set(sys.argv[2:])
at, srcs, ports = 24, set(), set()
while at + 16 <= len(data):
    caplen = struct.unpack("<I", data[at + 8:at + 12])[0]
    f = data[at + 16:at + 16 + caplen]
    at += 16 + caplen
    if len(f) >= 34 and f[12:14] == b"\x08\x00" and f[30:34] == bytes([192, 0, 2, 10]):
        srcs.add(".".join(map(str, f[26:30])))
        ihl = (f[14] & 15) * 4
        if f[23] in (6, 17) and len(f) >= 14 + ihl + 2:
            ports.add(struct.unpack(">H", f[14 + ihl:16 + ihl])[0])
print("sources toward 192.0.2.10:", sorted(srcs), "source ports:", sorted(ports))
assert srcs, "nothing captured toward the server"
assert srcs <= allowed, "sources %s, allowed %s" % (sorted(srcs), sorted(allowed))
PY
}
python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
print('nat64-e2e: translated', s['translated']['in2out'], 'out,', s['translated']['out2in'], 'in')" \
    "$work/summary.json" || fail "summary: $(cat "$work/summary.json")"
pool=$(for i in $(seq 0 15); do echo "198.51.100.$i"; done)
seen=$(sources "$work/outside.pcap" $pool) || fail "the capture on the internet side: $seen"
echo "nat64-e2e: cgnat: $seen"

# ---- step Linux PLAT (side by side: tayga + nftables instead of cgnat) ----
# cgnat's two veth ends move into a router namespace, which takes cgnat's addresses
# (fd00:ffff::1, 203.0.113.1): tayga on the TUN device nat64 translates the prefix
# to and from a dynamic pool of private IPv4 addresses (192.168.255.0/24, one per
# IPv6 host, as it does), and nftables snat takes those to 198.51.100.1, with a
# forward filter as strict as cgnat's (only established or related from outside).
# The subscriber, its resolver and its CLAT stay as they are: the same checks.
linux_plat_step() {
    ip netns add "$plat"
    ip link set "$vsn" netns "$plat"
    ip link set "$vin" netns "$plat"
    mkdir -p "$work/plat"
    cat > "$work/plat/tayga.conf" <<CONF
tun-device nat64
ipv4-addr 192.168.255.1
prefix 2001:db8:64::/96
dynamic-pool 192.168.255.0/24
data-dir $work/plat
CONF
    ip netns exec "$plat" tayga -c "$work/plat/tayga.conf" --mktun > "$work/plat/mktun.log" 2>&1 \
        || fail "Linux PLAT: tayga --mktun: $(cat "$work/plat/mktun.log")"
    ip netns exec "$plat" sh -c "
        ip link set lo up
        sysctl -qw net.ipv6.conf.all.disable_ipv6=0
        sysctl -qw net.ipv6.conf.$vsn.disable_ipv6=0
        sysctl -qw net.ipv6.conf.all.forwarding=1
        sysctl -qw net.ipv4.ip_forward=1
        ip -6 addr add fd00:ffff::1/64 dev $vsn nodad
        ip addr add 203.0.113.1/24 dev $vin
        ip link set $vsn up
        ip link set $vin up
        ip link set nat64 up
        ip addr add 192.168.254.1/32 dev nat64
        ip -6 addr add fd00:fffe::1/128 dev nat64
        ip route add 192.168.255.0/24 dev nat64
        ip -6 route add 2001:db8:64::/96 dev nat64
        ip route add default via 203.0.113.254" || fail "Linux PLAT: the namespace's setup"
    cat > "$work/plat/nat.nft" <<NFT
table ip plat {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "nat64" oifname "$vin" ct state new accept
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "$vin" ip saddr 192.168.255.0/24 snat to 198.51.100.1
    }
}
NFT
    ip netns exec "$plat" nft -f "$work/plat/nat.nft" || fail "Linux PLAT: nft refused the ruleset"
    ip netns exec "$plat" tayga -c "$work/plat/tayga.conf" -d > "$work/plat/tayga.log" 2>&1 &
    local plat_tayga=$!
    pids+=("$plat_tayga")
    sleep 0.5
    kill -0 "$plat_tayga" 2>/dev/null || fail "Linux PLAT: tayga exited: $(cat "$work/plat/tayga.log")"
    ip netns exec "$sub" ip -6 neigh flush dev "$vs"
    ip netns exec "$inet" ip neigh flush dev "$vi"
    ip netns exec "$inet" tcpdump -i "$vi" -nn -U --immediate-mode -w "$work/outside-linux.pcap" ip 2>/dev/null &
    pids+=($!)
    sleep 1
    reach linux-literal 6 "$server6"
    reach linux-dns64 6 www.nat64.test
    reach linux-464xlat 4 192.0.2.10
    sleep 0.5
    seen=$(sources "$work/outside-linux.pcap" 198.51.100.1) || fail "Linux PLAT: the capture on the internet side: $seen"
    echo "nat64-e2e: Linux PLAT: $seen"
    # One private IPv4 address per IPv6 host, then all behind 198.51.100.1: what tayga
    # logged (its output is written out when it ends).
    kill "$plat_tayga"
    wait "$plat_tayga" 2>/dev/null || true
    sed -n 's/^assigned new pool address/nat64-e2e: Linux PLAT: tayga assigned/p' "$work/plat/tayga.log"
}
linux_plat_step
# ---- end of step Linux PLAT ----
echo "NAT64 E2E PASS"
