#!/usr/bin/env bash
# End-to-end bed for VLANs: the subscriber side's veth is a trunk carrying VLANs
# 802.1Q 100 and 200 and QinQ 802.1ad 10 / 802.1Q 300, one subscriber namespace on
# each; the internet side's veth carries VLAN 7. Each subscriber pings the server and
# downloads 1 MB by HTTP (sha256 checked) through a running `cgnat run`; a capture on
# the internet side's trunk must show only pool sources, all tagged 7; the final
# summary's per-VLAN counters and /metrics' vlan labels are checked. Needs root.
# Usage: netns-vlan-e2e.sh CGNAT_BINARY WORKDIR
#
# The subscribers' VLAN interfaces are Linux VLAN interfaces where the kernel has
# 802.1Q (`ip link add link vs name vs.100 type vlan id 100`); where it has not (no
# 8021q module), scripts/vlan-switch.py joins a veth per subscriber to the trunk as
# an access port of that VLAN, pushing and stripping the tags in user space.
#
#   sub100 100.64.100.2/24 ┐                                   internet ns
#   sub200 100.64.200.2/24 ├ vs <veth> vsn [inside] [outside] vin <veth> vi ── VLAN 7: 203.0.113.254/24
#   subq   100.64.30.2/24  ┘    (cgnat, root ns)                             lo: 192.0.2.10 (server)
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
bin=$(realpath "$1")
work=$(realpath -m "$2")
mkdir -p "$work"
tag=$$
trunk=cgvt$tag inet=cgvinet$tag
vs=cgvvs$tag vsn=cgvvsn$tag vi=cgvvi$tag vin=cgvvin$tag
subs=(100:100.64.100 200:100.64.200 q:100.64.30)
pids=()

cleanup() {
    local s ns=()
    for s in "${subs[@]}"; do ns+=("cgvs${s%%:*}$tag"); done
    bed_teardown "${ns[@]}" "$trunk" "$inet" -- "$vsn" "$vin"
}
trap cleanup EXIT
fail() {
    echo "E2E FAIL: $*" >&2
    echo "--- cgnat counters"; curl -s --max-time 3 "http://127.0.0.1:${api_port:-9470}/counters" >&2 || true
    echo "--- cgnat log"; cat "$work/cgnat.log" >&2 || true
    exit 1
}
# Tags stay in the frames (no VLAN offload) so that the af_packet port sees them.
offload() {
    ethtool -K "$1" tx off rx off tso off gso off gro off rxvlan off txvlan off \
        rx-vlan-stag-hw-parse off tx-vlan-stag-hw-insert off >/dev/null 2>&1 || true
}

ip netns add "$trunk"
ip netns add "$inet"
ip link add "$vs" type veth peer name "$vsn"
ip link add "$vi" type veth peer name "$vin"
ip link set "$vs" netns "$trunk"
ip link set "$vi" netns "$inet"
# The trunks carry full-size frames with two tags (QinQ): a "baby giant" MTU.
ip link set "$vsn" mtu 1508
ip -n "$trunk" link set "$vs" mtu 1508
for ifc in "$vsn" "$vin"; do
    sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" || true
    offload "$ifc"
    ip link set "$ifc" up
done
kernel_vlans=0
if [ -z "${E2E_USER_VLANS:-}" ] && ip -n "$trunk" link add link "$vs" name "$vs.1" type vlan id 1 2>/dev/null; then
    ip -n "$trunk" link del "$vs.1"
    kernel_vlans=1
fi
ip -n "$trunk" link set "$vs" up
ip netns exec "$trunk" bash -c "$(declare -f offload); offload $vs"
switch_ports=()
for s in "${subs[@]}"; do
    id=${s%%:*} net=${s#*:} ns=cgvs${s%%:*}$tag
    ip netns add "$ns"
    if [ $kernel_vlans = 1 ]; then
        # Linux VLAN interfaces on the trunk, each moved into its subscriber's namespace.
        if [ "$id" = q ]; then
            ip -n "$trunk" link add link "$vs" name "$vs.10" type vlan protocol 802.1ad id 10
            ip -n "$trunk" link set "$vs.10" up
            ip -n "$trunk" link add link "$vs.10" name "$vs.q" type vlan id 300
        else
            ip -n "$trunk" link add link "$vs" name "$vs.$id" type vlan id "$id"
        fi
        ip -n "$trunk" link set "$vs.$id" netns "$ns"
        ip -n "$ns" link set "$vs.$id" name sub0
    else
        # An access port of the user-space switch per subscriber.
        ip link add "cgva$id$tag" type veth peer name sub0 netns "$ns"
        ip link set "cgva$id$tag" netns "$trunk"
        ip -n "$trunk" link set "cgva$id$tag" up
        ip netns exec "$trunk" bash -c "$(declare -f offload); offload cgva$id$tag"
        tags=$id; [ "$id" = q ] && tags=10.300
        switch_ports+=("cgva$id$tag=$tags")
    fi
    ip netns exec "$ns" sh -c "
        sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip link set lo up
        ip addr add $net.2/24 dev sub0
        ip link set sub0 up
        ip route add default via $net.1"
    ip netns exec "$ns" bash -c "$(declare -f offload); offload sub0"
done
ip netns exec "$inet" sh -c "
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip link set lo up
    ip addr add 192.0.2.10/32 dev lo
    ip link set $vi up"
ip netns exec "$inet" bash -c "$(declare -f offload); offload $vi"
if [ $kernel_vlans = 1 ]; then
    ip -n "$inet" link add link "$vi" name up7 type vlan id 7
else
    ip -n "$inet" link add up7 type veth peer name cgvacc7
    ip -n "$inet" link set cgvacc7 up
    ip netns exec "$inet" bash -c "$(declare -f offload); offload cgvacc7; offload up7"
fi
ip netns exec "$inet" sh -c "
    ip addr add 203.0.113.254/24 dev up7
    ip link set up7 up
    ip route add 198.51.100.0/28 via 203.0.113.1"
if [ $kernel_vlans = 0 ]; then
    switch="$(dirname "$(realpath "$0")")/vlan-switch.py"
    ip netns exec "$trunk" python3 "$switch" "$vs" "${switch_ports[@]}" > "$work/switch-inside.log" 2>&1 &
    pids+=($!)
    ip netns exec "$inet" python3 "$switch" "$vi" cgvacc7=7 > "$work/switch-outside.log" 2>&1 &
    pids+=($!)
    echo "e2e-vlan: no 802.1Q in this kernel: VLANs by scripts/vlan-switch.py"
else
    echo "e2e-vlan: Linux VLAN interfaces"
fi

bed_inside='vlans = [
  { id = 100, ipv4 = "100.64.100.1/24" },
  { id = 200, ipv4 = "100.64.200.1/24" },
  { qinq = [10, 300], ipv4 = "100.64.30.1/24" },
]'
bed_outside='vlans = [{ id = 7, ipv4 = "203.0.113.1/24", gateway = "203.0.113.254" }]'
write_cgnat_config "$work/cgnat.toml" vlan "$vsn" "$vin" 'inside = ["100.64.0.0/10"]'

"$bin" check -c "$work/cgnat.toml" > "$work/check.txt" || fail "config refused: $(cat "$work/check.txt")"
start_cgnat "$bin" "$work/cgnat.toml"

# Everything that reaches the internet side's trunk, tags included.
ip netns exec "$inet" tcpdump -i "$vi" -Q in -nn -U -w "$work/internet.pcap" 2>/dev/null &
pids+=($!)
capture=$!

# The appliance is up once a subscriber pings its VLAN's address (answered by the
# control lcore after ARP on that VLAN).
up=0
for _ in $(seq 1 ${E2E_WAIT:-60}); do
    if ip netns exec "cgvs100$tag" ping -c 1 -W 1 100.64.100.1 >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$cg" 2>/dev/null || fail "cgnat exited early"
    sleep 0.5
done
[ $up = 1 ] || fail "cgnat did not answer ping on 100.64.100.1 (VLAN 100)"
echo "e2e-vlan: appliance up"

head -c 1048576 /dev/urandom > "$work/blob.bin"
want=$(sha256sum "$work/blob.bin" | cut -d' ' -f1)
ip netns exec "$inet" python3 -m http.server 8080 --bind 192.0.2.10 --directory "$work" > "$work/http.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
    ip netns exec "$inet" python3 -c "import socket; socket.create_connection(('192.0.2.10', 8080), 0.2)" 2>/dev/null && break
    sleep 0.1
done
for s in "${subs[@]}"; do
    id=${s%%:*} net=${s#*:} ns=cgvs${s%%:*}$tag
    ip netns exec "$ns" ping -c 1 -W 2 "$net.1" > /dev/null || fail "VLAN $id: ping of its own address"
    ip netns exec "$ns" ping -c 3 -i 0.2 -W 2 192.0.2.10 > "$work/ping-$id.txt" || fail "VLAN $id: ping through NAT"
    ip netns exec "$ns" curl -sS --max-time 60 -o "$work/got-$id.bin" http://192.0.2.10:8080/blob.bin \
        || fail "VLAN $id: curl download"
    got=$(sha256sum "$work/got-$id.bin" | cut -d' ' -f1)
    [ "$want" = "$got" ] || fail "VLAN $id: sha256 mismatch: $want vs $got"
    echo "e2e-vlan: VLAN $id ($net.2): ping ok, 1 MB download ok, sha256 $got"
done
# The server saw the three subscribers from pool addresses.
grep -o '^[0-9.]*' "$work/http.log" | sort | uniq -c > "$work/http-peers.txt"
echo "e2e-vlan: HTTP clients the server saw:"; cat "$work/http-peers.txt"
if awk '{print $2}' "$work/http-peers.txt" | grep -v '^198\.51\.100\.\([0-9]\|1[0-5]\)$'; then
    fail "the server saw a non-pool client"
fi

curl -s --max-time 5 "http://127.0.0.1:$metrics_port/metrics" > "$work/metrics.txt" || fail "scraping /metrics"
for v in 100 200 10.300; do
    grep -q "cgnat_vlan_rx_packets_total{port=\"inside\",vlan=\"$v\"} [1-9]" "$work/metrics.txt" \
        || fail "/metrics lacks received packets on VLAN $v: $(grep cgnat_vlan "$work/metrics.txt")"
done
grep -q 'cgnat_vlan_tx_packets_total{port="outside",vlan="7"} [1-9]' "$work/metrics.txt" \
    || fail "/metrics lacks packets sent on outside VLAN 7"
curl -s --max-time 5 "http://127.0.0.1:$api_port/counters" | python3 -c '
import json, sys
v = {(x["port"], x["vlan"]) for x in json.load(sys.stdin)["vlans"]}
assert v == {("inside", "100"), ("inside", "200"), ("inside", "10.300"), ("outside", "7")}, v
' || fail "/counters lacks the per-VLAN counters"
echo "e2e-vlan: /metrics and /counters count per VLAN"

# Only pool sources, every IPv4 frame tagged 7, on the internet side.
sleep 0.5
kill "$capture" 2>/dev/null || true
sleep 0.5
tshark -r "$work/internet.pcap" -Y ip -T fields -e vlan.id -e ip.src 2>/dev/null | sort | uniq -c > "$work/sources.txt"
echo "e2e-vlan: (tag, source) seen on the internet side:"; cat "$work/sources.txt"
[ -s "$work/sources.txt" ] || fail "nothing captured on the internet side"
if awk '$2 != "7" || $3 !~ /^198\.51\.100\.([0-9]|1[0-5])$/' "$work/sources.txt" | grep .; then
    fail "a frame left untagged, on another VLAN or from a non-pool source"
fi

stop_cgnat "$cg"
python3 - "$work/summary.json" <<'PY' || fail "bad final summary"
import json, sys
text = open(sys.argv[1]).read()
s = json.loads(text[text.index("{"):])
v = {(x["port"], x["vlan"]): x for x in s["vlans"]}
# 1 MB is over 700 full segments down each subscriber's VLAN, and their ACKs up.
for name in ["100", "200", "10.300"]:
    assert v[("inside", name)]["tx"] > 700 and v[("inside", name)]["rx"] > 100, v
assert v[("outside", "7")]["rx"] > 2100 and v[("outside", "7")]["tx"] > 300, v
print("e2e-vlan: per-VLAN counters", json.dumps(s["vlans"]))
PY
echo "E2E PASS"
