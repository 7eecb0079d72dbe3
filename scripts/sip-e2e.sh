#!/usr/bin/env bash
# End-to-end SIP bed with real software: baresip (alice) behind the NAT, baresip (bob)
# and kamailio (registrar + proxy) on the internet side. Needs root.
# Usage: sip-e2e.sh MODE CGNAT_BINARY WORKDIR
#   MODE cgnat:  the two veth ends in the root namespace are driven by `cgnat run`
#                (net_af_packet), SIP ALG on, address-and-port-dependent filtering.
#   MODE linux:  a router namespace does the NAT with nftables: snat to 198.51.100.1,
#                the kernel's `ct helper` "sip" on udp/tcp 5060, and unsolicited
#                inbound dropped, so media only gets in through the helper's
#                expectations (or conntrack entries the subscriber's own RTP made).
#   MODE routed: the router namespace only routes (no NAT, no filter): a baseline.
#   CGNAT_BINARY is only used in cgnat mode (pass anything otherwise).
#
#   subscriber ns                    cgnat (root ns) / router ns            internet ns
#   vs 100.64.0.2/10  <veth>  vsn [inside 100.64.0.1]  [outside 203.0.113.1] vin <veth> vi 203.0.113.254/24
#   alice: baresip 100.64.0.2:5060                                      lo: 192.0.2.10 kamailio :5060
#                                                                        192.0.2.30 recorder tcp :5060
#                                                                    veth bob0: 192.0.2.20 bob (baresip) :5060
# Bob has an interface of his own so that baresip puts 192.0.2.20 in its SDP (it takes
# the first address of net_interface), and the route toward the NAT uses it as source,
# so his RTP comes from the address his SDP announces.
#
# Scenarios, each reported as "SIP-RESULT name=... ok=0|1 detail=...". A call passes when
# both baresips report it established and RTP received, at least SIP_MIN_RTP (50) RTP
# packets reached each end, and SIP_MIN_RTCP (1) RTCP packets (baresip sends one at the
# start and then every ~5 s, to RTP port + 1 or the SDP's a=rtcp), each end decoded >= 1 s of audio that is ausine's 440 Hz
# tone (heard=SECONDS:SHARE_OF_ENERGY_AT_440HZ), and the BYE got its 200.
#   direct   alice calls sip:bob@192.0.2.20, ~3 s of media, alice hangs up
#   proxy    both registered with kamailio, alice calls sip:bob@192.0.2.10 through it
#   incoming bob calls alice's AOR sip:alice@192.0.2.10; kamailio relays to the contact
#            alice registered through the NAT; alice auto-answers
#   direct-tcp (SIP_TCP=1) the direct call with SIP over TCP
#   reloads  (cgnat) the direct call with SIP_RELOAD_CALL_SECS (8) s of media; 2 s in,
#            `cgnat reload` three times about a second apart, each after changing
#            nat.timeouts.udp (301, 300, 301) in the config file; passes as above and
#            when each reload answered applied with that change, at least
#            SIP_MIN_RTP_AFTER_RELOADS (20) RTP packets reached each end from the last
#            reload's answer to the media's end, and the call's RTP/RTCP sessions
#            (show sessions --subscriber 100.64.0.2: inside, outside, remote) were the
#            same before the first and after the last reload
#   whole-tcp (cgnat, linux) an INVITE with SDP over TCP from alice's address to a recorder at
#            192.0.2.30:5060 (scripts/sip-split-tcp.py), in one segment
#   split-tcp the same INVITE in two TCP segments, cut inside the SDP c= address
#            (SIP_SPLIT=via cuts inside the Via address, a number at that byte), the
#            second part SIP_SPLIT_PAUSE (0.05) s after the first
#   split-tcp-late the same with the second part 0.6 s late (the first part is
#            retransmitted meanwhile if the NAT holds it unacknowledged)
#            Each passes when no inside address reached the internet (recorder and
#            capture), the message arrived whole (Content-Length = body) with every
#            other line unchanged (the m= port aside), the recorder's three datagrams
#            to the SDP's media address and port reached alice's 10096, and the 486
#            came back to alice. wire_mismatch (not judged) counts segments toward the
#            recorder whose bytes differ from its stream at their place.
#   policy-message (cgnat) with alg.sip.deny_methods = ["MESSAGE"]: a MESSAGE from
#            alice's address to kamailio gets 405 from kamailio's address (Via, Call-ID,
#            CSeq copied; Allow without MESSAGE) and none reaches the internet; an
#            OPTIONS right after gets kamailio's own answer
#   leak     no 100.64.x.x address in any packet of the calls and registrations that
#            left toward the internet (the probes above are judged on their own)
#   pinholes (cgnat) no SIP media expectation left once the calls are over
# and a final "SIP-E2E PASS" when every one passed (else "SIP-E2E FAIL").
# SIP_CALLS=0 leaves the baresip calls out (the probes, leak and pinholes only).
#
# Measured (kernel 6.18, cgnat of main at 2ec432c, debug build):
# - Linux, direct-tcp: the call works, SDP rewritten, but Via and Contact keep
#   100.64.0.2:5060: the helper only maps an address:port equal to the connection's
#   source, and baresip names its listening port, not the ephemeral one (leak fails).
# - Linux, whole-tcp passes (the probe names the connection's own port); split-tcp:
#   the helper only translates a message whole in one segment and lets both parts
#   through untranslated: Via, Contact, o= and c= carry 100.64.0.2, media cannot get in.
# - cgnat passes both; split-tcp-late fails: cgnat holds the first part without
#   acknowledging it, alice's stack retransmits it with backoff and, with cwnd down
#   to one segment, never sends the rest; after ~4.4 s cgnat releases the first part
#   untranslated (sip released counter), and the inside address reaches the recorder.
set -uo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
. "$(dirname "$0")/lib/sip-peers.sh"
# SIP (and its SDP) on any port from 1024: a translated port must not hide it.
sip_as=$(decode_as udp tcp sip)
mode=$1
bin=$(realpath -m "$2")
work=$(realpath -m "$3")
here=$(cd "$(dirname "$0")" && pwd)
ctl="$here/sip-e2e-ctl.py"
splitpy="$here/sip-split-tcp.py"
case "$mode" in cgnat|linux|routed) ;; *) echo "usage: $0 cgnat|linux|routed CGNAT_BINARY WORKDIR" >&2; exit 2;; esac
rm -rf "$work"
mkdir -p "$work"
tag=$$
sub=sipsub$tag inet=sipinet$tag rt=siprt$tag
vs=sipvs$tag vsn=sipvsn$tag vi=sipvi$tag vin=sipvin$tag
secs=${SIP_CALL_SECS:-3}
min_rtp=${SIP_MIN_RTP:-50}
min_rtcp=${SIP_MIN_RTCP:-1}
reload_secs=${SIP_RELOAD_CALL_SECS:-8}
min_rtp_after=${SIP_MIN_RTP_AFTER_RELOADS:-20}
alice=100.64.0.2 kam=192.0.2.10 bob=192.0.2.20 probe=192.0.2.30
rtp_lo=10000 rtp_hi=10099
pids=()
results=()
failed=0

cleanup() {
    # (kamailio's forked children, in its namespace, go with whatever is left there.)
    bed_teardown "$sub" "$inet" "$rt" -- "$vsn" "$vin"
}
trap cleanup EXIT
die() {
    echo "SIP-E2E FAIL: $*"
    if [ "$mode" = cgnat ]; then
        echo "--- cgnat log"; tail -40 "$work/cgnat.log" 2>/dev/null
    fi
    exit 1
}
result() { # name ok detail
    echo "SIP-RESULT name=$1 ok=$2 detail=$3"
    results+=("$1=$2")
    [ "$2" = 1 ] || failed=1
}

# ---------------------------------------------------------------- topology
ip netns add "$sub"
ip netns add "$inet"
ip link add "$vs" type veth peer name "$vsn"
ip link add "$vi" type veth peer name "$vin"
ip link set "$vs" netns "$sub"
ip link set "$vi" netns "$inet"
offload() { ethtool -K "$1" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true; }
if [ "$mode" = cgnat ]; then
    rx() { "$@"; }
else
    ip netns add "$rt"
    ip link set "$vsn" netns "$rt"
    ip link set "$vin" netns "$rt"
    rx() { ip netns exec "$rt" "$@"; }
    rx sh -c "sysctl -qw net.ipv6.conf.all.disable_ipv6=1; sysctl -qw net.ipv4.ip_forward=1; ip link set lo up"
fi
for ifc in "$vsn" "$vin"; do
    rx sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" || true
    rx ethtool -K "$ifc" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    rx ip link set "$ifc" up
done
ip netns exec "$sub" sh -c "
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip link set lo up
    ip addr add $alice/10 dev $vs
    ip link set $vs up
    ip route add default via 100.64.0.1"
ip netns exec "$sub" ethtool -K "$vs" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec "$inet" sh -c "
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip link set lo up
    ip addr add $kam/32 dev lo
    ip addr add $probe/32 dev lo
    ip link add bob0 type veth peer name bob1
    ip link set bob1 up
    ip addr add $bob/32 dev bob0
    ip link set bob0 up
    ip addr add 203.0.113.254/24 dev $vi
    ip link set $vi up
    ip route add 198.51.100.0/28 via 203.0.113.1 src $bob"
ip netns exec "$inet" ethtool -K "$vi" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true

case "$mode" in
routed|linux)
    rx sh -c "
        ip addr add 100.64.0.1/10 dev $vsn
        ip addr add 203.0.113.1/24 dev $vin
        ip route add default via 203.0.113.254"
    [ "$mode" = routed ] && ip netns exec "$inet" ip route add 100.64.0.0/10 via 203.0.113.1 src $bob
    ;;
esac
if [ "$mode" = linux ]; then
    # The kernel's SIP helper (nf_conntrack_sip + nf_nat_sip) on the SIP ports; the
    # NAT rewrites SIP headers and SDP and opens expectations for RTP/RTCP.
    cat > "$work/nat.nft" <<NFT
table ip sipnat {
    ct helper sip-udp { type "sip" protocol udp; }
    ct helper sip-tcp { type "sip" protocol tcp; }
    chain helpers {
        type filter hook prerouting priority filter; policy accept;
        iifname "$vsn" udp dport 5060 ct helper set "sip-udp"
        iifname "$vsn" tcp dport 5060 ct helper set "sip-tcp"
    }
    set dropped_udp {
        type ipv4_addr . ipv4_addr . inet_service . inet_service; flags dynamic; size 1024;
    }
    chain forward_filter {
        type filter hook forward priority filter; policy accept;
        ct state established,related accept
        iifname "$vin" meta l4proto udp add @dropped_udp { ip saddr . ip daddr . udp sport . udp dport }
        iifname "$vin" counter drop comment "unsolicited from the internet"
    }
    chain pre_nat {
        type nat hook prerouting priority dstnat; policy accept;
    }
    chain post_nat {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "$vin" ip saddr 100.64.0.0/10 snat to 198.51.100.1
    }
}
NFT
    rx nft -f "$work/nat.nft" || die "nft ruleset refused"
fi

if [ "$mode" = cgnat ]; then
    write_cgnat_config "$work/cgnat.toml" sip "$vsn" "$vin" '
[alg]
sip = { enabled = true, ports = [5060], deny_methods = ["MESSAGE"] }'
    "$bin" check -c "$work/cgnat.toml" > "$work/check.txt" 2>&1 || die "config refused: $(cat "$work/check.txt")"
    start_cgnat "$bin" "$work/cgnat.toml"
fi

# Captures: everything on the subscriber's link, and both directions on the internet
# side of the NAT (in = what the NAT sent toward the internet).
ip netns exec "$sub" tcpdump -i "$vs" -nn -U -w "$work/subscriber.pcap" 2>/dev/null &
pids+=($!)
ip netns exec "$inet" tcpdump -i "$vi" -Q in -nn -U -w "$work/internet-in.pcap" 2>/dev/null &
pids+=($!)
ip netns exec "$inet" tcpdump -i "$vi" -Q out -nn -U -w "$work/internet-out.pcap" 2>/dev/null &
pids+=($!)
ip netns exec "$inet" tcpdump -i lo -nn -U -w "$work/internet-lo.pcap" udp port 5060 2>/dev/null &
pids+=($!)

up=0
for _ in $(seq 1 ${E2E_WAIT:-60}); do
    if ip netns exec "$sub" ping -c 1 -W 1 203.0.113.254 >/dev/null 2>&1; then up=1; break; fi
    if [ "$mode" = cgnat ]; then kill -0 "$cg" 2>/dev/null || die "cgnat exited early"; fi
    sleep 0.5
done
[ $up = 1 ] || die "the subscriber cannot reach 203.0.113.254 through the $mode NAT"
echo "sip-e2e: $mode bed up"

# ---------------------------------------------------------------- kamailio
kamailio_config "$work/kamailio" "$kam"
ip netns exec "$inet" kamailio -c -f "$work/kamailio/kamailio.cfg" > "$work/kamailio-check.txt" 2>&1 \
    || die "kamailio refused its config: $(tail -5 "$work/kamailio-check.txt")"
ip netns exec "$inet" kamailio -f "$work/kamailio/kamailio.cfg" -DD -E -m 32 -M 4 \
    -P "$work/kamailio.pid" -Y "$work/kamailio" -w "$work/kamailio" > "$work/kamailio.log" 2>&1 &
pids+=($!)

# ---------------------------------------------------------------- baresip
baresip_config "$work/alice" alice "$alice" "$vs" "$kam" "$rtp_lo" "$rtp_hi"
baresip_config "$work/bob" bob "$bob" bob0 "$kam" "$rtp_lo" "$rtp_hi"
ip netns exec "$sub" baresip -f "$work/alice" -v > "$work/alice.log" 2>&1 < /dev/null &
pids+=($!)
ip netns exec "$inet" baresip -f "$work/bob" -v > "$work/bob.log" 2>&1 < /dev/null &
pids+=($!)
sleep 1

# Both registered with kamailio (alice's REGISTER crosses the NAT).
if /usr/bin/python3 "$ctl" wait-reg "$sub:4444" "$inet:4444" > "$work/reg.json" 2>&1; then
    echo "sip-e2e: both registered"
else
    echo "sip-e2e: registration incomplete: $(cat "$work/reg.json")"
fi

# ---------------------------------------------------------------- checks
in_range="udp and !icmp and ((udp.srcport >= $rtp_lo and udp.srcport <= $rtp_hi) or (udp.dstport >= $rtp_lo and udp.dstport <= $rtp_hi))"
count() { # pcap t0 t1 display-filter
    tshark -r "$1" -Y "frame.time_epoch >= $2 and frame.time_epoch <= $3 and ($4)" 2>/dev/null | wc -l
}

# The NAT's state in the middle of a call: the Linux helper's expectations and
# conntrack entries, or cgnat's expectations and sessions.
snapshot() { # file-prefix
    case "$mode" in
    linux)
        rx cat /proc/net/nf_conntrack_expect > "$1-expect.txt" 2>&1
        rx cat /proc/net/nf_conntrack > "$1-conntrack.txt" 2>&1 ;;
    cgnat)
        curl -s --max-time 3 "http://127.0.0.1:$api_port/expectations" > "$1-expectations.json" 2>&1
        curl -s --max-time 3 "http://127.0.0.1:$api_port/sessions" > "$1-sessions.json" 2>&1 ;;
    esac
}

# The audio a baresip decoded during a call (sndfile's dec.wav, newest since T0):
# "SECONDS:SHARE" where SHARE is the part of its energy at 440 Hz, ausine's tone.
heard() { # dir t0
    /usr/bin/python3 - "$1" "$2" <<'PY' 2>/dev/null || echo "0:0"
import glob, math, os, struct, sys, wave
files = [f for f in glob.glob(os.path.join(sys.argv[1], "*-dec.wav")) if os.path.getmtime(f) >= float(sys.argv[2])]
if not files:
    print("0:0"); sys.exit()
w = wave.open(max(files, key=os.path.getmtime))
n, ch, rate = w.getnframes(), w.getnchannels(), w.getframerate()
x = struct.unpack("<%dh" % (n * ch), w.readframes(n))[::ch]
k = 2 * math.cos(2 * math.pi * 440 / rate)
s1 = s2 = 0.0
for v in x:
    s1, s2 = v + k * s1 - s2, s1
total = sum(v * v for v in x) * len(x) / 2
print("%.2f:%.2f" % (len(x) / rate, (s1 * s1 + s2 * s2 - k * s1 * s2) / total if total else 0))
PY
}

media_pinholes() { # file-prefix: "remote->outside" of each media expectation, comma-separated
    case "$mode" in
    linux)
        awk '/sip\/audio/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                             printf "%s%s->%s:%s", n++ ? "," : "", v["src"], v["dst"], v["dport"] }' "$1-expect.txt" 2>/dev/null ;;
    cgnat)
        /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
lo, hi = int(sys.argv[2]), int(sys.argv[3])
out = []
for e in d.get("expectations", []):
    port = int(e.get("inside", ":0").rsplit(":", 1)[1] or 0)
    if lo <= port <= hi + 1:
        out.append("%s->%s(%s)" % (e.get("remote"), e.get("outside"), e.get("inside")))
print(",".join(out))' "$1-expectations.json" "$rtp_lo" "$rtp_hi" 2>/dev/null ;;
    esac
}

# One call: start, media for $secs, hang up; judge signalling from the driver's
# timeline, media from the captures on both sides, and the BYE's 200 on the wire.
# The RTP/RTCP mappings of alice's call with bob in cgnat's sessions, sorted
# (protocol inside->outside<->remote, comma-separated).
call_mappings() {
    "$bin" show sessions --api "127.0.0.1:$api_port" --subscriber "$alice" --json 2>/dev/null \
        | /usr/bin/python3 -c '
import json, sys
lo, hi, bob = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = []
for s in json.load(sys.stdin)["sessions"]:
    port = int(s["inside"].rsplit(":", 1)[1])
    if s["remote"].startswith(bob + ":") and lo <= port <= hi + 1:
        out.append("%s:%s->%s<->%s" % (s["protocol"].lower(), s["inside"], s["outside"], s["remote"]))
print(",".join(sorted(out)))' "$rtp_lo" "$rtp_hi" "$bob" 2>/dev/null
}

# While a call is up (run by scenario): three `cgnat reload`s about a second apart,
# each after changing a live setting in the config file (nat.timeouts.udp 301, 300,
# 301); leaves the call's mappings before the first and after the last reload, each
# reload's answer (applied or not) and when the last one was answered.
reload_during_call() {
    sleep 2
    map_before=$(call_mappings)
    reload_answers="" reload_t=0
    local i v
    for i in 1 2 3; do
        v=$((i % 2 == 1 ? 301 : 300))
        if grep -q '^\[nat.timeouts\]' "$work/cgnat.toml"; then
            sed -i "s/^udp = .*/udp = $v/" "$work/cgnat.toml"
        else
            printf '\n[nat.timeouts]\nudp = %s\n' "$v" >> "$work/cgnat.toml"
        fi
        if "$bin" reload -c "$work/cgnat.toml" > "$work/reload-$i.txt" 2>&1 \
            && grep -q "^changed nat.timeouts.udp: .* -> $v" "$work/reload-$i.txt"; then
            reload_answers="$reload_answers${reload_answers:+,}applied"
        else
            reload_answers="$reload_answers${reload_answers:+,}NOT-applied"
        fi
        reload_t=$(date +%s.%N)
        [ "$i" = 3 ] || sleep 1
    done
    map_after=$(call_mappings)
}

scenario() { # name caller callee uri [seconds [during-call-function]]
    local name=$1 caller=$2 callee=$3 uri=$4 json="$work/call-$1.json"
    local secs=${5:-$secs} during=${6:-}
    local callerns=$sub calleens=$inet
    [ "$caller" = bob ] && { callerns=$inet; calleens=$sub; }
    /usr/bin/python3 "$ctl" call "$caller=$callerns:4444" "$callee=$calleens:4444" "$uri" "$secs" > "$json" 2> "$work/call-$name.err" &
    local callpid=$!
    if [ -n "$during" ]; then
        "$during"
    else
        sleep "$(echo "$secs / 2 + 0.5" | bc -l)"
    fi
    snapshot "$work/midcall-$name"
    wait "$callpid"
    local rc=$?
    sleep 0.5
    local t0 t1 m0 m1 est rtpe
    read -r t0 t1 m0 m1 est rtpe < <(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = d.get("rtpestab", {})
print(d["start"], d["end"], d.get("media_start", d["start"]), d.get("media_end", d["end"]),
      int(bool(d.get("established"))), "%d/%d" % (r.get("caller", 0), r.get("callee", 0)))' "$json" 2>/dev/null || echo "0 0 0 0 0 0/0")
    # RTP (even ports) between alice and bob while the call is up: alice's side from
    # the subscriber capture, bob's side from the internet captures (in = toward bob).
    local a_tx a_rx b_tx b_rx a_rtcp b_rtcp bye200
    a_tx=$(count "$work/subscriber.pcap" "$m0" "$m1" "ip.src == $alice and $in_range and udp.srcport % 2 == 0")
    a_rx=$(count "$work/subscriber.pcap" "$m0" "$m1" "ip.dst == $alice and $in_range and udp.dstport % 2 == 0")
    b_tx=$(count "$work/internet-out.pcap" "$m0" "$m1" "ip.src == $bob and $in_range and udp.srcport % 2 == 0")
    b_rx=$(count "$work/internet-in.pcap" "$m0" "$m1" "ip.dst == $bob and $in_range and udp.dstport % 2 == 0")
    a_rtcp=$(count "$work/subscriber.pcap" "$t0" "$t1" "ip.dst == $alice and $in_range and udp.dstport % 2 == 1")
    b_rtcp=$(count "$work/internet-in.pcap" "$t0" "$t1" "ip.dst == $bob and $in_range and udp.dstport % 2 == 1")
    # The BYE answered 200, seen by the caller.
    local cap=$work/subscriber.pcap
    bye200=$(tshark $sip_as -r "$cap" -Y "frame.time_epoch >= $t0 and frame.time_epoch <= $t1 + 1 and sip.Status-Code == 200 and sip.CSeq.method == \"BYE\"" 2>/dev/null | wc -l)
    local a_heard b_heard
    a_heard=$(heard "$work/alice/audio" "$t0")
    b_heard=$(heard "$work/bob/audio" "$t0")
    local ok=1 why=""
    good_audio() { /usr/bin/python3 -c 'import sys; s, r = map(float, sys.argv[1].split(":")); sys.exit(not (s >= 1 and r >= 0.8))' "$1"; }
    good_audio "$a_heard" || { ok=0; why="$why alice-heard-no-440Hz"; }
    good_audio "$b_heard" || { ok=0; why="$why bob-heard-no-440Hz"; }
    [ "$rc" = 0 ] && [ "$est" = 1 ] || { ok=0; why="$why driver(rc=$rc,established=$est)"; }
    [ "$a_rx" -ge "$min_rtp" ] || { ok=0; why="$why alice-rx-rtp<$min_rtp"; }
    [ "$b_rx" -ge "$min_rtp" ] || { ok=0; why="$why bob-rx-rtp<$min_rtp"; }
    [ "$a_rtcp" -ge "$min_rtcp" ] || { ok=0; why="$why alice-rx-rtcp<$min_rtcp"; }
    [ "$b_rtcp" -ge "$min_rtcp" ] || { ok=0; why="$why bob-rx-rtcp<$min_rtcp"; }
    [ "$bye200" -ge 1 ] || { ok=0; why="$why no-200-to-BYE-at-alice"; }
    # What alice's SDP looked like once it left the NAT, and the media pinholes the NAT
    # held in the middle of the call (remote->outside).
    local sdp_out pins
    sdp_out=$(tshark $sip_as -r "$work/internet-in.pcap" -Y "frame.time_epoch >= $t0 and frame.time_epoch <= $t1 and sdp" \
        -T fields -e sdp.connection_info.address -e sdp.media.port 2>/dev/null | tr '\t' ':' | tr '\n' ',' | sed 's/,$//')
    pins=$(media_pinholes "$work/midcall-$name")
    local after=""
    if [ "$during" = reload_during_call ]; then
        # RTP through the NAT both ways from the last reload's answer to the media's end
        # (alice's from the subscriber link, bob's toward bob), and the same mappings.
        local a_rx2 b_rx2
        a_rx2=$(count "$work/subscriber.pcap" "$reload_t" "$m1" "ip.dst == $alice and $in_range and udp.dstport % 2 == 0")
        b_rx2=$(count "$work/internet-in.pcap" "$reload_t" "$m1" "ip.dst == $bob and $in_range and udp.dstport % 2 == 0")
        [ "$reload_answers" = applied,applied,applied ] || { ok=0; why="$why reload-not-applied"; }
        # This call's own sessions: those whose outside is the media address alice's
        # SDP announced toward the internet (RTP) or the port above it (RTCP); the
        # earlier calls' sessions are still there, idle.
        local rtp_out=${sdp_out%%,*} call_before call_after port
        port=${rtp_out##*:}
        [[ $port =~ ^[0-9]+$ ]] || port=0
        local rtcp_out=${rtp_out%:*}:$((port + 1))
        call_before=$(echo "$map_before" | tr ',' '\n' | grep -F -e "->$rtp_out<" -e "->$rtcp_out<" | paste -sd,)
        call_after=$(echo "$map_after" | tr ',' '\n' | grep -F -e "->$rtp_out<" -e "->$rtcp_out<" | paste -sd,)
        [ "$a_rx2" -ge "$min_rtp_after" ] || { ok=0; why="$why alice-rx-rtp-after-reloads<$min_rtp_after"; }
        [ "$b_rx2" -ge "$min_rtp_after" ] || { ok=0; why="$why bob-rx-rtp-after-reloads<$min_rtp_after"; }
        case "$call_before" in *"->$rtp_out<"*) ;; *) ok=0; why="$why no-rtp-mapping-before-reloads";; esac
        [ "$call_after" = "$call_before" ] || { ok=0; why="$why mappings-changed"; }
        after=" reloads=$reload_answers last_reload_to_media_end=$(echo "$m1 - $reload_t" | bc -l | xargs printf %.2f)s alice_rtp_rx_after_reloads=$a_rx2 bob_rtp_rx_after_reloads=$b_rx2 mappings_before=${call_before:-none} mappings_after=${call_after:-none}"
    fi
    result "$name" "$ok" "uri=$uri alice_rtp_tx=$a_tx alice_rtp_rx=$a_rx bob_rtp_tx=$b_tx bob_rtp_rx=$b_rx alice_rtcp_rx=$a_rtcp bob_rtcp_rx=$b_rtcp rtpestab_caller/callee=$rtpe alice_heard=$a_heard bob_heard=$b_heard bye_200=$bye200 sdp_toward_internet=${sdp_out:-none} midcall_media_pinholes=${pins:-none}$after${why:+ failed:$why}"
    sleep 0.5
}

if [ "${SIP_CALLS:-1}" = 1 ]; then
    scenario direct alice bob "sip:bob@$bob"
    scenario proxy alice bob "sip:bob@$kam"
    scenario incoming bob alice "sip:alice@$kam"
    # Opt-in: the direct call with SIP over TCP (SDP rewrites change the stream's length).
    [ "${SIP_TCP:-0}" = 1 ] && scenario direct-tcp alice bob "sip:bob@$bob;transport=tcp"
    # cgnat: the direct call, longer, with three live reloads while it is up.
    [ "$mode" = cgnat ] && scenario reloads alice bob "sip:bob@$bob" "$reload_secs" reload_during_call
fi

# ---------------------------------------------------------------- split INVITE over TCP
# sip-split-tcp.py sends an INVITE with SDP from alice's address to the recorder at
# $probe:5060 (TCP), which keeps what arrived and answers 486; the INVITE goes whole
# (whole-tcp, the control) or in two segments 0.3 s apart, cut inside the SDP c=
# address (split-tcp). Passes when no inside address reached the internet (what the
# recorder got and what the internet-side capture saw) and the message arrived whole
# and consistent: Content-Length equal to the body that came, every line that did not
# name the inside address unchanged. The subscriber capture must show the first
# segment ending at the cut, or the case did not happen.
split_probe() { # name split pause
    local name=$1 split=$2 pause=$3 json="$work/split-$1.json"
    local n0 n1
    n0=$(ls "$work/recorder" 2>/dev/null | wc -l)
    ip netns exec "$sub" /usr/bin/python3 "$splitpy" send "$alice" "$probe" 5060 "$split" "$json" "$pause" \
        > "$work/split-$name.out" 2>&1
    for _ in $(seq 1 40); do
        n1=$(ls "$work/recorder" 2>/dev/null | wc -l)
        [ "$n1" -gt "$n0" ] && break
        sleep 0.25
    done
    # tcpdump hands packets over up to a second late.
    sleep 1.2
    local rec="$work/recorder/conn-$((n0 + 1)).json"
    local lport at t0 t1 status
    read -r lport at t0 t1 < <(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["lport"], d["at"], d["start"], d["end"])' "$json" 2>/dev/null || echo "0 0 0 0")
    local judged sub_segs net_segs net_leak first
    # The connection's data segments toward the recorder, to compare with its stream.
    local pport
    pport=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["peer"].split(":")[1])' "$rec" 2>/dev/null || echo 0)
    tshark -r "$work/internet-in.pcap" -Y "frame.time_epoch >= $t0 and frame.time_epoch <= $t1 + 1 and ip.dst == $probe and tcp.srcport == $pport and tcp.len > 0" \
        -T fields -e tcp.seq -e tcp.payload > "$work/split-$name-wire.txt" 2>/dev/null
    judged=$(/usr/bin/python3 "$splitpy" judge "$json" "$rec" "$work/split-$name-wire.txt" 2>&1 | tail -1)
    # Data segments alice sent on the connection, and those that reached the internet
    # side (with retransmissions marked r), by length.
    sub_segs=$(tshark -r "$work/subscriber.pcap" -Y "ip.src == $alice and tcp.srcport == $lport and tcp.dstport == 5060 and tcp.len > 0" \
        -T fields -e tcp.len -e tcp.analysis.retransmission 2>/dev/null | awk '{ printf "%s%s%s", n++ ? "," : "", $1, (NF > 1 ? "r" : "") }')
    net_segs=$(tshark -r "$work/internet-in.pcap" -Y "frame.time_epoch >= $t0 and frame.time_epoch <= $t1 + 1 and ip.dst == $probe and tcp.dstport == 5060 and tcp.len > 0" \
        -T fields -e tcp.len -e tcp.analysis.retransmission 2>/dev/null | awk '{ printf "%s%s%s", n++ ? "," : "", $1, (NF > 1 ? "r" : "") }')
    net_leak=$(tshark -r "$work/internet-in.pcap" -Y "frame.time_epoch >= $t0 and frame.time_epoch <= $t1 + 1 and ip.dst == $probe and tcp.len > 0" \
        -T fields -e tcp.payload 2>/dev/null | /usr/bin/python3 -c '
import re, sys
n = 0
for line in sys.stdin:
    h = line.strip().replace(":", "")
    if h and re.search(rb"100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.", bytes.fromhex(h)):
        n += 1
print(n)' 2>/dev/null || echo unreadable)
    first=${sub_segs%%,*}
    local ok=1 why=""
    case "$judged" in *" leak=0 "*) ;; *) ok=0; why="$why inside-address-at-recorder";; esac
    [ "$net_leak" = 0 ] || { ok=0; why="$why inside-address-in-$net_leak-segments-toward-internet"; }
    case "$judged" in *" whole=1 "*) ;; *) ok=0; why="$why not-whole";; esac
    case "$judged" in *" consistent=1 "*) ;; *) ok=0; why="$why not-consistent";; esac
    case "$judged" in *" media_in=0 "*) ok=0; why="$why no-media-through-the-sdp-port";; esac
    case "$judged" in *" answer=486 "*) ;; *) ok=0; why="$why no-486-back-at-alice";; esac
    if [ "$split" != whole ] && [ "${first%r}" != "$at" ]; then ok=0; why="$why not-split-on-the-wire"; fi
    result "$name" "$ok" "split=$split cut_at=$at pause=$pause subscriber_segments=${sub_segs:-none} toward_internet_segments=${net_segs:-none} segments_with_100.64_toward_internet=$net_leak $judged${why:+ failed:$why}"
}
ip netns exec "$inet" /usr/bin/python3 "$splitpy" record "$probe" 5060 "$work/recorder" > "$work/recorder.log" 2>&1 &
pids+=($!)
sleep 0.5
if [ "$mode" = routed ]; then
    echo "sip-e2e: routed mode has no NAT, no split probes"
else
    split_probe whole-tcp whole 0
    split_probe split-tcp "${SIP_SPLIT:-sdp}" "${SIP_SPLIT_PAUSE:-0.05}"
    # The same with the second part late: a NAT that holds the first part
    # unacknowledged sees it retransmitted (after ~200 ms) before the rest comes.
    split_probe split-tcp-late "${SIP_SPLIT:-sdp}" 0.6
fi

# ---------------------------------------------------------------- request policy
# (cgnat) alg.sip.deny_methods = ["MESSAGE"]: a MESSAGE from alice's address to
# kamailio gets 405 Method Not Allowed in kamailio's name (Via, Call-ID and CSeq copied,
# an Allow without MESSAGE) and never reaches the internet side; an OPTIONS from the
# same socket right after gets kamailio's own answer.
if [ "$mode" = cgnat ]; then
    pol=$(ip netns exec "$sub" /usr/bin/python3 - "$alice" "$kam" <<'PY' 2>&1
import socket, sys
me, kam = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 5072)); s.settimeout(3)
def ask(method, n):
    m = (f"{method} sip:bob@{kam} SIP/2.0\r\nVia: SIP/2.0/UDP {me}:5072;branch=z9hG4bK-pol{n};rport\r\n"
         f"Max-Forwards: 70\r\nFrom: <sip:alice@{me}>;tag=p{n}\r\nTo: <sip:bob@{kam}>\r\n"
         f"Call-ID: pol{n}@{me}\r\nCSeq: {n} {method}\r\nContent-Type: text/plain\r\n"
         f"Content-Length: 2\r\n\r\nhi")
    s.sendto(m.encode(), (kam, 5060))
    while True:
        data, src = s.recvfrom(4096)
        r = data.decode(errors="replace")
        if not r.startswith("SIP/2.0 1"):
            return r, src
r, src = ask("MESSAGE", 1)
first = r.split("\r\n")[0]
ok = (first == "SIP/2.0 405 Method Not Allowed" and src == (kam, 5060) and "CSeq: 1 MESSAGE" in r
      and "Call-ID: pol1@" in r and "branch=z9hG4bK-pol1" in r and "MESSAGE" not in r.split("Allow:")[1].split("\r\n")[0])
r2, src2 = ask("OPTIONS", 2)
second = r2.split("\r\n")[0]
ok = ok and src2 == (kam, 5060) and "CSeq: 2 OPTIONS" in r2 and "405 Method Not Allowed" not in second
print(int(ok), f"message_reply={first!r} options_reply={second!r}")
PY
)
    sleep 0.5
    reached=$(tshark $sip_as -r "$work/internet-in.pcap" -Y 'sip.Method == "MESSAGE"' 2>/dev/null | wc -l)
    ok=${pol%% *}
    [ "$reached" = 0 ] || ok=0
    result policy-message "${ok:-0}" "${pol#* } messages_toward_internet=$reached"
fi

# ---------------------------------------------------------------- leak check
sleep 0.5
mergecap -w "$work/internet-sip.pcap" "$work/internet-in.pcap" "$work/internet-out.pcap" 2>/dev/null
tshark $sip_as -r "$work/internet-in.pcap" -Y sip -T fields -e frame.time_epoch -e ip.src -e ip.dst \
    -e sip.Request-Line -e sip.Status-Line -e sip.Via -e sip.Contact -e sdp.connection_info -e sdp.media \
    > "$work/internet-in-sip.txt" 2>/dev/null
# The calls' and registrations' traffic: the probes to $probe have their own verdicts
# (whole-tcp, split-tcp, split-tcp-late), so one probe's leak is not counted twice.
tshark -r "$work/internet-in.pcap" -Y "!(ip.addr == $probe)" -w "$work/internet-in-calls.pcap" 2>/dev/null
leak_hdr=$(tshark -r "$work/internet-in.pcap" -Y "ip.addr == 100.64.0.0/10" 2>/dev/null | wc -l)
leak_txt=$(grep -a -c '100\.64\.' "$work/internet-in-calls.pcap" || true)
sip_msgs=$(awk -F'\t' -v probe="$probe" '$3 != probe' "$work/internet-in-sip.txt" | wc -l)
# Where the inside address was, in those SIP messages.
leak_where=$(awk -F'\t' -v probe="$probe" '$3 != probe {
        if ($0 ~ /100\.64\./) f++
        if ($4 ~ /100\.64\./) r++; if ($6 ~ /100\.64\./) v++; if ($7 ~ /100\.64\./) c++; if ($8 ~ /100\.64\./) s++ }
    END { printf "sip_messages_with_100.64=%d in_request_line=%d in_via=%d in_contact=%d in_sdp_c=%d", f, r, v, c, s }' "$work/internet-in-sip.txt")
if [ "$mode" = routed ]; then
    echo "sip-e2e: routed mode has no NAT, no leak check ($leak_hdr packets with 100.64 headers, as expected)"
elif [ "$leak_hdr" = 0 ] && [ "$leak_txt" = 0 ] && [ "$sip_msgs" -gt 0 ]; then
    result leak 1 "sip_messages_toward_internet=$sip_msgs ip_headers_with_100.64=0 payload_lines_with_100.64=0"
else
    result leak 0 "sip_messages_toward_internet=$sip_msgs ip_headers_with_100.64=$leak_hdr pcap_lines_with_100.64=$leak_txt $leak_where (see internet-in-sip.txt)"
fi

# ---------------------------------------------------------------- pinholes
if [ "$mode" = cgnat ]; then
    sleep 1
    curl -s --max-time 3 "http://127.0.0.1:$api_port/expectations" > "$work/expectations.json"
    echo "sip-e2e: expectations after the calls: $(cat "$work/expectations.json")"
    left=$(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
lo, hi = int(sys.argv[2]), int(sys.argv[3])
n = 0
for e in d.get("expectations", []):
    port = int(e.get("inside", ":0").rsplit(":", 1)[1] or 0)
    if lo <= port <= hi + 1:
        n += 1
print(n)' "$work/expectations.json" "$rtp_lo" "$rtp_hi" 2>/dev/null || echo unreadable)
    [ "$left" = 0 ] && result pinholes 1 "sip_media_expectations_left=0" \
        || result pinholes 0 "sip_media_expectations_left=$left"
    curl -s --max-time 3 "http://127.0.0.1:$api_port/counters" > "$work/counters.json"
fi
if [ "$mode" = linux ]; then
    snapshot "$work/after"
    rx nft list ruleset > "$work/nft-after.txt" 2>&1
    echo "sip-e2e: inbound dropped by the filter: $(grep -o 'counter packets [0-9]*' "$work/nft-after.txt")," \
        "udp flows: $(sed -n '/set dropped_udp/,/}/p' "$work/nft-after.txt" | grep -o '[0-9.]* \. [0-9.]* \. [0-9]* \. [0-9]*' | tr '\n' ';')"
fi

# Every SIP message on both sides of the NAT in time order, to read what went wrong:
# side (sub = subscriber link, out = toward the internet, in = from the internet).
for side in sub:subscriber in:internet-in out:internet-out; do
    tshark $sip_as -r "$work/${side#*:}.pcap" -Y sip -T fields -E separator='|' -e frame.time_epoch -e ip.src -e udp.srcport \
        -e tcp.srcport -e ip.dst -e udp.dstport -e tcp.dstport -e sip.Request-Line -e sip.Status-Line -e sip.Via \
        -e sip.Contact -e sdp.connection_info -e sdp.media 2>/dev/null | sed "s/^/${side%%:*}|/"
done | sed 's/^in|/toward-internet|/; s/^out|/from-internet|/' | sort -t'|' -k2,2 > "$work/sip-flow.txt"

if [ $failed = 1 ] && [ "$mode" = cgnat ]; then
    echo "--- cgnat counters (alg)"
    /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps(d.get("alg", d)))' "$work/counters.json" 2>/dev/null \
        || head -c 2000 "$work/counters.json"
    echo "--- cgnat log (tail)"; tail -20 "$work/cgnat.log"
    echo "--- SIP flow: $work/sip-flow.txt"
fi
if [ $failed = 0 ]; then echo "SIP-E2E PASS"; else echo "SIP-E2E FAIL (${results[*]})"; exit 1; fi
