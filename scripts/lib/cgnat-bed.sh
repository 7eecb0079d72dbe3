# Shared by the end-to-end beds (netns-e2e.sh, sip-e2e.sh, rtsp-e2e.sh): source it.

# An unused loopback TCP port (for the API and metrics, so parallel beds do not collide).
free_port() {
    python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

# write_cgnat_config FILE NAME INSIDE_IF OUTSIDE_IF EXTRA
# The bed's cgnat config: the two root-namespace veth ends as net_af_packet ports, the
# pool, address-and-port-dependent filtering (only what the ALGs expect gets in),
# EXTRA (more [nat] keys or tables, [alg], ...), and the API and metrics on free ports,
# which it leaves in api_port and metrics_port.
write_cgnat_config() {
    api_port=$(free_port)
    metrics_port=$(free_port)
    cat > "$1" <<TOML
[dataplane]
eal_args = ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix=cgnat-$2-$tag"]
control_lcore = 0
worker_lcores = [1]

[[ports]]
name = "inside"
role = "inside"
device = "net_af_packet0,iface=$3"
ipv4 = "100.64.0.1/10"

[[ports]]
name = "outside"
role = "outside"
device = "net_af_packet1,iface=$4"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"

[nat]
pool = ["198.51.100.0/28"]
filtering = "address-and-port-dependent"
$5

[metrics]
listen = "127.0.0.1:$metrics_port"

[api]
listen = "127.0.0.1:$api_port"
TOML
}

# make_bed PREFIX: the subscriber and internet namespaces (names in sub and inet)
# joined to the root namespace by veth pairs whose root ends (vsn, vin) cgnat's
# net_af_packet ports take:
#   subscriber ns: vs 100.64.0.2/10, default route via cgnat's inside 100.64.0.1
#   internet ns:   vi 203.0.113.254/24, lo 192.0.2.10, the pool 198.51.100.0/28 via
#                  cgnat's outside 203.0.113.1
# Needs tag set; bed_cleanup removes them.
make_bed() {
    sub=${1}sub$tag inet=${1}inet$tag
    vs=${1}vs$tag vsn=${1}vsn$tag vi=${1}vi$tag vin=${1}vin$tag
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

# bed_stop: ends the processes in pids (TERM, then KILL) and removes the bed (the
# beds' EXIT trap).
bed_stop() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    bed_cleanup
}

bed_cleanup() {
    ip netns del "$sub" 2>/dev/null
    ip netns del "$inet" 2>/dev/null
    ip link del "$vsn" 2>/dev/null
    ip link del "$vin" 2>/dev/null
}

# wait_up PID: until the subscriber can ping cgnat's inside address (the appliance
# answers after ARP), or fail.
wait_up() {
    for _ in $(seq 1 ${E2E_WAIT:-60}); do
        ip netns exec "$sub" ping -c 1 -W 1 100.64.0.1 >/dev/null 2>&1 && return 0
        kill -0 "$1" 2>/dev/null || fail "cgnat exited early"
        sleep 0.5
    done
    fail "cgnat did not answer ping on 100.64.0.1"
}
