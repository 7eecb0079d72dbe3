#!/usr/bin/env bash
# PPTP end-to-end test bed: PPTP control connections (real TCP) and enhanced GRE
# (version 1, built and sent with scapy) from 2 and then 100 client addresses behind
# one pool address to one server, through cgnat's PPTP ALG or through Linux's NAT with
# its PPTP helper (nf_conntrack_pptp, nf_nat_pptp), side by side. Needs root.
#
# No real PPTP software runs here: this kernel has no PPP (CONFIG_PPP is not set), so
# pptpd and pptp-linux (which hand the call to pppd) cannot run. The server is
# scripts/pptp-peer.py (the control protocol of RFC 2637 on TCP 1723, and an echo of
# each GRE packet to its call's peer Call ID); the clients are scripts/pptp-clients.py
# (real TCP control connections bound to their own addresses, every client with Call
# ID 1, GRE from scapy; Debian's python3 with python3-scapy).
#
# Usage: pptp-e2e.sh MODE CGNAT_BINARY WORKDIR
#   MODE cgnat   cgnat runs in the root namespace on the veth ends (net_af_packet),
#                pool 198.51.100.1/32, address-and-port-dependent filtering,
#                [alg.pptp] on port 1723; prints PPTP-E2E PASS only if every required
#                check passed.
#   MODE linux   a router namespace: nftables snat of 100.64/10 to 198.51.100.1 and
#                `ct helper "pptp"` on tcp 1723, new connections only from inside;
#                report only (required=0).
#   CGNAT_BINARY is only used in cgnat mode (pass - otherwise).
#   PPTP_E2E_CLIENTS: how many clients (100).
#   PPTP_E2E_ALG=0 (cgnat mode): no [alg.pptp]; GRE is then translated by address
#                alone (nat.protocols), which one pool address cannot do for two
#                subscribers talking to the same server.
#   PPTP_E2E_SERVER_CALL_ID: the server's first Call ID (2): its Call IDs 2, 3, ... are
#                the numbers cgnat gives its translations (1, 2, ...) one call apart,
#                so that a NAT that took one kind for the other would pick another
#                client's call.
#   PPTP_E2E_HELPER=0 (linux mode): no ct helper, plain snat; shows what the bed sees
#                when nothing translates the Call IDs.
#
#   subscriber ns                     cgnat (root ns) or router ns               internet ns
#   pvs 100.64.1.1-100/10, 100.64.2.1 <veth> pvsn [inside 100.64.0.1]  [outside 203.0.113.1]  pvin <veth> pvi 203.0.113.254/24
#                                                                          lo: 192.0.2.10 (server)
#
# Output: one line per check, "PPTP-RESULT name=N ok=0|1 required=0|1 detail=...";
# evidence (server log, captures, counters) in WORKDIR.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
. "$here/lib/cgnat-bed.sh"
# PPTP on any TCP port from 1024: a translated port must not hide it.
pptp_as=$(decode_as tcp pptp)
mode=${1:?usage: pptp-e2e.sh cgnat|linux CGNAT_BINARY WORKDIR}
bin=${2:?CGNAT_BINARY (or -)}
work=$(realpath -m "${3:?WORKDIR}")
case "$mode" in
cgnat) bin=$(realpath "$bin") ;;
linux) ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
PY=/usr/bin/python3 # Debian's python3, which has python3-scapy
for tool in tshark tcpdump nft ethtool curl; do
    command -v "$tool" >/dev/null || { echo "PPTP-E2E FAIL: $tool is not installed (scripts/install-deps.sh --test)" >&2; exit 1; }
done
$PY -c 'import scapy.all' 2>/dev/null || { echo "PPTP-E2E FAIL: python3-scapy is not installed (scripts/install-deps.sh --test)" >&2; exit 1; }
nclients=${PPTP_E2E_CLIENTS:-100}
rm -rf "$work"
mkdir -p "$work"
bed_init pp
rtr=pprtr$tag
server=192.0.2.10
# (The router namespace exists in linux mode only.)
trap 'bed_teardown "$sub" "$inet" "$rtr" -- "$vsn" "$vin"' EXIT

result_label=PPTP

# ---- topology: the bed of scripts/lib/cgnat-bed.sh, the clients' addresses on the
# subscriber's link (the kernel answers ARP for each)
bed_up "$sub" "$inet" "$vs" "$vsn" "$vi" "$vin"
for i in $(seq 1 "$nclients"); do
    ip -n "$sub" addr add "100.64.1.$i/10" dev "$vs"
done
ip -n "$sub" addr add 100.64.2.1/10 dev "$vs" # two calls on one control connection
if [ "$mode" = linux ]; then
    router_up "$rtr" "$vsn" "$vin"
    helper_rule='ct state new tcp dport 1723 ct helper set "pptp-1723"'
    [ "${PPTP_E2E_HELPER:-1}" = 0 ] && helper_rule="# PPTP_E2E_HELPER=0: no helper"
    # Helpers are assigned explicitly (automatic assignment is off in current kernels);
    # from the internet only what conntrack relates to a connection from inside.
    cat > "$work/linux-nat.nft" <<NFT
table ip pptpbed {
    ct helper pptp-1723 {
        type "pptp" protocol tcp
        l3proto ip
    }
    chain helpers {
        type filter hook prerouting priority filter; policy accept;
        $helper_rule
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related counter accept
        iifname "$vsn" oifname "$vin" ct state new counter accept
        counter comment "dropped: new from the internet side"
    }
    chain outbound_nat {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "$vin" ip saddr 100.64.0.0/10 snat to 198.51.100.1
    }
}
NFT
    ip netns exec "$rtr" nft -f "$work/linux-nat.nft" || die "nft ruleset refused"
else
    alg='
[alg.pptp]
enabled = true
ports = [1723]'
    [ "${PPTP_E2E_ALG:-1}" = 0 ] && alg=""
    # The 100 client addresses share one MAC: cgnat's per-source ARP budget (16 a second)
    # would make resolving them take seconds. One pool address for them all; blocks of
    # 256 ports give it 252 subscribers (512 would give 126, for the 101 here).
    bed_dataplane='arp_per_source = 1000' bed_pool='"198.51.100.1/32"' write_cgnat_config "$work/cgnat.toml" pptp "$vsn" "$vin" "
block_size = 256
$alg"
    "$bin" check -c "$work/cgnat.toml" > "$work/check.txt" 2>&1 || die "config refused: $(cat "$work/check.txt")"
    start_cgnat "$bin" "$work/cgnat.toml"
fi

# ---- captures: what reaches the internet, and what the subscriber sees
ip netns exec "$inet" tcpdump -i "$vi" -nn -U -s 0 -w "$work/internet.pcap" 'tcp port 1723 or ip proto 47' 2>/dev/null &
cap_inet=$!
pids+=("$cap_inet")
ip netns exec "$sub" tcpdump -i "$vs" -nn -U -s 0 -w "$work/subscriber.pcap" 'tcp port 1723 or ip proto 47' 2>/dev/null &
cap_sub=$!
pids+=("$cap_sub")

gateway_up "$server"

# ---- the server
: > "$work/server.jsonl"
ip netns exec "$inet" $PY "$here/pptp-peer.py" "$server" "$work/server.jsonl" "${PPTP_E2E_SERVER_CALL_ID:-2}" \
    > "$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do grep -q listening "$work/server.jsonl" && break; sleep 0.1; done
grep -q listening "$work/server.jsonl" || die "pptp-peer.py did not start: $(cat "$work/server.log")"

if [ "$mode" = cgnat ]; then
    curl -s --max-time 3 "http://127.0.0.1:$api_port/counters" > "$work/counters-before.json" || true
fi

# ---- the clients: two, then all, then a call cleared
ip netns exec "$sub" timeout 80 $PY "$here/pptp-clients.py" "$server" "$work/server.jsonl" \
    "$work/clients.json" "$(req)" "$nclients" > "$work/clients.out" 2> "$work/clients.err" &
client=$!
pids+=("$client")
# In cgnat mode, the PPTP calls `cgnat show expectations` lists while the clients run
# (class pptp_call), twice a second.
count_calls() {
    curl -s --max-time 2 "http://127.0.0.1:$api_port/expectations" | $PY -c "
import json, sys
try:
    print(sum(1 for x in json.load(sys.stdin)['expectations'] if x.get('class') == 'pptp_call'))
except Exception:
    print('?')"
}
while kill -0 "$client" 2>/dev/null; do
    [ "$mode" = cgnat ] && count_calls >> "$work/calls-listed.txt"
    sleep 0.5
done
rc=0
wait "$client" || rc=$?
grep '^PPTP-RESULT' "$work/clients.out" || true
while read -r line; do results+=("$line"); done < <(grep '^PPTP-RESULT' "$work/clients.out" || true)
if grep -q '^PPTP-RESULT .* ok=0 required=1 ' "$work/clients.out"; then failed_required=1; fi
if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
    result clients-ran 0 "$(req)" "pptp-clients.py exited $rc: $(tail -3 "$work/clients.err" | tr '\n' ' ')"
fi

# ---- cgnat: the drop of the cleared call's GRE is counted, and what the ALG counted
if [ "$mode" = cgnat ]; then
    # The calls listed: up to the live ones (100 before the clear, 101 after the two
    # calls on one connection) while the clients ran; and none once every control
    # connection has closed (FIN both ways) and the linger of a closed connection's
    # calls (10 s, and a margin for the once-a-second sweep) is past.
    sleep 12
    left=$(count_calls)
    most=$(grep -x '[0-9]*' "$work/calls-listed.txt" | sort -n | tail -1)
    if [ "${most:-0}" -ge "$nclients" ] && [ "${most:-0}" -le $((nclients + 2)) ]; then
        result calls-listed 1 1 "cgnat show expectations listed up to $most PPTP calls while the clients ran"
    else
        result calls-listed 0 1 "cgnat show expectations listed up to ${most:-none} PPTP calls while the clients ran (want $nclients to $((nclients + 2)))"
    fi
    result calls-after-close "$([ "$left" = 0 ] && echo 1 || echo 0)" 1 "$left PPTP calls listed 12 s after every control connection closed"
    curl -s --max-time 3 "http://127.0.0.1:$api_port/counters" > "$work/counters.json" || true
    # Every counter whose name speaks of GRE, PPTP, calls or address-only sessions, and
    # what it rose by.
    $PY - "$work/counters-before.json" "$work/counters.json" > "$work/gre-counters.txt" <<'PY' || true
import json, re, sys
def flat(v, path, out):
    if isinstance(v, dict):
        for k, x in v.items():
            flat(x, path + [k], out)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        out[".".join(path)] = v
    return out
try:
    a = flat(json.load(open(sys.argv[1])), [], {})
except Exception:
    a = {}
b = flat(json.load(open(sys.argv[2])), [], {})
for k in sorted(b):
    words = set(re.split(r"[._]", k.lower()))
    if (words & {"gre", "pptp", "call", "calls"} or "other_protocol" in k) and b[k] != a.get(k, 0):
        print("%s=%+d" % (k, b[k] - a.get(k, 0)))
PY
    echo "pptp-e2e: counters that moved: $(tr '\n' ' ' < "$work/gre-counters.txt")"
    nocall=$(awk -F= '$1 == "dropped.gre_no_call" {print $2+0}' "$work/gre-counters.txt" | head -1)
    sent=$($PY -c "import json,sys; print(json.load(open(sys.argv[1])).get('after_clear', {}).get('sent', 0))" "$work/clients.json" 2>/dev/null || echo 0)
    if [ -n "$nocall" ] && [ "$nocall" -ge "$sent" ] && [ "$sent" -gt 0 ]; then
        result cleared-call-counted 1 1 "gre_no_call rose by $nocall for $sent GRE packets sent on the cleared call"
    else
        result cleared-call-counted 0 1 "gre_no_call rose by ${nocall:-nothing} for $sent GRE packets sent on the cleared call; moved: $(tr '\n' ' ' < "$work/gre-counters.txt")"
    fi
    # The clear sent again and the notify sent again for it (clear-resent): each
    # given the ended call's translation, counted.
    resent=$(awk -F= '$1 ~ /pptp\.ends_resent$/ {print $2+0}' "$work/gre-counters.txt" | head -1)
    result ends-resent-counted "$([ "${resent:-0}" = 2 ] && echo 1 || echo 0)" 1 "pptp ends_resent rose by ${resent:-nothing} for the clear and the notify sent again after the call ended (want 2)"
else
    ip netns exec "$rtr" nft list table ip pptpbed > "$work/linux-nft-after.txt" 2>&1 || true
fi

# ---- what reached the internet side: never a 100.64/10 address
sleep 0.5
kill "$cap_inet" "$cap_sub" 2>/dev/null || true
sleep 0.5
if [ "$mode" = cgnat ]; then nat_mac=$(cat "/sys/class/net/$vin/address"); else nat_mac=$(ip netns exec "$rtr" cat "/sys/class/net/$vin/address"); fi
out="eth.src == $nat_mac"
tshark -r "$work/internet.pcap" -Y "$out && ip" -T fields -E occurrence=f -e ip.src -e ip.proto 2>/dev/null | sort | uniq -c > "$work/sources.txt" || true
hdr=$(tshark -r "$work/internet.pcap" -Y "$out && (ip.src == 100.64.0.0/10 || ip.dst == 100.64.0.0/10)" 2>/dev/null | wc -l)
srcs=$(awk '{printf "%s(proto %s):%s ", $2, $3, $1}' "$work/sources.txt")
[ "$hdr" = 0 ] && [ -s "$work/sources.txt" ] && result no-inside-address 1 "$(req)" "sources toward the server: $srcs" \
    || result no-inside-address 0 "$(req)" "$hdr packets with 100.64/10 in the IP header; sources $srcs"
# The Call IDs as each side saw them (GRE keys toward the subscribers), for the record.
for side in subscriber internet; do
    tshark $pptp_as -r "$work/$side.pcap" -Y 'pptp' -T fields -e ip.src -e ip.dst -e pptp.type -e pptp.call_id -e pptp.peer_call_id \
        2>/dev/null > "$work/pptp-$side.txt" || true
done

# ---- cgnat stops cleanly
if [ "$mode" = cgnat ]; then
    end_cgnat "$cg"
    [ "$cg_rc" = 0 ] && result cgnat-clean-exit 1 1 "" || result cgnat-clean-exit 0 1 "rc=$cg_rc"
fi

if [ "$mode" = cgnat ]; then
    if [ "$failed_required" = 0 ]; then echo "PPTP-E2E PASS"; else echo "PPTP-E2E FAIL"; exit 1; fi
else
    echo "PPTP-E2E REPORT mode=$mode (nothing required)"
fi
