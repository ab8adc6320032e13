#!/usr/bin/env bash
# The test bed's second VPS, so that two lanes of tests run at once (test/run.sh): a Docker engine of its own in its
# own network namespace (10.204.0.2), with its own edge, ports and images, and an sshd there (with a /tmp of its own)
# whose sessions talk to that engine (DOCKER_HOST). Its deploy user is `shipper` (home /home/shipper), so that
# nothing one lane does to the first VPS's user (its files, its sessions) reaches the other. Called by up.sh (needs its keys, users, registry and
# local images); idempotent. `vps2.sh down` removes it.
set -euo pipefail

STATE=${TESTBED_DIR:-/tmp/vps-testbed}
CACHE=${TESTBED_CACHE:-/var/cache/vps-testbed}
NS=vpsbed2
HOST_IP=10.204.0.1
IP=10.204.0.2
DIR=$STATE/vps2
RUN=/run/vps2               # the engine's socket and exec root: unix socket paths must stay short
SOCK=unix://$RUN/docker.sock
U=shipper
log() { echo "testbed: $*" >&2; }

if [ "${1:-}" = down ]; then
  if docker -H "$SOCK" info >/dev/null 2>&1; then
    ids=$(docker -H "$SOCK" ps -aq 2>/dev/null)
    [ -n "$ids" ] && docker -H "$SOCK" rm -f $ids >/dev/null 2>&1
  fi
  [ -f "$DIR/sshd.pid" ] && kill "$(cat "$DIR/sshd.pid")" 2>/dev/null
  [ -f "$DIR/dockerd.pid" ] && kill "$(cat "$DIR/dockerd.pid")" 2>/dev/null
  for _ in $(seq 1 40); do [ -n "$(ip netns pids "$NS" 2>/dev/null)" ] || break; sleep 0.25; done
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  ip link del vb2h 2>/dev/null
  iptables -D FORWARD -i vb2h -j ACCEPT 2>/dev/null
  iptables -D FORWARD -o vb2h -j ACCEPT 2>/dev/null
  ip -n offbed route del 10.204.0.0/24 2>/dev/null
  grep -o " $DIR[^ ]*\| $RUN[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  id "$U" >/dev/null 2>&1 && { pkill -u "$U" 2>/dev/null; sleep 0.2; userdel -r "$U" 2>/dev/null; }
  rm -rf "$RUN"
  exit 0
fi

if ! ip netns list | grep -qw "$NS"; then
  log "creating network namespace $NS (the second VPS)"
  ip netns add "$NS"
  ip link add vb2h type veth peer name vb2n
  ip link set vb2n netns "$NS"
  ip addr add "$HOST_IP/24" dev vb2h
  ip link set vb2h up
  ip -n "$NS" link set vb2n name eth0
  ip -n "$NS" addr add "$IP/24" dev eth0
  ip -n "$NS" link set eth0 up
  ip -n "$NS" link set lo up
  # the registry is on this machine; the off-site host is one hop further (its answers come back the same way)
  ip -n "$NS" route add default via "$HOST_IP"
fi
# Docker's FORWARD policy is DROP: let this VPS's containers reach the off-site host, and it answer
iptables -C FORWARD -i vb2h -j ACCEPT 2>/dev/null || iptables -I FORWARD 1 -i vb2h -j ACCEPT
iptables -C FORWARD -o vb2h -j ACCEPT 2>/dev/null || iptables -I FORWARD 1 -o vb2h -j ACCEPT
ip -n offbed route show 10.204.0.0/24 2>/dev/null | grep -q . || ip -n offbed route add 10.204.0.0/24 via 10.203.0.1

mkdir -p "$DIR" "$RUN" && chmod 755 "$RUN"
if ! docker -H "$SOCK" info >/dev/null 2>&1; then
  log "starting the second VPS's Docker engine"
  # nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup mounts dockerd needs
  # niced, with all it runs: the first VPS's lane holds the timed scenarios (requests under load), this one has time
  setsid nohup nice -n 10 nsenter --net="/var/run/netns/$NS" dockerd --data-root "$DIR/data" --exec-root "$RUN/e" \
    -H "$SOCK" --pidfile "$DIR/dockerd.pid" --bip 10.213.0.1/24 --default-address-pool base=10.212.0.0/16,size=24 \
    >"$DIR/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 80); do docker -H "$SOCK" info >/dev/null 2>&1 && break; sleep 0.25; done
  docker -H "$SOCK" info >/dev/null 2>&1 || { tail -20 "$DIR/dockerd.log" >&2; exit 1; }
fi

# The images made on this machine (no registry has them): the same ones, by id.
for img in vps-testbed/caddy:2 vps-testbed/restic:0.14; do
  want=$(docker image inspect --format '{{.Id}}' "$img")
  if [ "$(docker -H "$SOCK" image inspect --format '{{.Id}}' "$img" 2>/dev/null)" != "$want" ]; then
    log "loading $img into the second VPS"
    docker save "$img" | docker -H "$SOCK" load -q >/dev/null
  fi
done
# as on the first VPS: a test's `docker image prune -a` must not take restic's image
docker -H "$SOCK" inspect vps-testbed-keep-restic >/dev/null 2>&1 \
  || docker -H "$SOCK" create --name vps-testbed-keep-restic --label vps-testbed.keep=1 vps-testbed/restic:0.14 version >/dev/null

if ! id "$U" >/dev/null 2>&1; then
  useradd -m -s /bin/bash -G docker "$U"
  usermod -p '*' "$U"   # no password, but not locked: sshd refuses locked accounts
fi
install -d -m 700 -o "$U" -g "$U" "/home/$U/.ssh"
cat "$STATE"/id_ed25519.pub "$STATE"/id_rsa_pem.pub "$STATE"/id_ecdsa.pub > "/home/$U/.ssh/authorized_keys"
chown "$U:$U" "/home/$U/.ssh/authorized_keys" && chmod 600 "/home/$U/.ssh/authorized_keys"
install -d -o "$U" -g "$U" "/home/$U/.docker" "/home/$U/.docker/cli-plugins"
install -m 0755 -o "$U" -g "$U" "$CACHE/docker-compose" "/home/$U/.docker/cli-plugins/docker-compose"

if ! { [ -f "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null; }; then
  log "starting the second VPS's sshd on $IP:22"
  sed -e "s|^ListenAddress .*|ListenAddress $IP|" -e "s|^PidFile .*|PidFile $DIR/sshd.pid|" \
    -e "s|^AllowUsers .*|AllowUsers $U|" "$STATE/sshd_config" > "$DIR/sshd_config"
  echo "SetEnv DOCKER_HOST=$SOCK" >> "$DIR/sshd_config"
  # a /tmp of its own, as a server has (`ip netns exec` gave it a mount namespace): the edge's lock and claims are
  # there, and the first VPS's must not be seen here; the test bed's state dir (keys, this log) stays in view
  mkdir -p "$RUN/state"
  ip netns exec "$NS" sh -c 'mount --bind "$1" "$2" && mount -t tmpfs -o mode=1777,size=256m vps2-tmp /tmp &&
    mkdir -p "$1" && mount --bind "$2" "$1" && umount -l "$2" && shift 2 && exec "$@"' sh "$STATE" "$RUN/state" \
    /usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/sshd.log"
  for _ in $(seq 1 40); do [ -f "$DIR/sshd.pid" ] && break; sleep 0.1; done
fi
log "second VPS ready: $U@$IP, engine $SOCK"
