#!/usr/bin/env bash
# Stops what up.sh started: the stacks deployed by tests, sshd, the registry, the
# namespace, and dockerd when up.sh started it. Keys and images go with the state dir.
set -uo pipefail
STATE=${TESTBED_DIR:-/tmp/vps-testbed}
NS=vpsbed

if docker info >/dev/null 2>&1; then
  ids=$(docker ps -aq --filter label=com.docker.compose.project 2>/dev/null)
  [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
  # the edge the deploys made, its config volume and network
  docker rm -f vps-pipeline-edge >/dev/null 2>&1
  docker volume rm vps-pipeline-edge >/dev/null 2>&1
  docker network rm vps-pipeline-edge >/dev/null 2>&1
  docker rm -f vps-pipeline-edge-next vps-testbed-keep-restic >/dev/null 2>&1
  nets=$(docker network ls -q --filter label=vps-pipeline.edge-network 2>/dev/null)
  [ -n "$nets" ] && docker network rm $nets >/dev/null 2>&1
fi
bash "$(dirname "$0")/swarm.sh" down
bash "$(dirname "$0")/vps2.sh" down
for p in sshd offsite-sshd registry registry-token token-server s3; do
  [ -f "$STATE/$p.pid" ] && kill "$(cat "$STATE/$p.pid")" 2>/dev/null
done
ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null
ip link del vb0 2>/dev/null
ip netns del "$NS" 2>/dev/null
ip netns pids offbed 2>/dev/null | xargs -r kill 2>/dev/null
ip link del ob0 2>/dev/null
ip netns del offbed 2>/dev/null
for u in deploy nocompose offsite; do id "$u" >/dev/null 2>&1 && { pkill -u "$u" 2>/dev/null; sleep 0.2; userdel -r "$u" 2>/dev/null; }; done
if [ -f "$STATE/dockerd.pid" ]; then
  kill "$(cat "$STATE/dockerd.pid")" 2>/dev/null
  for _ in $(seq 1 40); do kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null || break; sleep 0.25; done
fi
# the edge's lock and claims live in the server's /tmp: a killed run's claims, owned by a user made again with another
# uid, could not be replaced by the next run's deploys
rm -rf /tmp/vps-pipeline-edge-claims /tmp/vps-pipeline-edge.lock
rm -rf "$STATE"
echo "testbed: down" >&2
exit 0
