#!/usr/bin/env bash
# End to end: IPv6 on cgnat's inside port (issue 17) with a real Linux host. cgnat's
# inside port has fd00:ffff::1/64 (and its link-local address, from its MAC); the
# subscriber namespace turns IPv6 on on its veth with fd00:ffff::10/64. Linux resolves
# cgnat by neighbour discovery (its entry for cgnat names cgnat's MAC and says
# "router"), pings its global and its link-local address, and an address of cgnat's
# put on the subscriber's interface fails duplicate address detection (cgnat defends
# it). No neighbour discovery message of Linux's is refused (nd_malformed stays 0).
# Needs root. Usage: ipv6-inside-e2e.sh CGNAT_BINARY WORKDIR
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
bin=$(realpath "$1")
work=$(realpath -m "$2")
mkdir -p "$work"
bed_init c6i
fail() { bed_fail6 "IPV6 INSIDE E2E" "$*"; }

bed_up "$sub" "$inet" "$vs" "$vsn" "$vi" "$vin"
bed_inside='ipv4 = "100.64.0.1/10"
ipv6 = ["fd00:ffff::1/64"]'
write_cgnat_config "$work/cgnat.toml" ipv6 "$vsn" "$vin" ''
"$bin" check -c "$work/cgnat.toml" > "$work/check.txt" || fail "config refused"
start_cgnat "$bin" "$work/cgnat.toml"
wait_up "$cg" || fail "cgnat did not answer ping on 100.64.0.1 (or exited)"
echo "ipv6-inside-e2e: appliance up"

# cgnat's port has the MAC of the root end of the veth pair; its link-local address
# is that MAC's modified EUI-64.
mac=$(cat "/sys/class/net/$vsn/address")
ll=$(python3 -c "
m = [int(x, 16) for x in '$mac'.split(':')]
m[0] ^= 2
w = [m[0] << 8 | m[1], m[2] << 8 | 0xff, 0xfe00 | m[3], m[4] << 8 | m[5]]
print('fe80::' + ':'.join('%x' % x for x in w))")

# What the subscriber's interface carries over IPv6, for the record.
ip netns exec "$sub" tcpdump -i "$vs" -nn -U --immediate-mode -w "$work/inside6.pcap" ip6 2>/dev/null &
pids+=($!)
sleep 0.5
ip netns exec "$sub" sh -c "
    sysctl -qw net.ipv6.conf.all.disable_ipv6=0
    sysctl -qw net.ipv6.conf.$vs.disable_ipv6=0
    ip -6 addr add fd00:ffff::10/64 dev $vs"
# Both the subscriber's addresses past duplicate address detection (a tentative one
# is not used as a source).
up=
for _ in $(seq 1 100); do
    up=$(ip netns exec "$sub" ip -6 addr show dev "$vs" -tentative)
    case "$up" in *"fd00:ffff::10/64"*"fe80::"*|*"fe80::"*"fd00:ffff::10/64"*) break ;; esac
    sleep 0.1
done
case "$up" in *"fd00:ffff::10/64"*) ;; *) fail "the subscriber's address did not come up" ;; esac
case "$up" in *"fe80::"*) ;; *) fail "the subscriber's link-local address did not come up" ;; esac

ip netns exec "$sub" ping -6 -c 3 -i 0.2 -W 2 fd00:ffff::1 > "$work/ping6.txt" 2>&1 \
    || fail "ping -6 fd00:ffff::1: $(cat "$work/ping6.txt")"
echo "ipv6-inside-e2e: ping -6 fd00:ffff::1: $(grep -o '[0-9]* received' "$work/ping6.txt")"
neigh=$(ip netns exec "$sub" ip -6 neigh show fd00:ffff::1 dev "$vs")
echo "ipv6-inside-e2e: neighbour entry: $neigh"
case "$neigh" in *"lladdr $mac router"*) ;; *) fail "neighbour entry for cgnat: $neigh (want lladdr $mac router)" ;; esac

ip netns exec "$sub" ping -6 -c 2 -i 0.2 -W 2 "$ll%$vs" > "$work/ping6-ll.txt" 2>&1 \
    || fail "ping -6 $ll: $(cat "$work/ping6-ll.txt")"
echo "ipv6-inside-e2e: ping -6 $ll (link-local): $(grep -o '[0-9]* received' "$work/ping6-ll.txt")"

# cgnat's own address on the subscriber's interface: duplicate address detection fails.
ip netns exec "$sub" ip -6 addr add fd00:ffff::1/64 dev "$vs"
dad=
for _ in $(seq 1 50); do
    dad=$(ip netns exec "$sub" ip -6 addr show dev "$vs" | grep "fd00:ffff::1/64" || true)
    case "$dad" in *dadfailed*) break ;; esac
    sleep 0.1
done
case "$dad" in *dadfailed*) ;; *) fail "DAD of cgnat's address did not fail: $dad" ;; esac
echo "ipv6-inside-e2e: DAD of fd00:ffff::1 on the subscriber: dadfailed (cgnat defends it)"
ip netns exec "$sub" ip -6 addr del fd00:ffff::1/64 dev "$vs"

stop_cgnat "$cg"
python3 - "$work/summary.json" <<'PY' || fail "summary: $(cat "$work/summary.json")"
import json, sys
s = json.load(open(sys.argv[1]))
d = s["dropped"]
print("ipv6-inside-e2e: dropped " + ", ".join(
    f"{k} {d.get(k, 0)}" for k in ("nd_malformed", "nd_consumed", "ipv6_multicast", "ipv6_not_translated")))
assert d.get("nd_malformed", 0) == 0, "a neighbour discovery message of Linux's was refused"
PY
echo "IPV6 INSIDE E2E PASS"
