#!/usr/bin/env bash
# End-to-end failover of an HA pair (issue 18): two cgnat appliances, A and B, on the
# same two L2 segments (Linux bridges: the subscriber's and the internet's), their
# state synced over a management link; keepalived (VRRP, one per management
# namespace) decides which is active and tells cgnat with `cgnat ha promote|demote`;
# BIRD in each management namespace announces the pool by BGP to the upstream router
# (BIRD in the internet namespace, which has no other route to the pool) only while
# its appliance is active, and withdraws it on a demotion.
# A download (50 MB over HTTP) runs through the active A; A is SIGKILLed mid-way;
# keepalived promotes B, B announces the addresses (gratuitous ARP) and forwards with
# the sessions A synced: the download completes with the right sha256, on the same
# outside port, and no inside address reached the internet; an FTP control connection
# opened through A (its PORT rewritten by the ALG) still answers through B and makes
# another active-mode transfer; a UDP stream (50 datagrams a second, echoed) resumes
# both ways within 3 s; a SIP call (baresip alice behind the NAT, registered with
# kamailio on the internet side, calling baresip bob through it, the SIP ALG
# rewriting its SDP) established through A goes on through B: its RTP resumes both
# ways within 3 s (the longest gaps measured from captures on the subscriber's link
# and the internet side), with no BYE or re-INVITE until alice hangs up, and the BYE
# answered through B. Then A comes back as
# standby (keepalived does not preempt) and is bulk-synced; a planned switchover back
# to A (B demoted, its keepalived stopped) during a second download loses nothing.
# Needs root.
# Usage: ha-e2e.sh CGNAT_BINARY WORKDIR
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
. "$(dirname "$0")/lib/sip-peers.sh"
bin=$(realpath "$1")
work=$(realpath -m "$2")
mkdir -p "$work"
tag=$$
sub=hasub$tag inet=hainet$tag bobns=habob$tag mga=hamga$tag mgb=hamgb$tag root=haroot$tag
brin=habri$tag brout=habro$tag
pids=()
down() {
    bed_teardown "$sub" "$inet" "$bobns" "$mga" "$mgb" -- \
        "$brin" "$brout" habrg$tag hasv$tag hai$tag haai$tag haao$tag haba$tag habb$tag habo$tag
    # The root namespace's name only (never its processes).
    ip netns del "$root" 2>/dev/null
}
trap down EXIT
fail() {
    echo "HA E2E FAIL: $*" >&2
    for n in a b; do
        echo "--- cgnat $n log" >&2; cat "$work/$n/cgnat.log" >&2 || true
        echo "--- keepalived $n" >&2; tail -30 "$work/keepalived-$n.log" >&2 || true
    done
    echo "--- curl" >&2; cat "$work/curl.log" >&2 || true
    exit 1
}

quiet() {
    sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1" 2>/dev/null || true
    ethtool -K "$1" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
}

# The two segments: bridges in the root namespace.
for br in "$brin" "$brout"; do
    ip link add "$br" type bridge
    quiet "$br"
    ip link set "$br" up
done
# veth NAME PEER BRIDGE: a pair, PEER enslaved to BRIDGE; NAME left in the root
# namespace (cgnat's af_packet port) or moved by the caller.
veth() {
    ip link add "$1" type veth peer name "$2"
    quiet "$1"
    quiet "$2"
    ip link set "$2" master "$3"
    ip link set "$2" up
    ip link set "$1" up
}
ip netns add "$sub"
ip netns add "$inet"
veth hasv$tag hasvb$tag "$brin"
veth hai$tag haib$tag "$brout"
ip link set hasv$tag netns "$sub"
ip link set hai$tag netns "$inet"
# host NS IFACE ADDRESS/LEN GATEWAY: a host's interface in its namespace, and its
# default route.
host() {
    ip netns exec "$1" sh -c "
        sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip link set lo up
        ip addr add $3 dev $2
        ip link set $2 up
        ethtool -K $2 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
        ip route add default via $4"
}
host "$sub" hasv$tag 100.64.0.2/10 100.64.0.1
ip netns exec "$inet" sh -c "
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip link set lo up
    ip addr add 192.0.2.10/32 dev lo
    ip addr add 203.0.113.254/24 dev hai$tag
    ip link set hai$tag up
    ethtool -K hai$tag tx off rx off tso off gso off gro off >/dev/null 2>&1 || true"
# Bob (the SIP call's far end) in a namespace of his own behind the internet
# namespace, so that his RTP leaves from the address his SDP names.
ip netns add "$bobns"
ip link add hbob$tag type veth peer name hbobi$tag
ip link set hbob$tag netns "$bobns"
ip link set hbobi$tag netns "$inet"
host "$bobns" hbob$tag 192.0.2.20/24 192.0.2.10
ip netns exec "$inet" sh -c "
    sysctl -qw net.ipv4.ip_forward=1
    ip link set hbobi$tag up
    ethtool -K hbobi$tag tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip route add 192.0.2.20/32 dev hbobi$tag"
# Each appliance's two ports on the two segments.
veth haai$tag haaib$tag "$brin"
veth haao$tag haaob$tag "$brout"
veth haba$tag habab$tag "$brin"
veth habo$tag habob$tag "$brout"

# The management link: one namespace per appliance's keepalived, joined by a pair.
ip netns add "$mga"
ip netns add "$mgb"
ip link add ham$tag type veth peer name hamb$tag
ip link set ham$tag netns "$mga"
ip link set hamb$tag netns "$mgb"
ip netns exec "$mga" sh -c "ip link set lo up; ip addr add 10.255.0.1/24 dev ham$tag; ip link set ham$tag up"
ip netns exec "$mgb" sh -c "ip link set lo up; ip addr add 10.255.0.2/24 dev hamb$tag; ip link set hamb$tag up"
# The BGP segment: the upstream router (the internet namespace) and both appliances'
# speakers (their management namespaces).
brbgp=habrg$tag
ip link add "$brbgp" type bridge
ip link set "$brbgp" up
k=0
for x in "$mga:10.254.0.1" "$mgb:10.254.0.2" "$inet:10.254.0.254"; do
    ns=${x%%:*} addr=${x#*:} k=$((k + 1))
    ip link add hg$k$tag type veth peer name hgb$k$tag
    ip link set hgb$k$tag master "$brbgp"
    ip link set hgb$k$tag up
    ip link set hg$k$tag netns "$ns"
    ip netns exec "$ns" sh -c "ip addr add $addr/24 dev hg$k$tag; ip link set hg$k$tag up"
done

head -c 32 /dev/urandom | base64 > "$work/ha.key"
sync_a=$(free_port) sync_b=$(free_port)
# config N IN OUT ME PEER: appliance N's config, both starting as standby
# (keepalived chooses).
config() {
    mkdir -p "$work/$1"
    tag="$1$$" write_cgnat_config "$work/$1/cgnat.toml" "ha$1" "$2" "$3" '
[ha]
role = "standby"
listen = "127.0.0.1:'"$4"'"
peer = "127.0.0.1:'"$5"'"
key_file = "'"$work/ha.key"'"

[alg]
sip = { enabled = true, ports = [5060] }'
    eval "api_$1=$api_port"
}
config a haai$tag haao$tag "$sync_a" "$sync_b"
config b haba$tag habo$tag "$sync_b" "$sync_a"

# start N: cgnat N in the background (its pid in cg_N). Both appliances run on
# af_packet in this namespace, and DPDK names each port's PACKET_FANOUT group by its
# pid XOR the interface's index: the second one can draw a group the first holds,
# and then exits at once ("could not set PACKET_FANOUT"). A new process (another
# pid) is tried then, up to three times; any other exit is left to the caller.
start() {
    local api try pid
    api=$(eval echo "\$api_$1")
    for try in 1 2 3; do
        "$bin" run -c "$work/$1/cgnat.toml" > "$work/$1/summary.json" 2> "$work/$1/cgnat.log" &
        pid=$!
        eval "cg_$1=$pid"
        pids+=("$pid")
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            "$bin" ha status --api "127.0.0.1:$api" > /dev/null 2>&1 && return 0
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && return 0
        grep -q "PACKET_FANOUT" "$work/$1/cgnat.log" || return 0
        echo "ha-e2e: cgnat $1 drew a PACKET_FANOUT group in use (try $try), starting it again"
    done
}
start a
start b
for n in a b; do
    api=$(eval echo "\$api_$n")
    for _ in $(seq 1 100); do
        "$bin" ha status --api "127.0.0.1:$api" > /dev/null 2>&1 && break
        sleep 0.1
    done
    "$bin" ha status --api "127.0.0.1:$api" > /dev/null || fail "cgnat $n did not come up"
done
echo "ha-e2e: both appliances up, standby"

# BIRD: each appliance's speaker announces the pool (a static route, disabled until
# its appliance is promoted) to the router; the router installs what it learns via
# the appliances' shared outside address in its kernel table.
bird_conf() {
    local n=$1 me=$2
    cat > "$work/bird-$n.conf" <<CONF
router id $me;
protocol device {}
protocol static pool {
    disabled;
    ipv4;
    route 198.51.100.0/28 blackhole;
}
protocol bgp upstream {
    local $me as 64512;
    neighbor 10.254.0.254 as 64500;
    hold time 3;
    connect retry time 1;
    ipv4 { import none; export where proto = "pool"; };
}
CONF
}
bird_conf a 10.254.0.1
bird_conf b 10.254.0.2
cat > "$work/bird-r.conf" <<CONF
router id 10.254.0.254;
protocol device {}
protocol kernel { ipv4 { export all; }; }
template bgp cgn {
    local 10.254.0.254 as 64500;
    hold time 3;
    connect retry time 1;
    ipv4 { import filter { gw = 203.0.113.1; accept; }; export none; };
}
protocol bgp cgn_a from cgn { neighbor 10.254.0.1 as 64512; }
protocol bgp cgn_b from cgn { neighbor 10.254.0.2 as 64512; }
CONF
for x in "a:$mga" "b:$mgb" "r:$inet"; do
    n=${x%%:*} ns=${x#*:}
    ip netns exec "$ns" bird -f -c "$work/bird-$n.conf" -s "$work/bird-$n.ctl" -P "$work/bird-$n.pid" \
        > "$work/bird-$n.log" 2>&1 &
    pids+=("$!")
done
birdc_() { birdc -s "$work/bird-$1.ctl" "${@:2}"; }
# The router's route to the pool, and which speaker it came from (none: "-").
pool_route() {
    birdc_ r show route 198.51.100.0/28 all 2>/dev/null | sed -n 's/.*\[cgn_\([ab]\) .*/\1/p' | head -1 | grep . || echo -
}

# keepalived: A has the higher priority; each tracks its own cgnat (its control API
# answering) and calls it on a change. keepalived runs in the management namespace;
# its scripts reach the appliance's API in the root namespace, named for them.
ip netns attach "$root" $$
keepalived_conf() {
    local n=$1 prio=$2 ifc=$3 api=$4
    cat > "$work/keepalived-$n.conf" <<CONF
global_defs {
    script_user root
    enable_script_security
    router_id cgnat_$n
}
vrrp_script cgnat_alive {
    script "$work/cgnat-$n.sh status"
    interval 1
    timeout 1
    fall 1
    rise 1
}
vrrp_instance CGNAT {
    state BACKUP
    interface $ifc
    virtual_router_id 51
    priority $prio
    advert_int 1
    nopreempt
    virtual_ipaddress {
        10.255.0.100/24
    }
    track_script {
        cgnat_alive
    }
    notify_master "$work/cgnat-$n.sh promote"
    notify_backup "$work/cgnat-$n.sh demote"
    notify_fault "$work/cgnat-$n.sh demote"
}
CONF
    cat > "$work/cgnat-$n.sh" <<SH
#!/bin/sh
# keepalived's notify and check script: cgnat's role, and the pool's announcement
# (withdrawn before a demotion, announced after a promotion).
log=$work/notify-$n.log
cgnat() { ip netns exec $root $bin ha "\$1" --api 127.0.0.1:$api --timeout 1 >> \$log 2>&1; }
case "\$1" in
    promote) cgnat promote && birdc -s $work/bird-$n.ctl enable pool >> \$log 2>&1 ;;
    demote) birdc -s $work/bird-$n.ctl disable pool >> \$log 2>&1; echo "\$(date +%s.%N) withdrawn" >> $work/withdrawn-$n; cgnat demote ;;
    *) cgnat "\$1" ;;
esac
SH
    chmod 755 "$work/cgnat-$n.sh"
}
keepalived_conf a 150 ham$tag "$api_a"
keepalived_conf b 100 hamb$tag "$api_b"
role() { "$bin" ha status --api "127.0.0.1:$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["role"])' 2>/dev/null || echo down; }
# keepalived N NS: starts appliance N's keepalived in namespace NS.
keepalived_start() {
    ip netns exec "$2" keepalived --dont-fork --log-console --log-detail --vrrp \
        -f "$work/keepalived-$1.conf" -p "$work/keepalived-$1.pid" -r "$work/vrrp-$1.pid" \
        > "$work/keepalived-$1.log" 2>&1 &
    pids+=("$!")
    eval "ka_$1=$!"
}
# A's first (no preemption: the first master stays master), then B's.
keepalived_start a "$mga"
for _ in $(seq 1 100); do
    [ "$(role "$api_a")" = active ] && break
    sleep 0.2
done
[ "$(role "$api_a")" = active ] || fail "keepalived did not make A active"
keepalived_start b "$mgb"
sleep 3
[ "$(role "$api_a")" = active ] || fail "A is no longer active once B's keepalived runs"
[ "$(role "$api_b")" = standby ] || fail "B is not standby"
for _ in $(seq 1 100); do
    [ "$(pool_route)" = a ] && break
    sleep 0.1
done
[ "$(pool_route)" = a ] || fail "the router has no route to the pool from A: $(birdc_ r show route all 2>&1)"
echo "ha-e2e: the router routes the pool by BGP from A only"
echo "ha-e2e: keepalived made A active"
for _ in $(seq 1 60); do
    ip netns exec "$sub" ping -c 1 -W 1 100.64.0.1 >/dev/null 2>&1 && break
    sleep 0.5
done

# wait_for FILE PID: until FILE exists (at most 15 s) or PID has ended; fails if it
# does not exist by then.
wait_for() {
    for _ in $(seq 1 300); do
        [ -e "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    [ -e "$1" ]
}

# The download: 50 MB from the internet namespace, paced so that it lasts ~15 s.
head -c 52428800 /dev/urandom > "$work/blob.bin"
want=$(sha256sum "$work/blob.bin" | cut -d' ' -f1)
serve_http "$inet" 192.0.2.10 8080 "$work" "$work/http.log" || fail "the HTTP server did not start"
# An FTP server (pyftpdlib, anonymous) with a small file.
mkdir -p "$work/ftp"
head -c 300000 /dev/urandom > "$work/ftp/small.bin"
ip netns exec "$inet" /usr/bin/python3 -m pyftpdlib -i 192.0.2.10 -p 21 -d "$work/ftp" > "$work/ftp.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    ip netns exec "$inet" python3 -c "import socket; socket.create_connection(('192.0.2.10', 21), 0.2)" 2>/dev/null && break
    sleep 0.1
done
# SIP: kamailio (registrar and proxy) on the internet side, baresip alice behind the
# NAT and bob in his namespace, both registered (alice's REGISTER through A).
here=$(cd "$(dirname "$0")" && pwd)
ctl="$here/sip-e2e-ctl.py"
rtp_lo=10000 rtp_hi=10099
kamailio_config "$work/kamailio" 192.0.2.10
ip netns exec "$inet" kamailio -f "$work/kamailio/kamailio.cfg" -DD -E -m 32 -M 4 \
    -P "$work/kamailio.pid" -Y "$work/kamailio" -w "$work/kamailio" > "$work/kamailio.log" 2>&1 &
pids+=($!)
baresip_config "$work/alice" alice 100.64.0.2 hasv$tag 192.0.2.10 "$rtp_lo" "$rtp_hi"
baresip_config "$work/bob" bob 192.0.2.20 hbob$tag 192.0.2.10 "$rtp_lo" "$rtp_hi"
ip netns exec "$sub" baresip -f "$work/alice" -v > "$work/alice.log" 2>&1 < /dev/null &
pids+=($!)
ip netns exec "$bobns" baresip -f "$work/bob" -v > "$work/bob.log" 2>&1 < /dev/null &
pids+=($!)
/usr/bin/python3 "$ctl" wait-reg "$sub:4444" "$bobns:4444" > "$work/reg.json" 2>&1 \
    || fail "alice and bob did not both register with kamailio: $(cat "$work/reg.json")"
# The internet side sees only pool addresses; the subscriber's link, for the call.
ip netns exec "$inet" tcpdump -i hai$tag -nn -U --immediate-mode -w "$work/outside.pcap" ip 2>/dev/null &
cap=$!
pids+=("$cap")
ip netns exec "$sub" tcpdump -i hasv$tag -nn -U --immediate-mode -w "$work/subscriber.pcap" udp 2>/dev/null &
subcap=$!
pids+=("$subcap")
sleep 0.5
# The call: alice calls bob through kamailio (and A); alice hangs up 20 s after it is
# established, well after the failover.
rm -f "$work/call-ready"
/usr/bin/python3 "$ctl" call "alice=$sub:4444" "bob=$bobns:4444" "sip:bob@192.0.2.10" 20 "$work/call-ready" \
    > "$work/call.json" 2> "$work/call.err" &
callpid=$!
pids+=("$callpid")
wait_for "$work/call-ready" "$callpid" || fail "the call was not established through A: $(cat "$work/call.json" "$work/call.err")"
echo "ha-e2e: alice's call to bob established through A"
# The call's sessions on an appliance: alice's SIP (5060) and RTP/RTCP ones, sorted
# (inside->outside<->remote).
call_sessions() { # api
    "$bin" show sessions --api "127.0.0.1:$1" --subscriber 100.64.0.2 --json 2>/dev/null | python3 -c '
import json, sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
out = []
for s in json.load(sys.stdin)["sessions"]:
    port = int(s["inside"].rsplit(":", 1)[1])
    if s["protocol"].lower() == "udp" and (port == 5060 or lo <= port <= hi + 1):
        out.append("%s->%s<->%s" % (s["inside"], s["outside"], s["remote"]))
print(",".join(sorted(out)))' "$rtp_lo" "$rtp_hi"
}
# The SIP expectations (pinholes) an appliance holds for alice, sorted
# (class:remote->outside(inside)): her registration's (5060, made when she registered
# through A, after B's bulk sync) and her media's.
call_pinholes() { # api
    curl -s --max-time 3 "http://127.0.0.1:$1/expectations" | python3 -c '
import json, sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
out = []
for e in json.load(sys.stdin).get("expectations", []):
    port = int(e.get("inside", ":0").rsplit(":", 1)[1] or 0)
    if e.get("inside", "").startswith("100.64.0.2:") and (port == 5060 or lo <= port <= hi + 1):
        out.append("%s:%s->%s(%s)" % (e.get("class"), e.get("remote"), e.get("outside"), e.get("inside")))
print(",".join(sorted(out)))' "$rtp_lo" "$rtp_hi"
}
# start_download: the subscriber's curl of the 50 MB file at 3.5 MB/s in the
# background (its pid in dl), once more than 10 MB have arrived (at most 10 s).
start_download() {
    rm -f "$work/got.bin"
    ip netns exec "$sub" curl -sS --limit-rate 3500k --max-time 120 -o "$work/got.bin" \
        "http://192.0.2.10:8080/blob.bin" > "$work/curl.log" 2>&1 &
    dl=$!
    pids+=("$dl")
    for _ in $(seq 1 100); do
        [ "$(stat -c %s "$work/got.bin" 2>/dev/null || echo 0)" -gt 10000000 ] && break
        sleep 0.1
    done
}
start_download
got=$(stat -c %s "$work/got.bin" 2>/dev/null || echo 0)
[ "$got" -gt 10000000 ] || fail "the download did not start through A ($got bytes)"
# The session is on the standby, on the same outside port.
out_a=$("$bin" show sessions --api "127.0.0.1:$api_a" --remote 192.0.2.10:8080 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["outside"])')
for _ in $(seq 1 50); do
    out_b=$("$bin" show sessions --api "127.0.0.1:$api_b" --remote 192.0.2.10:8080 --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin)["sessions"]; print(s[0]["outside"] if s else "")' 2>/dev/null || true)
    [ -n "$out_b" ] && break
    sleep 0.1
done
[ "$out_b" = "$out_a" ] || fail "the standby holds $out_b, the active $out_a"
echo "ha-e2e: download at $got bytes through A ($out_a), synced to B; SIGKILL A"

# A UDP stream through A, echoed by the internet side, across the failover.
ip netns exec "$inet" python3 "$here/ha-udp-stream.py" server 192.0.2.10 5004 "$work/udp-up.log" > /dev/null 2> "$work/udp-server.err" &
pids+=($!)
sleep 0.3
ip netns exec "$sub" python3 "$here/ha-udp-stream.py" client 192.0.2.10 5004 20 "$work/udp-down.log" > /dev/null 2> "$work/udp-client.err" &
udpc=$!
pids+=("$udpc")
sleep 1
# The FTP control connection through A: a first active-mode transfer.
rm -f "$work/ftp-ready" "$work/ftp-go"
ip netns exec "$sub" /usr/bin/python3 "$here/ha-ftp-client.py" "$work" > "$work/ftp-client.log" 2>&1 &
ftpc=$!
pids+=("$ftpc")
wait_for "$work/ftp-ready" "$ftpc" || fail "the FTP client did not get its first file: $(cat "$work/ftp-client.log")"
cmp -s "$work/ftp1.bin" "$work/ftp/small.bin" || fail "the first FTP transfer differs"
# The adjustment of the rewritten PORT reaches B (a few milliseconds).
sleep 0.5
# B holds the call's signalling and media sessions and alice's pinholes
# (expectations: her registration's, any of her media's) as A does, same outside
# ports: each reaches B with the incremental updates (milliseconds; read again for up
# to 3 s, as what A holds may change between the two reads). Her registration came
# after B's bulk sync and well within the 30 s of a refresh sweep: B has it only
# from the journal.
for _ in $(seq 1 30); do
    calls_a=$(call_sessions "$api_a")
    calls_b=$(call_sessions "$api_b")
    pins_a=$(call_pinholes "$api_a")
    pins_b=$(call_pinholes "$api_b")
    [ "$calls_b" = "$calls_a" ] && [ "$pins_b" = "$pins_a" ] && break
    sleep 0.1
done
grep -q "100.64.0.2:5060->[^,]*<->192.0.2.10:5060" <<<"$calls_a" && grep -q "<->192.0.2.20:100" <<<"$calls_a" \
    || fail "A has no SIP or RTP session of the call: $calls_a"
[ "$calls_b" = "$calls_a" ] || fail "the call's sessions on B ($calls_b) are not A's ($calls_a)"
grep -q "sip_register:192.0.2.10->" <<<"$pins_a" || fail "A holds no registration pinhole of alice: $pins_a"
[ "$pins_b" = "$pins_a" ] || fail "alice's pinholes on B ($pins_b) are not A's ($pins_a)"
echo "ha-e2e: the call's sessions synced to B: $calls_a; alice's pinholes: ${pins_a:-none}"
echo "ha-e2e: an FTP control connection through A, its PORT rewritten, a file fetched"
size_at_kill=$(stat -c %s "$work/got.bin")
kill -9 "$cg_a"
t_kill=$(date +%s.%N)
for _ in $(seq 1 100); do
    [ "$(role "$api_b")" = active ] && break
    sleep 0.1
done
[ "$(role "$api_b")" = active ] || fail "keepalived did not promote B"
t_promoted=$(date +%s.%N)
echo "ha-e2e: B promoted $(python3 -c "print(round($t_promoted - $t_kill, 1))") s after the kill"
for _ in $(seq 1 100); do
    [ "$(pool_route)" = b ] && break
    sleep 0.05
done
[ "$(pool_route)" = b ] || fail "the route to the pool did not move to B: $(birdc_ r show route all 2>&1)"
grep -q "cgn_a" <<<"$(birdc_ r show route 198.51.100.0/28 all)" && fail "the router still has A's route to the pool"
echo "ha-e2e: the router's route to the pool moved to B ($(python3 -c "print(round($(date +%s.%N) - $t_kill, 1))") s after the kill)"
# The download goes on through B (bytes beyond what came before the kill, plus what
# was in flight).
for _ in $(seq 1 300); do
    [ "$(stat -c %s "$work/got.bin")" -gt $((size_at_kill + 2000000)) ] && break
    sleep 0.05
done
t_resumed=$(date +%s.%N)
[ "$(stat -c %s "$work/got.bin")" -gt $((size_at_kill + 2000000)) ] || fail "the download did not resume"
echo "ha-e2e: the download resumed through B $(python3 -c "print(round($t_resumed - $t_kill, 1))") s after the kill"

touch "$work/ftp-go"
wait "$ftpc" || fail "the FTP control connection did not survive the failover: $(cat "$work/ftp-client.log")"
grep -q "ftp ok" "$work/ftp-client.log" || fail "FTP: $(cat "$work/ftp-client.log")"
cmp -s "$work/ftp2.bin" "$work/ftp/small.bin" || fail "the FTP transfer after the failover differs"
echo "ha-e2e: the FTP control connection answered through B ($(grep pwd "$work/ftp-client.log")) and fetched the file again"
wait "$udpc" || true
t_end=$(date +%s.%N)
up=$(python3 "$here/ha-udp-stream.py" gap "$work/udp-up.log" "$t_kill" "$t_end")
down=$(python3 "$here/ha-udp-stream.py" gap "$work/udp-down.log" "$t_kill" "$t_end")
python3 -c "import sys; sys.exit(0 if $up < 3 and $down < 3 else 1)" \
    || fail "the UDP stream stopped for $up s toward the internet, $down s echoed back"
last_up=$(tail -1 "$work/udp-up.log")
python3 -c "import sys; sys.exit(0 if $last_up > $t_promoted else 1)" \
    || fail "the UDP stream did not resume (last datagram at $last_up, B promoted at $t_promoted; the client said: $(tail -3 "$work/udp-client.err"), the server: $(tail -3 "$work/udp-server.err"))"
echo "ha-e2e: the UDP stream resumed both ways: longest gaps $up s (to the internet) and $down s (echoed back)"
# The call: still up after the failover (no early close), hung up by alice through B
# (both ends closed), and baresip got RTP on both ends.
wait "$callpid" || fail "the call did not survive the failover: $(cat "$work/call.json" "$work/call.err")"
read -r m0 m1 < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["media_start"], d["media_end"])' "$work/call.json")
python3 -c "import sys; sys.exit(0 if $m0 < $t_kill and $m1 > $t_promoted + 5 else 1)" \
    || fail "the call's media ($m0 to $m1) did not span the kill ($t_kill) and 5 s after B's promotion ($t_promoted)"
wait "$dl" || fail "the download failed after the failover: $(cat "$work/curl.log")"
have=$(sha256sum "$work/got.bin" | cut -d' ' -f1)
[ "$have" = "$want" ] || fail "sha256 $have, want $want ($(stat -c %s "$work/got.bin") bytes)"
echo "ha-e2e: the download completed through B, sha256 $have"
sleep 0.5
kill "$cap" "$subcap" 2>/dev/null || true
sleep 0.2
# The call's RTP (even ports of baresip's range), toward alice on the subscriber's
# link and toward bob on the internet side: the longest gap between arrivals that
# overlaps the time from the kill to alice's hang-up (the hang-up counts as an
# arrival, so RTP that never came back is a gap to the end), and how many packets
# came after B's promotion.
rtp() { # pcap display-filter: arrival times while the call was up, then the hang-up
    tshark -r "$1" -Y "frame.time_epoch >= $m0 and frame.time_epoch <= $m1 and udp.dstport >= $rtp_lo and udp.dstport <= $rtp_hi and udp.dstport % 2 == 0 and ($2)" \
        -T fields -e frame.time_epoch 2>/dev/null
    echo "$m1"
}
rtp "$work/subscriber.pcap" "ip.dst == 100.64.0.2" > "$work/rtp-to-alice.log"
rtp "$work/outside.pcap" "ip.dst == 192.0.2.20" > "$work/rtp-to-bob.log"
to_alice=$(python3 "$here/ha-udp-stream.py" gap "$work/rtp-to-alice.log" "$t_kill" "$m1")
to_bob=$(python3 "$here/ha-udp-stream.py" gap "$work/rtp-to-bob.log" "$t_kill" "$m1")
n_alice=$(awk -v t="$t_promoted" '$1 > t' "$work/rtp-to-alice.log" | wc -l)
n_bob=$(awk -v t="$t_promoted" '$1 > t' "$work/rtp-to-bob.log" | wc -l)
python3 -c "import sys; sys.exit(0 if $to_alice < 3 and $to_bob < 3 and $n_alice > 100 and $n_bob > 100 else 1)" \
    || fail "the call's RTP stopped for $to_alice s toward alice, $to_bob s toward bob ($n_alice and $n_bob RTP packets after B's promotion)"
# No BYE or re-INVITE while the call was up (the signalling on the subscriber's link).
resig=$(tshark -r "$work/subscriber.pcap" -Y "frame.time_epoch > $m0 and frame.time_epoch < $m1 and (sip.Method == \"BYE\" or sip.Method == \"INVITE\")" 2>/dev/null | wc -l)
[ "$resig" = 0 ] || fail "$resig BYE or INVITE messages while the call was up"
echo "ha-e2e: the call survived: its RTP resumed both ways through B, longest gaps $to_alice s (toward alice) and $to_bob s (toward bob), $n_alice and $n_bob RTP packets after the promotion, no BYE or re-INVITE, hung up through B"
leaks=$(tcpdump -nn -r "$work/outside.pcap" 2>/dev/null | grep -c "100\.64\." || true)
[ "$leaks" = 0 ] || fail "$leaks packets with an inside address on the outside"
garp=$("$bin" ha status --api "127.0.0.1:$api_b" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["garp_sent"])')
[ "$garp" -ge 2 ] || fail "B sent $garp gratuitous ARPs"
# B translated the rest of the download on the session A made (same outside port).
out2in=$("$bin" show counters --api "127.0.0.1:$api_b" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["translated"]["out2in"])')
[ "$out2in" -gt 1000 ] || fail "B translated only $out2in packets toward the subscriber"
out_b2=$("$bin" show sessions --api "127.0.0.1:$api_b" --remote 192.0.2.10:8080 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["outside"])')
[ "$out_b2" = "$out_a" ] || fail "B carried the download on $out_b2, A on $out_a"
echo "ha-e2e: B translated $out2in packets of it on $out_b2, as A did"

# A comes back, as standby (nopreempt): B syncs it in bulk.
start a
for _ in $(seq 1 150); do
    "$bin" ha status --api "127.0.0.1:$api_a" --json 2>/dev/null \
        | python3 -c 'import json,sys; v=json.load(sys.stdin); sys.exit(0 if v["role"] == "standby" and v["in_sync"] else 1)' 2>/dev/null && break
    sleep 0.2
done
[ "$(role "$api_a")" = standby ] || fail "A did not come back as standby"
[ "$(role "$api_b")" = active ] || fail "B is no longer active after A came back"
echo "ha-e2e: A back as standby, bulk-synced from B"

# A planned switchover back to A during a second download: B is demoted, then its
# keepalived stops; A's promotes A.
start_download
out_b=$("$bin" show sessions --api "127.0.0.1:$api_b" --remote 192.0.2.10:8080 --json | python3 -c 'import json,sys; print([s["outside"] for s in json.load(sys.stdin)["sessions"] if s["state"] not in ("Closing", "Reset")][-1])')
for _ in $(seq 1 50); do
    grep -q "\"$out_b\"" <<<"$("$bin" show sessions --api "127.0.0.1:$api_a" --remote 192.0.2.10:8080 --json 2>/dev/null)" && break
    sleep 0.1
done
grep -q "\"$out_b\"" <<<"$("$bin" show sessions --api "127.0.0.1:$api_a" --remote 192.0.2.10:8080 --json)" \
    || fail "A does not hold the second download's session ($out_b)"
# Planned: B steps down the way keepalived would (the notify script: withdraw, then
# demote), then its keepalived stops.
"$work/cgnat-b.sh" demote || fail "demoting B"
t_w=$(tail -1 "$work/withdrawn-b" | cut -d' ' -f1)
for _ in $(seq 1 40); do
    grep -q "cgn_b" <<<"$(birdc_ r show route 198.51.100.0/28 all 2>/dev/null)" || break
    sleep 0.025
done
grep -q "cgn_b" <<<"$(birdc_ r show route 198.51.100.0/28 all 2>/dev/null)" && fail "the router kept B's route a second after B's demotion"
echo "ha-e2e: the router dropped B's route $(python3 -c "print(round($(date +%s.%N) - $t_w, 2))") s after B's withdrawal"
kill -TERM "$ka_b"
for _ in $(seq 1 100); do
    [ "$(role "$api_a")" = active ] && break
    sleep 0.1
done
[ "$(role "$api_a")" = active ] || fail "keepalived did not promote A after B stepped down"
for _ in $(seq 1 100); do
    [ "$(pool_route)" = a ] && break
    sleep 0.05
done
[ "$(pool_route)" = a ] || fail "the route to the pool did not come back to A"
echo "ha-e2e: planned switchover to A during the second download ($out_b)"
wait "$dl" || fail "the second download failed across the switchover: $(cat "$work/curl.log")"
have=$(sha256sum "$work/got.bin" | cut -d' ' -f1)
[ "$have" = "$want" ] || fail "second download: sha256 $have, want $want"
grep -q "\"$out_b\"" <<<"$("$bin" show sessions --api "127.0.0.1:$api_a" --remote 192.0.2.10:8080 --json)" \
    || fail "A carried the second download on another port than $out_b"
echo "ha-e2e: the second download completed through A, sha256 $have"
echo "HA E2E PASS"
