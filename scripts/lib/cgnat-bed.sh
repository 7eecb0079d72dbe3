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
