#!/usr/bin/env bash
# Starts the test bed: a Docker engine, a registry with TLS and htpasswd auth on a
# network-namespace link, a "VPS" (OpenSSH in its own network namespace, key-only,
# users in the docker group) and the example app's images in the registry.
# Every key, password and certificate is made here, at run time. Idempotent:
# a second run reuses what is up. Needs root. Writes $TESTBED_DIR/testbed.json.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE=${TESTBED_DIR:-/tmp/vps-testbed}
CACHE=${TESTBED_CACHE:-/var/cache/vps-testbed}
NS=vpsbed
HOST_IP=10.200.0.1
VPS_IP=10.200.0.2
REG_PORT=5443
REG="$HOST_IP:$REG_PORT"
log() { echo "testbed: $*" >&2; }

bash "$HERE/provision.sh"
mkdir -p "$STATE" && chmod 700 "$STATE"

# --- Docker engine ---------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  # /24 networks from one /16: the suite makes a network per project, more than the default pools hold
  setsid nohup dockerd --default-address-pool base=10.210.0.0/16,size=24 >"$STATE/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$STATE/dockerd.pid"
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 "$STATE/dockerd.log" >&2; exit 1; }
fi

# --- Network: a namespace joined to the host by a veth pair: make_ns <ns> <host if> <ns if> <host ip> <ns ip>
make_ns() {
  ip netns list | grep -qw "$1" && return 0
  log "creating network namespace $1"
  ip netns add "$1"
  ip link add "$2" type veth peer name "$3"
  ip link set "$3" netns "$1"
  ip addr add "$4/24" dev "$2"
  ip link set "$2" up
  ip -n "$1" addr add "$5/24" dev "$3"
  ip -n "$1" link set "$3" up
  ip -n "$1" link set lo up
}
# host 10.200.0.1 <-> VPS namespace 10.200.0.2
make_ns "$NS" vb0 vb1 "$HOST_IP" "$VPS_IP"

# --- Secrets made now: CA, registry certificate and password, SSH keys ----------
if [ ! -f "$STATE/ca.crt" ]; then
  log "making a CA and the registry certificate"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=vps-testbed CA" \
    -keyout "$STATE/ca.key" -out "$STATE/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST_IP" -keyout "$STATE/registry.key" -out "$STATE/registry.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s\n' "$HOST_IP" > "$STATE/san.ext"
  openssl x509 -req -in "$STATE/registry.csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" -CAcreateserial \
    -days 2 -extfile "$STATE/san.ext" -out "$STATE/registry.crt" 2>/dev/null
fi
mkdir -p "/etc/docker/certs.d/$REG"
cp "$STATE/ca.crt" "/etc/docker/certs.d/$REG/ca.crt"

if [ ! -f "$STATE/registry.password" ]; then
  openssl rand -hex 16 > "$STATE/registry.password"
  htpasswd -Bbc "$STATE/htpasswd" pusher "$(cat "$STATE/registry.password")" 2>/dev/null
fi
REG_PASSWORD=$(cat "$STATE/registry.password")

if [ ! -f "$STATE/id_ed25519" ]; then
  log "making SSH keys"
  ssh-keygen -q -t ed25519 -N '' -C deployer -f "$STATE/id_ed25519"
  ssh-keygen -q -t rsa -b 3072 -m PEM -N 'rsa passphrase' -C deployer-rsa -f "$STATE/id_rsa_pem"
  ssh-keygen -q -t ecdsa -b 256 -N '' -C deployer-ecdsa -f "$STATE/id_ecdsa"
  ssh-keygen -q -t ed25519 -N '' -C stranger -f "$STATE/id_stranger"
  for t in ed25519 rsa ecdsa; do ssh-keygen -q -t "$t" -N '' -f "$STATE/ssh_host_${t}_key"; done
  ssh-keygen -q -t ed25519 -N '' -f "$STATE/other_host_key"
fi

# --- Registry --------------------------------------------------------------
if ! curl -fsS --cacert "$STATE/ca.crt" -o /dev/null "https://$REG/" 2>/dev/null; then
  log "starting the registry on $REG"
  mkdir -p "$STATE/registry-data"
  cat > "$STATE/registry.yml" <<YML
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $STATE/registry-data }
  delete: { enabled: true }
http:
  addr: $REG
  tls: { certificate: $STATE/registry.crt, key: $STATE/registry.key }
auth:
  htpasswd: { realm: vps-testbed, path: $STATE/htpasswd }
YML
  setsid nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 < /dev/null &
  echo $! > "$STATE/registry.pid"
  for _ in $(seq 1 40); do curl -fsS --cacert "$STATE/ca.crt" -o /dev/null "https://$REG/" 2>/dev/null && break; sleep 0.25; done
fi

# --- The same registry in token-auth mode (how GHCR works), with our token server ---
TOKEN_REG="$HOST_IP:5444"
TOKEN_SRV="$HOST_IP:5445"
if [ ! -f "$STATE/token-users.json" ]; then
  openssl req -newkey rsa:2048 -nodes -subj "/CN=vps-testbed token signer" -keyout "$STATE/token-signer.key" -out "$STATE/token-signer.csr" 2>/dev/null
  openssl x509 -req -in "$STATE/token-signer.csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" -CAcreateserial -days 2 -out "$STATE/token-signer.crt" 2>/dev/null
  for u in rw ro blocked; do openssl rand -hex 16 > "$STATE/token-$u.password"; done
  cat > "$STATE/token-users.json" <<JSON
{ "rw": { "password": "$(cat "$STATE/token-rw.password")", "actions": ["push", "pull"] },
  "ro": { "password": "$(cat "$STATE/token-ro.password")", "actions": ["pull"] },
  "blocked": { "password": "$(cat "$STATE/token-blocked.password")", "actions": "forbidden" } }
JSON
fi
mkdir -p "/etc/docker/certs.d/$TOKEN_REG"
cp "$STATE/ca.crt" "/etc/docker/certs.d/$TOKEN_REG/ca.crt"
if ! curl -fsS --cacert "$STATE/ca.crt" -o /dev/null "https://$TOKEN_SRV/token" 2>/dev/null; then
  log "starting the token server on $TOKEN_SRV"
  setsid nohup node "$HERE/token-server.mjs" "$HOST_IP" 5445 "$STATE" >"$STATE/token-server.log" 2>&1 < /dev/null &
  echo $! > "$STATE/token-server.pid"
  for _ in $(seq 1 40); do curl -fsS --cacert "$STATE/ca.crt" -o /dev/null "https://$TOKEN_SRV/token" 2>/dev/null && break; sleep 0.25; done
fi
if ! curl -sS --cacert "$STATE/ca.crt" -o /dev/null "https://$TOKEN_REG/v2/" 2>/dev/null; then
  log "starting the token-auth registry on $TOKEN_REG"
  cat > "$STATE/registry-token.yml" <<YML
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $STATE/registry-data }
http:
  addr: $TOKEN_REG
  tls: { certificate: $STATE/registry.crt, key: $STATE/registry.key }
auth:
  token: { realm: "https://$TOKEN_SRV/token", service: vps-testbed-registry, issuer: vps-testbed-token, rootcertbundle: $STATE/ca.crt }
YML
  setsid nohup docker-registry serve "$STATE/registry-token.yml" >"$STATE/registry-token.log" 2>&1 < /dev/null &
  echo $! > "$STATE/registry-token.pid"
  for _ in $(seq 1 40); do curl -sS --cacert "$STATE/ca.crt" -o /dev/null "https://$TOKEN_REG/v2/" 2>/dev/null && break; sleep 0.25; done
fi

# --- The VPS: users and sshd in the namespace --------------------------------
for u in deploy nocompose; do
  if ! id "$u" >/dev/null 2>&1; then
    useradd -m -s /bin/bash -G docker "$u"
    usermod -p '*' "$u"   # no password, but not locked: sshd refuses locked accounts
  fi
  home=$(getent passwd "$u" | cut -d: -f6)
  install -d -m 700 -o "$u" -g "$u" "$home/.ssh"
  cat "$STATE"/id_ed25519.pub "$STATE"/id_rsa_pem.pub "$STATE"/id_ecdsa.pub > "$home/.ssh/authorized_keys"
  chown "$u:$u" "$home/.ssh/authorized_keys" && chmod 600 "$home/.ssh/authorized_keys"
done
# deploy has a working credential helper (pass, with a gpg key made here): docker's CLI picks it by
# itself whenever a config names no store, so a token could land there. The pipeline must never let it.
if [ ! -f /home/deploy/.password-store/.gpg-id ]; then
  log "giving deploy a pass credential store"
  su - deploy -c 'gpg --batch --pinentry-mode loopback --passphrase "" --quick-gen-key "vps-testbed deploy" default default never' >/dev/null 2>&1
  fpr=$(su - deploy -c 'gpg --list-secret-keys --with-colons' | awk -F: '$1 == "fpr" {print $10; exit}')
  su - deploy -c "pass init $fpr" >/dev/null
fi
# deploy gets compose v2 as a per-user plugin; nocompose has none (preflight must say so).
install -d -o deploy -g deploy /home/deploy/.docker /home/deploy/.docker/cli-plugins
install -m 0755 -o deploy -g deploy "$CACHE/docker-compose" /home/deploy/.docker/cli-plugins/docker-compose

if ! { [ -f "$STATE/sshd.pid" ] && kill -0 "$(cat "$STATE/sshd.pid")" 2>/dev/null; }; then
  log "starting sshd on $VPS_IP:22"
  mkdir -p /run/sshd
  cat > "$STATE/sshd_config" <<CFG
ListenAddress $VPS_IP
Port 22
HostKey $STATE/ssh_host_ed25519_key
HostKey $STATE/ssh_host_ecdsa_key
HostKey $STATE/ssh_host_rsa_key
PidFile $STATE/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers deploy nocompose
LogLevel VERBOSE
MaxStartups 50:30:100
MaxSessions 50
Subsystem sftp internal-sftp
CFG
  ip netns exec "$NS" /usr/sbin/sshd -f "$STATE/sshd_config" -E "$STATE/sshd.log"
  for _ in $(seq 1 40); do [ -f "$STATE/sshd.pid" ] && break; sleep 0.1; done
fi

# --- An off-site host for the backups: SFTP over OpenSSH, in a namespace of its own ----------------------
OFF_NS=offbed
OFF_HOST_IP=10.203.0.1
OFF_IP=10.203.0.2
make_ns "$OFF_NS" ob0 ob1 "$OFF_HOST_IP" "$OFF_IP"
[ -f "$STATE/offsite_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C "vps-testbed off-site" -f "$STATE/offsite_ed25519"
[ -f "$STATE/offsite_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -C "" -f "$STATE/offsite_host_ed25519_key"
# (not `backup`: Debian has that system user, without a home of its own)
if ! id offsite >/dev/null 2>&1; then
  useradd -m -s /bin/sh offsite
  usermod -p '*' offsite
fi
install -d -m 700 -o offsite -g offsite /home/offsite/.ssh
install -m 600 -o offsite -g offsite "$STATE/offsite_ed25519.pub" /home/offsite/.ssh/authorized_keys
if ! { [ -f "$STATE/offsite-sshd.pid" ] && kill -0 "$(cat "$STATE/offsite-sshd.pid")" 2>/dev/null; }; then
  log "starting the off-site host's sshd on $OFF_IP:22"
  cat > "$STATE/offsite-sshd_config" <<CFG
ListenAddress $OFF_IP
Port 22
HostKey $STATE/offsite_host_ed25519_key
PidFile $STATE/offsite-sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers offsite
Subsystem sftp internal-sftp
CFG
  ip netns exec "$OFF_NS" /usr/sbin/sshd -f "$STATE/offsite-sshd_config" -E "$STATE/offsite-sshd.log"
  for _ in $(seq 1 40); do [ -f "$STATE/offsite-sshd.pid" ] && break; sleep 0.1; done
fi

# --- The same host's S3 storage: versitygw over a folder, TLS from the test bed's CA, one access key -----------
S3_PORT=9443
if [ ! -f "$STATE/s3.secret" ]; then
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$OFF_IP" -keyout "$STATE/s3.key" -out "$STATE/s3.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s\n' "$OFF_IP" > "$STATE/s3-san.ext"
  openssl x509 -req -in "$STATE/s3.csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" -CAcreateserial \
    -days 2 -extfile "$STATE/s3-san.ext" -out "$STATE/s3.crt" 2>/dev/null
  echo "vpstestbed$(openssl rand -hex 6)" > "$STATE/s3.access"
  openssl rand -hex 20 > "$STATE/s3.secret"
fi
if ! curl -sS --cacert "$STATE/ca.crt" -o /dev/null "https://$OFF_IP:$S3_PORT/" 2>/dev/null; then
  log "starting the off-site host's S3 storage on $OFF_IP:$S3_PORT"
  mkdir -p "$STATE/s3-data"
  # the key reaches the server through its environment, never its command line
  ROOT_ACCESS_KEY_ID=$(cat "$STATE/s3.access") ROOT_SECRET_ACCESS_KEY=$(cat "$STATE/s3.secret") \
    setsid nohup ip netns exec "$OFF_NS" "$CACHE/versitygw" --port "$OFF_IP:$S3_PORT" \
    --cert "$STATE/s3.crt" --key "$STATE/s3.key" posix "$STATE/s3-data" > "$STATE/s3.log" 2>&1 < /dev/null &
  echo $! > "$STATE/s3.pid"
  for _ in $(seq 1 40); do curl -sS --cacert "$STATE/ca.crt" -o /dev/null "https://$OFF_IP:$S3_PORT/" 2>/dev/null && break; sleep 0.25; done
fi

# --- The swarm: three engines in their own namespaces, the manager reachable over SSH ---
bash "$HERE/swarm.sh"

# --- Base image, made on the machine (no registry can be pulled from) ------------
if ! docker image inspect vps-testbed/busybox:1 >/dev/null 2>&1; then
  log "making the base image from busybox-static"
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
  echo 'root:x:0:' > "$rootfs/etc/group"
  tar -C "$rootfs" -c . | docker import -c 'CMD ["sh"]' - vps-testbed/busybox:1 >/dev/null
  rm -rf "$rootfs"
fi

# --- The edge's image: provision.sh's Caddy on the busybox base (the official caddy:2 cannot be pulled here) ---
# Made again when provision.sh builds another Caddy version (the image carries the version it was made from).
caddy_version=$("$CACHE/caddy-edge" version | awk '{print $1}')
if [ "$(docker image inspect --format '{{index .Config.Labels "vps-testbed.caddy"}}' vps-testbed/caddy:2 2>/dev/null)" != "$caddy_version" ]; then
  log "making the edge image from Caddy $caddy_version"
  ctx=$(mktemp -d)
  mkdir -p "$ctx/usr/bin"
  cp "$CACHE/caddy-edge" "$ctx/usr/bin/caddy"
  printf '%s\n' 'FROM vps-testbed/busybox:1' 'COPY usr /usr' "LABEL vps-testbed.caddy=$caddy_version" \
    'ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data' 'CMD ["caddy", "run", "--resume"]' > "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t vps-testbed/caddy:2 "$ctx" >/dev/null 2>"$STATE/build.err" || { cat "$STATE/build.err" >&2; exit 1; }
  rm -rf "$ctx"
fi

# --- The data tests' images, on the Debian root provision.sh made -------------------------------------
if ! docker image inspect vps-testbed/debian:12 >/dev/null 2>&1; then
  log "importing the Debian root (PostgreSQL, an SSH client)"
  docker import - vps-testbed/debian:12 < "$CACHE/debian-root.tar" >/dev/null
fi
# restic: Debian's, with OpenSSH's client for the SFTP backend (as the official image has)
if ! docker image inspect vps-testbed/restic:0.14 >/dev/null 2>&1; then
  log "making restic's image from Debian's restic"
  ctx=$(mktemp -d)
  cp "$CACHE/restic" "$ctx/restic"
  printf '%s\n' 'FROM vps-testbed/debian:12' 'COPY restic /usr/bin/restic' 'ENTRYPOINT ["restic"]' > "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t vps-testbed/restic:0.14 "$ctx" >/dev/null 2>"$STATE/build.err" || { cat "$STATE/build.err" >&2; exit 1; }
  rm -rf "$ctx"
fi
# A test's `docker image prune -a` takes images no container uses: this one keeps restic's (the VPS's
# docker would otherwise look for it on Docker Hub).
docker inspect vps-testbed-keep-restic >/dev/null 2>&1 || docker create --name vps-testbed-keep-restic --label vps-testbed.keep=1 vps-testbed/restic:0.14 version >/dev/null
# PostgreSQL: a data directory made on first start (postgres-entrypoint.sh)
if ! docker image inspect vps-testbed/postgres:15 >/dev/null 2>&1; then
  log "making the PostgreSQL image from Debian's postgresql"
  ctx=$(mktemp -d)
  cp "$HERE/postgres-entrypoint.sh" "$ctx/entrypoint.sh"
  printf '%s\n' 'FROM vps-testbed/debian:12' 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data' \
    'COPY entrypoint.sh /usr/local/bin/entrypoint.sh' 'STOPSIGNAL SIGINT' 'ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]' > "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t vps-testbed/postgres:15 "$ctx" >/dev/null 2>"$STATE/build.err" || { cat "$STATE/build.err" >&2; exit 1; }
  rm -rf "$ctx"
fi

# --- The second VPS (a lane of tests of its own, test/run.sh): its engine, sshd and user ---------------------
bash "$HERE/vps2.sh"

# --- The example app, in three versions, pushed to the registry ----------------
export DOCKER_CONFIG="$STATE/docker-push-config"   # root's own config stays clean
mkdir -p "$DOCKER_CONFIG"
# The login is written, not made with `docker login`: with a credential helper installed (as here),
# the CLI would hand the password to it, and root has no store (the very trap the pipeline avoids).
( umask 077; printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REG" "$(printf 'pusher:%s' "$REG_PASSWORD" | base64 -w0)" > "$DOCKER_CONFIG/config.json" )
PREFIX="$REG/acme/gold-tracker"
docker tag vps-testbed/busybox:1 "$REG/base/busybox:1"
docker push -q "$REG/base/busybox:1" >/dev/null
# The digest the registry now has for the tag, from the push itself: an image's RepoDigests may hold older
# ones too (an earlier push, a pull by an index's digest), in no particular order.
push() { local out; out=$(docker push "$1") && printf '%s\n' "$out" | sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' | tail -n 1; }
build() { # service version healthy
  local ref="$PREFIX/$1:$2"
  # Always build (the layer cache makes an unchanged one instant) so fixture edits show up.
  DOCKER_BUILDKIT=0 docker build -q --build-arg BASE_IMAGE=vps-testbed/busybox:1 --build-arg "APP_VERSION=$2" \
    --build-arg "HEALTHY=$3" -t "$ref" "$ROOT/test/fixtures/app/$1" >/dev/null 2>"$STATE/build.err" || { cat "$STATE/build.err" >&2; exit 1; }
  echo "\"$1:$2\": \"$(push "$ref")\""
  if [ "$1" = api ]; then # the release-phase job runs the api's image, published under its own name
    docker tag "$ref" "$PREFIX/migrate:$2"
    echo "\"migrate:$2\": \"$(push "$PREFIX/migrate:$2")\""
  fi
}
# the data tests' database, pushed like an app image (a deploy pulls it by digest)
pushed() { # name tag local-image
  docker tag "$3" "$PREFIX/$1:$2"
  echo "\"$1:$2\": \"$(push "$PREFIX/$1:$2")\""
}
# the edge's streams app (test/fixtures/streams): a static Go binary, built outside the source tree
streams_ctx=$(mktemp -d)
cp "$ROOT/test/fixtures/streams/Dockerfile" "$streams_ctx/"
(cd "$ROOT/test/fixtures/streams" && CGO_ENABLED=0 go build -trimpath -o "$streams_ctx/streams" .) 2>"$STATE/build.err" || { cat "$STATE/build.err" >&2; exit 1; }
streams() { # version
  local ref="$PREFIX/streams:$1"
  DOCKER_BUILDKIT=0 docker build -q --build-arg BASE_IMAGE=vps-testbed/busybox:1 --build-arg "APP_VERSION=$1" \
    -t "$ref" "$streams_ctx" >/dev/null 2>"$STATE/build.err" || { cat "$STATE/build.err" >&2; exit 1; }
  echo "\"streams:$1\": \"$(push "$ref")\""
}
log "building and pushing the example app (v1, v2, broken v3), the streams app and PostgreSQL"
images=$(
  { build api v1 true; build web v1 true; build api v2 true; build web v2 true; build api v3 false; build web v3 true;
    streams v1; streams v2; pushed postgres 15 vps-testbed/postgres:15; } | paste -sd,
)
rm -rf "$streams_ctx"
# a push that failed (or printed no digest) left an empty value: stop here, not in a test
case "$images" in *'""'*) echo "testbed: a push to $REG failed: $images" >&2; exit 1;; esac
rm -rf "$DOCKER_CONFIG"
unset DOCKER_CONFIG

# written whole, then moved into place: a reader never sees half of it
cat > "$STATE/testbed.json.new" <<JSON
{
  "stateDir": "$STATE",
  "registry": { "host": "$REG", "user": "pusher", "passwordFile": "$STATE/registry.password", "caFile": "$STATE/ca.crt", "prefix": "$PREFIX" },
  "vps": { "namespace": "$NS", "host": "$VPS_IP", "port": 22, "user": "deploy", "userWithoutCompose": "nocompose",
           "hostKeyFile": "$STATE/ssh_host_ed25519_key.pub", "otherHostKeyFile": "$STATE/other_host_key.pub",
           "keys": { "ed25519": "$STATE/id_ed25519", "rsaPem": "$STATE/id_rsa_pem", "ecdsa": "$STATE/id_ecdsa", "stranger": "$STATE/id_stranger" },
           "rsaPassphrase": "rsa passphrase", "sshdLog": "$STATE/sshd.log", "hostIp": "$HOST_IP",
           "home": "/home/deploy", "sshdPidFile": "$STATE/sshd.pid" },
  "vps2": { "namespace": "vpsbed2", "host": "10.204.0.2", "user": "shipper", "home": "/home/shipper", "hostIp": "10.204.0.2",
            "sshdLog": "$STATE/vps2/sshd.log", "sshdPidFile": "$STATE/vps2/sshd.pid", "dockerHost": "unix:///run/vps2/docker.sock" },
  "tokenRegistry": { "host": "$TOKEN_REG", "tokenServer": "$TOKEN_SRV", "service": "vps-testbed-registry",
                    "passwordFiles": { "rw": "$STATE/token-rw.password", "ro": "$STATE/token-ro.password", "blocked": "$STATE/token-blocked.password" } },
  "swarm": { "host": "10.201.0.11", "nodes": { "swarm-1": "unix:///run/vps-swarm/n1.sock", "swarm-2": "unix:///run/vps-swarm/n2.sock", "swarm-3": "unix:///run/vps-swarm/n3.sock" },
             "nodePids": { "swarm-1": "$STATE/swarm/n1/dockerd.pid", "swarm-2": "$STATE/swarm/n2/dockerd.pid", "swarm-3": "$STATE/swarm/n3/dockerd.pid" } },
  "offsite": { "namespace": "$OFF_NS", "host": "$OFF_IP", "user": "offsite", "keyFile": "$STATE/offsite_ed25519", "hostKeyFile": "$STATE/offsite_host_ed25519_key.pub",
               "s3": { "endpoint": "https://$OFF_IP:$S3_PORT", "dataDir": "$STATE/s3-data", "accessFile": "$STATE/s3.access", "secretFile": "$STATE/s3.secret", "caFile": "$STATE/ca.crt" } },
  "images": { $images }
}
JSON
mv "$STATE/testbed.json.new" "$STATE/testbed.json"
log "ready ($STATE/testbed.json)"
