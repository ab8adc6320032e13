#!/usr/bin/env bash
# The test bed's swarm: three Docker engines, each in its own network namespace with its own data
# root, on one bridge, joined into one swarm (node 1 the manager). The manager is reachable over SSH
# like the VPS: an sshd in its namespace whose sessions talk to that node's engine (DOCKER_HOST).
# Called by up.sh (needs its keys, users and registry); idempotent. `swarm.sh down` removes it.
set -euo pipefail

STATE=${TESTBED_DIR:-/tmp/vps-testbed}
BR=vsw0
BR_IP=10.201.0.1
RUN=/run/vps-swarm          # sockets and exec roots: unix socket paths must stay short
log() { echo "testbed: $*" >&2; }
node_ip() { echo "10.201.0.1$1"; }
sock() { echo "unix://$RUN/n$1.sock"; }

if [ "${1:-}" = down ]; then
  for n in 1 2 3; do
    [ -f "$STATE/swarm/n$n/dockerd.pid" ] && kill "$(cat "$STATE/swarm/n$n/dockerd.pid")" 2>/dev/null
    ip netns pids "vpsswarm$n" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  for n in 1 2 3; do
    for _ in $(seq 1 40); do [ -n "$(ip netns pids "vpsswarm$n" 2>/dev/null)" ] || break; sleep 0.25; done
    ip netns del "vpsswarm$n" 2>/dev/null
  done
  ip link del "$BR" 2>/dev/null
  iptables -D FORWARD -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null
  # the engines' mounts under the state dir (overlay, netns files) go before it can be removed
  grep -o " $STATE/swarm[^ ]*\| $RUN[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$RUN"
  exit 0
fi

mkdir -p "$RUN" && chmod 755 "$RUN"
if ! ip link show "$BR" >/dev/null 2>&1; then
  log "creating the swarm's bridge $BR"
  ip link add "$BR" type bridge
  ip addr add "$BR_IP/24" dev "$BR"
  ip link set "$BR" up
fi
# Docker's FORWARD policy is DROP and bridged frames pass through iptables (br_netfilter): let the nodes talk.
iptables -C FORWARD -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null || iptables -I FORWARD 1 -i "$BR" -o "$BR" -j ACCEPT

start_node() { # n
  local n=$1 ns="vpsswarm$1" dir="$STATE/swarm/n$1"
  if ! ip netns list | grep -qw "$ns"; then
    ip netns add "$ns"
    ip link add "vsw${n}h" type veth peer name "vsw${n}n"
    ip link set "vsw${n}n" netns "$ns"
    ip link set "vsw${n}h" master "$BR" up
    ip -n "$ns" link set "vsw${n}n" name eth0
    ip -n "$ns" addr add "$(node_ip "$n")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" route add default via "$BR_IP"
  fi
  mkdir -p "$dir"
  if ! docker -H "$(sock "$n")" info >/dev/null 2>&1; then
    log "starting the engine of swarm node $n"
    # nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup mounts dockerd needs
    # its own UTS namespace too: the node's hostname is what `docker node ls` and the reports show
    setsid nohup nsenter --net="/var/run/netns/$ns" unshare --uts sh -c "hostname swarm-$n && exec \"\$0\" \"\$@\"" dockerd --data-root "$dir/data" --exec-root "$RUN/e$n" \
      -H "$(sock "$n")" --pidfile "$dir/dockerd.pid" --bridge none --iptables=true \
      >"$dir/dockerd.log" 2>&1 < /dev/null &
  fi
}
for n in 1 2 3; do start_node "$n"; done
for n in 1 2 3; do
  for _ in $(seq 1 80); do docker -H "$(sock "$n")" info >/dev/null 2>&1 && break; sleep 0.25; done
  docker -H "$(sock "$n")" info >/dev/null 2>&1 || { tail -20 "$STATE/swarm/n$n/dockerd.log" >&2; exit 1; }
done

M=$(sock 1)
if [ "$(docker -H "$M" info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
  log "initialising the swarm on node 1"
  # overlays away from the machine's own networks; a short heartbeat so a stopped node is seen in seconds
  docker -H "$M" swarm init --advertise-addr "$(node_ip 1)" --default-addr-pool 10.230.0.0/16 \
    --dispatcher-heartbeat 2s >/dev/null
fi
TOKEN=$(docker -H "$M" swarm join-token -q worker)
for n in 2 3; do
  if [ "$(docker -H "$(sock "$n")" info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    log "joining node $n"
    docker -H "$(sock "$n")" swarm join --advertise-addr "$(node_ip "$n")" --token "$TOKEN" "$(node_ip 1):2377" >/dev/null
  fi
done
for _ in $(seq 1 60); do
  [ "$(docker -H "$M" node ls --format '{{.Status}}' | grep -c Ready)" = 3 ] && break; sleep 0.5
done

# The manager over SSH: the same users and keys as the VPS; their sessions use node 1's engine.
if ! { [ -f "$STATE/swarm/sshd.pid" ] && kill -0 "$(cat "$STATE/swarm/sshd.pid")" 2>/dev/null; }; then
  log "starting the manager's sshd on $(node_ip 1):22"
  sed -e "s|^ListenAddress .*|ListenAddress $(node_ip 1)|" -e "s|^PidFile .*|PidFile $STATE/swarm/sshd.pid|" \
    "$STATE/sshd_config" > "$STATE/swarm/sshd_config"
  echo "SetEnv DOCKER_HOST=$M" >> "$STATE/swarm/sshd_config"
  ip netns exec vpsswarm1 /usr/sbin/sshd -f "$STATE/swarm/sshd_config" -E "$STATE/swarm/sshd.log"
  for _ in $(seq 1 40); do [ -f "$STATE/swarm/sshd.pid" ] && break; sleep 0.1; done
fi
log "swarm ready: $(docker -H "$M" node ls --format '{{.Hostname}}={{.Status}}' | paste -sd' ')"
