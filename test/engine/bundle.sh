#!/usr/bin/env bash
# Starts the Dagger engine of ../shared/dagger-engine (see its README) so that it can reach the test bed:
#   - it trusts the test bed's CA (put where the engine installs extra CAs, read once at its start: a
#     running engine that does not have this CA is restarted);
#   - the test bed's registry (10.200.0.1:5443, token registry :5444, token server :5445) and the VPSs'
#     SSH (10.200.0.2:22, and the second VPS's 10.204.0.2:22, where the engine suite deploys) answer at the
#     same addresses inside the engine's network namespace, relayed by
#     socat over unix sockets (the namespace has only its loopback, so nothing else is reachable).
# Idempotent; `bundle.sh stop` ends the relays and the engine (its cache is kept: the next start is warm).
# Needs root and the test bed up (test/testbed/up.sh). Prints the CLI's environment (as setup.sh does).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUNDLE=${DAGGER_BUNDLE_DIR:-$ROOT/../shared/dagger-engine}
STATE=${DAGGER_BUNDLE_STATE:-/var/lib/dagger-engine-bundle}
NETNS=${DAGGER_BUNDLE_NETNS:-daggerbundle}
TESTBED=${TESTBED_DIR:-/tmp/vps-testbed}
RELAY=/run/vps-engine-relay
log() { echo "engine-bed: $*" >&2; }
# the engine suite's files start it at the same moment: one start at a time, the second finds it running (-o: the
# engine and the relays started below must not inherit the lock, or it is never let go)
if [ -z "${VPS_ENGINE_BUNDLE_LOCKED:-}" ]; then
  VPS_ENGINE_BUNDLE_LOCKED=1 exec flock -o /run/vps-engine-bundle.lock bash "$0" "$@"
fi

stop_relays() {
  for p in "$RELAY"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; rm -f "$p"; done
  rm -f "$RELAY"/*.sock
}

if [ "${1:-}" = stop ]; then
  stop_relays
  [ -f "$BUNDLE/stop.sh" ] && bash "$BUNDLE/stop.sh" >&2
  exit 0
fi

[ -f "$BUNDLE/setup.sh" ] || { echo "engine-bed: no Dagger engine bundle at $BUNDLE (set DAGGER_BUNDLE_DIR, or TEST_ENGINE=0 to skip)" >&2; exit 1; }
[ -f "$TESTBED/ca.crt" ] || { echo "engine-bed: the test bed is not up ($TESTBED/ca.crt missing): bash test/testbed/up.sh" >&2; exit 1; }

# The CA: a running engine read its CAs when it started.
CAS=$STATE/ns/cacerts
mkdir -p "$CAS"
if ! cmp -s "$TESTBED/ca.crt" "$CAS/vps-testbed.crt"; then
  if [ -f "$STATE/run/engine.pid" ] && kill -0 "$(cat "$STATE/run/engine.pid")" 2>/dev/null; then
    log "restarting the engine: it does not trust this test bed's CA"
    bash "$BUNDLE/stop.sh" >&2
  fi
  cp "$TESTBED/ca.crt" "$CAS/vps-testbed.crt"
fi
# niced: it runs beside the integration files, whose scenarios are timed (requests under load)
nice -n 10 bash "$BUNDLE/setup.sh" "$ROOT" > "$STATE/env.out"

# The relays: <address> <port> for each service of the test bed the module uses.
mkdir -p "$RELAY"
# (read first, then matched: `ip … | grep -q` under pipefail fails when grep stops reading early)
lo_addrs=$(ip -n "$NETNS" addr show dev lo)
for addr in 10.200.0.1 10.200.0.2 10.204.0.2; do
  grep -q "inet $addr/" <<< "$lo_addrs" || ip -n "$NETNS" addr add "$addr/32" dev lo
done
relay() {
  local addr=$1 port=$2 name="$1_$2"
  if [ -f "$RELAY/$name.pid" ] && kill -0 "$(cat "$RELAY/$name.pid")" 2>/dev/null \
    && [ -f "$RELAY/$name-ns.pid" ] && kill -0 "$(cat "$RELAY/$name-ns.pid")" 2>/dev/null; then return 0; fi
  rm -f "$RELAY/$name.sock"
  setsid socat "UNIX-LISTEN:$RELAY/$name.sock,fork,mode=600" "TCP:$addr:$port" < /dev/null > /dev/null 2>&1 &
  echo $! > "$RELAY/$name.pid"
  setsid nsenter --net="/run/netns/$NETNS" socat "TCP-LISTEN:$port,bind=$addr,fork,reuseaddr" "UNIX-CONNECT:$RELAY/$name.sock" \
    < /dev/null > /dev/null 2>&1 &
  echo $! > "$RELAY/$name-ns.pid"
}
relay 10.200.0.1 5443
relay 10.200.0.1 5444
relay 10.200.0.1 5445
relay 10.200.0.2 22
relay 10.204.0.2 22
for _ in $(seq 50); do
  nsenter --net="/run/netns/$NETNS" bash -c 'exec 3<>/dev/tcp/10.204.0.2/22' 2>/dev/null && break
  sleep 0.1
done
nsenter --net="/run/netns/$NETNS" curl -fsS --cacert "$TESTBED/ca.crt" -o /dev/null -w '' "https://10.200.0.1:5443/v2/" 2>/dev/null \
  || [ "$(nsenter --net="/run/netns/$NETNS" curl -s --cacert "$TESTBED/ca.crt" -o /dev/null -w '%{http_code}' "https://10.200.0.1:5443/v2/")" = 401 ] \
  || { echo "engine-bed: the registry does not answer through the relay" >&2; exit 1; }
cat "$STATE/env.out"
