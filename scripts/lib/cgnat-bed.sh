# Shared by the end-to-end beds (netns-e2e.sh, sip-e2e.sh, rtsp-e2e.sh, irc-e2e.sh): source it.

# An unused loopback TCP port (for the API, metrics and HA sync listeners, so parallel
# beds do not collide). Taken outside the kernel's ephemeral range
# (net.ipv4.ip_local_port_range): a port the kernel hands out to the first thing that
# connects could be taken by an outgoing connection (one appliance's HA link to the
# other) between its pick and the listener's start, which happened to the HA bed. A
# port picked once by this shell (its pid: $$ in a command substitution too) is not
# picked again.
free_port() {
    python3 - "$$" <<'PY'
import random, socket, sys
lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
span = range(10000, lo) if lo > 12000 else range(hi + 1, 65536)
seen_file = f"/tmp/cgnat-bed-ports.{sys.argv[1]}"
try:
    seen = {int(x) for x in open(seen_file).read().split()}
except OSError:
    seen = set()
for _ in range(1000):
    p = random.choice(span)
    if p in seen:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    with open(seen_file, "a") as f:
        f.write(f"{p}\n")
    print(p)
    break
else:
    sys.exit("free_port: no free port outside the ephemeral range")
PY
}

# Forgets the ports free_port picked for this shell (its record in /tmp): for the
# bed's exit trap (bed_down does it).
free_ports_forget() {
    rm -f "/tmp/cgnat-bed-ports.$$"
}

# decode_as TRANSPORT... PROTOCOL: tshark arguments that read every TRANSPORT (udp,
# tcp) port from 1024 up as PROTOCOL. tshark picks a payload's dissector by the lower
# of its two ports when both have one, so a translated source port that happens to be
# a registered one below the server's (1194 OpenVPN, 1719 H.225, 3306 MySQL, 4789
# VXLAN, under SIP's 5060, RTSP's 8554, PPTP's 1723) hides the message from a
# protocol filter: a clean-clone CI run saw every SIP message of the mapping
# 198.51.100.10:1194 decoded as OpenVPN, no SDP toward the internet, and a leak check
# that read 4 SIP messages of the run's dozens. Use it where the ports at 1024 and up
# that a filter looks at carry that protocol (the captures' other traffic keeps its
# own dissectors when the filter names the protocol, RTP and RTCP included: those
# follow the SDP or RTSP that set them up).
decode_as() {
    local n=$# proto=${!#} t
    for t in "${@:1:n-1}"; do
        printf -- '-d %s.port==1024-65535,%s ' "$t" "$proto"
    done
}

# write_cgnat_config FILE NAME INSIDE_IF OUTSIDE_IF EXTRA
# The bed's cgnat config: the two root-namespace veth ends as net_af_packet ports, the
# pool, address-and-port-dependent filtering (only what the ALGs expect gets in),
# EXTRA (more [nat] keys or tables, [alg], ...), and the API and metrics on free ports,
# which it leaves in api_port and metrics_port. The pool is bed_pool when set (the items
# of a TOML list, e.g. '"198.51.100.1/32"'), else 198.51.100.0/28; bed_dataplane, when
# set, adds its keys to [dataplane]. The ports' addresses
# are bed_inside and bed_outside when set (e.g. VLAN sub-interfaces), else
# 100.64.0.1/10 and 203.0.113.1/24 with the gateway 203.0.113.254.
write_cgnat_config() {
    api_port=$(free_port)
    metrics_port=$(free_port)
    local pool=${bed_pool:-'"198.51.100.0/28"'}
    local inside_addr=${bed_inside:-'ipv4 = "100.64.0.1/10"'}
    local outside_addr=${bed_outside:-'ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"'}
    cat > "$1" <<TOML
[dataplane]
eal_args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix=cgnat-$2-$tag"]
control_lcore = 0
worker_lcores = [1]
${bed_dataplane:-}

[[ports]]
name = "inside"
role = "inside"
device = "net_af_packet0,iface=$3"
$inside_addr

[[ports]]
name = "outside"
role = "outside"
device = "net_af_packet1,iface=$4"
$outside_addr

[nat]
pool = [$pool]
filtering = "address-and-port-dependent"
$5

[metrics]
listen = "127.0.0.1:$metrics_port"

[api]
listen = "127.0.0.1:$api_port"
TOML
}

# bed_up SUB INET VS VSN VI VIN
# The two-namespace bed: SUB (a subscriber, VS 100.64.0.2/10, default via 100.64.0.1)
# and INET (the internet, VI 203.0.113.254/24, 192.0.2.10 on lo, the pool routed to
# 203.0.113.1), joined to the root namespace's VSN and VIN by veth pairs; offloads
# off and IPv6 off everywhere (cgnat sees plain IPv4 frames).
bed_up() {
    local sub=$1 inet=$2 vs=$3 vsn=$4 vi=$5 vin=$6 ifc
    ip netns add "$sub"
    ip netns add "$inet"
    ip link add "$vs" type veth peer name "$vsn"
    ip link add "$vi" type veth peer name "$vin"
    ip link set "$vs" netns "$sub"
    ip link set "$vi" netns "$inet"
    for ifc in "$vsn" "$vin"; do
        sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" || true
        ethtool -K "$ifc" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
        ip link set "$ifc" up
    done
    ip netns exec "$sub" sh -c "
        sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip link set lo up
        ip addr add 100.64.0.2/10 dev $vs
        ip link set $vs up
        ip route add default via 100.64.0.1"
    ip netns exec "$sub" ethtool -K "$vs" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip netns exec "$inet" sh -c "
        sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip link set lo up
        ip addr add 192.0.2.10/32 dev lo
        ip addr add 203.0.113.254/24 dev $vi
        ip link set $vi up
        ip route add 198.51.100.0/28 via 203.0.113.1"
    ip netns exec "$inet" ethtool -K "$vi" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
}

# bed_teardown NAMESPACE... [-- LINK...]
# Ends the processes in the caller's pids array (TERM, then KILL), whatever is left
# in each NAMESPACE, the namespaces, then deletes each LINK (a veth pair's end, a
# bridge). For a trap on EXIT. Name only namespaces the bed made: every process left
# in one is killed.
bed_teardown() {
    local p
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        for p in $(ip netns pids "$1" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$1" 2>/dev/null
        shift
    done
    [ $# -gt 0 ] && shift
    for p in "$@"; do ip link del "$p" 2>/dev/null; done
    free_ports_forget
}

# bed_down SUB INET VSN VIN
# bed_teardown of the usual bed (bed_init's names).
bed_down() {
    bed_teardown "$1" "$2" -- "$3" "$4"
}

# bed_init PREFIX
# Names the bed after PREFIX and this process: namespaces sub and inet, interfaces vs,
# vsn, vi, vin (tag holds the process id); starts an empty pids array for the
# processes to end; and takes it all down on exit (bed_down).
bed_init() {
    tag=$$
    sub=${1}sub$tag inet=${1}inet$tag
    vs=${1}vs$tag vsn=${1}vsn$tag vi=${1}vi$tag vin=${1}vin$tag
    pids=()
    trap 'bed_down "$sub" "$inet" "$vsn" "$vin"' EXIT
}

# start_cgnat BIN CONFIG
# Starts `BIN run -c CONFIG` in the background (stdout to $work/summary.json, stderr to
# $work/cgnat.log), its pid in cg and in pids. DPDK's af_packet PMD names each port's
# PACKET_FANOUT group after the process id and the interface's index, and group ids
# are shared by the whole network namespace: two beds running at once can draw the
# same id, and the later port's probe then fails (EINVAL, "could not set
# PACKET_FANOUT"). A start that failed so is tried again with a new process (a new
# id), three times at most; any other outcome is left to the bed's own checks.
start_cgnat() {
    local try _
    for try in 1 2 3; do
        "$1" run -c "$2" > "$work/summary.json" 2> "$work/cgnat.log" &
        cg=$!
        pids+=("$cg")
        for _ in $(seq 1 100); do
            grep -q "^cgnat: port " "$work/cgnat.log" 2>/dev/null && return 0
            kill -0 "$cg" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$cg" 2>/dev/null && return 0
        grep -q "could not set PACKET_FANOUT" "$work/cgnat.log" || return 0
        wait "$cg" 2>/dev/null || true
        echo "bed: another process holds this af_packet fanout group id (try $try): cgnat started again" >&2
    done
}

# wait_up PID
# Waits (E2E_WAIT half-seconds, 60) until the subscriber namespace can ping cgnat's
# inside address (answered by the control lcore after ARP); fails at once when PID
# (cgnat) is gone.
wait_up() {
    local _
    for _ in $(seq 1 "${E2E_WAIT:-60}"); do
        ip netns exec "$sub" ping -c 1 -W 1 100.64.0.1 >/dev/null 2>&1 && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}

# stop_cgnat PID: SIGTERM, then wait (5 s at most) for a clean, zero exit; `fail`
# (the bed's own) otherwise. The final summary is then in the file its stdout went to.
stop_cgnat() {
    kill -TERM "$1"
    for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$1" 2>/dev/null && fail "cgnat did not stop on SIGTERM"
    wait "$1" || fail "cgnat exited non-zero"
}

# serve_http NS ADDR PORT DIR LOG
# Serves DIR over HTTP on ADDR:PORT in namespace NS (python3's http.server, its pid
# added to pids), and waits (10 s at most) until it accepts connections.
serve_http() {
    local _
    ip netns exec "$1" python3 -m http.server "$3" --bind "$2" --directory "$4" > "$5" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        ip netns exec "$1" python3 -c "import socket; socket.create_connection(('$2', $3), 0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# bed_fail6 LABEL MESSAGE
# The IPv6 beds' failure: "LABEL FAIL: MESSAGE", the subscriber's IPv6 addresses and
# neighbours, cgnat's counters and log, on stderr; exits 1.
bed_fail6() {
    echo "$1 FAIL: $2" >&2
    echo "--- subscriber"; ip netns exec "$sub" ip -6 addr show dev "$vs" >&2 || true
    ip netns exec "$sub" ip -6 neigh show dev "$vs" >&2 || true
    echo "--- cgnat counters"; curl -s --max-time 3 "http://127.0.0.1:${api_port:-9470}/counters" >&2 || true
    echo "--- cgnat log"; cat "$work/cgnat.log" >&2 || true
    exit 1
}

# router_up RTR VSN VIN
# The Linux router the comparison beds put in cgnat's place: namespace RTR takes the
# root namespace's ends VSN (100.64.0.1/10) and VIN (203.0.113.1/24, default via
# 203.0.113.254), forwards, offloads and IPv6 off. Its NAT and filter are the bed's.
router_up() {
    local rtr=$1 vsn=$2 vin=$3 ifc
    ip netns add "$rtr"
    ip link set "$vsn" netns "$rtr"
    ip link set "$vin" netns "$rtr"
    ip netns exec "$rtr" sh -c "
        sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        sysctl -qw net.ipv4.ip_forward=1
        ip link set lo up
        ip addr add 100.64.0.1/10 dev $vsn
        ip addr add 203.0.113.1/24 dev $vin
        ip link set $vsn up
        ip link set $vin up
        ip route add default via 203.0.113.254"
    for ifc in "$vsn" "$vin"; do
        ip netns exec "$rtr" ethtool -K "$ifc" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    done
}

# end_cgnat PID
# SIGTERM, then up to 5 s for PID to exit; leaves its exit status in cg_rc ("stuck"
# when it did not exit). For beds that report a clean exit as a check.
end_cgnat() {
    local _
    kill -TERM "$1"
    for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    cg_rc=0
    if kill -0 "$1" 2>/dev/null; then cg_rc=stuck; else wait "$1" || cg_rc=$?; fi
}

# The RESULT lines of the beds that run in a cgnat mode and a Linux mode (rtsp-e2e.sh,
# irc-e2e.sh): the bed sets result_label (RTSP, IRC) and mode.
# result NAME OK REQUIRED DETAIL...: prints "LABEL-RESULT name=NAME ok=OK
# required=REQUIRED detail=DETAIL", keeps the line in results, and sets
# failed_required when a required check failed.
results=()
failed_required=0
result() {
    local name=$1 ok=$2 req=$3
    shift 3
    local line="$result_label-RESULT name=$name ok=$ok required=$req detail=$*"
    echo "$line"
    results+=("$line")
    if [ "$ok" != 1 ] && [ "$req" = 1 ]; then failed_required=1; fi
}
# req: 1 in cgnat mode, 0 elsewhere (the other modes report).
req() { [ "$mode" = cgnat ] && echo 1 || echo 0; }
# die MESSAGE: "LABEL-E2E FAIL: MESSAGE" and, in cgnat mode, the end of cgnat's log
# ($work/cgnat.log), on stderr; exits 1.
die() {
    echo "$result_label-E2E FAIL: $*" >&2
    if [ "$mode" = cgnat ]; then
        echo "--- cgnat log" >&2
        tail -30 "$work/cgnat.log" >&2 || true
    fi
    exit 1
}

# capture_both: tcpdump on the internet namespace's $vi (WORK/internet.pcap) and the
# subscriber's $vs (WORK/subscriber.pcap); their pids in cap_inet, cap_sub and pids.
# Immediate mode: each packet reaches the file as it comes, none is left in the
# kernel's buffer when the capture is stopped.
capture_both() {
    ip netns exec "$inet" tcpdump -i "$vi" -nn -U --immediate-mode -s 0 -w "$work/internet.pcap" 2>/dev/null &
    cap_inet=$!
    ip netns exec "$sub" tcpdump -i "$vs" -nn -U --immediate-mode -s 0 -w "$work/subscriber.pcap" 2>/dev/null &
    cap_sub=$!
    pids+=("$cap_inet" "$cap_sub")
}

# gateway_up ADDR: waits (E2E_WAIT half-seconds, 60) until the subscriber pings the
# gateway 100.64.0.1 (in cgnat mode, dies as soon as cgnat, $cg, is gone), then pings
# ADDR through it (WORK/ping.txt); dies when either fails.
gateway_up() {
    local _
    for _ in $(seq 1 "${E2E_WAIT:-60}"); do
        ip netns exec "$sub" ping -c 1 -W 1 100.64.0.1 >/dev/null 2>&1 && break
        if [ "$mode" = cgnat ]; then kill -0 "$cg" 2>/dev/null || die "cgnat exited early"; fi
        sleep 0.5
    done
    ip netns exec "$sub" ping -c 1 -W 1 100.64.0.1 >/dev/null 2>&1 || die "the gateway 100.64.0.1 does not answer ping"
    ip netns exec "$sub" ping -c 2 -i 0.2 -W 2 "$1" > "$work/ping.txt" 2>&1 || die "no ping to $1 through the $mode gateway"
}
