#!/usr/bin/env bash
# Installs what the test bed (and the workflow lint) needs, from Debian's packages only. Idempotent and
# quick when everything is there. Needs root.
set -euo pipefail

CACHE=${TESTBED_CACHE:-/var/cache/vps-testbed}
mkdir -p "$CACHE"

need=()
for pair in dockerd:docker.io sshd:openssh-server docker-registry:docker-registry htpasswd:apache2-utils \
            ip:iproute2 flock:util-linux openssl:openssl curl:curl ssh-keygen:openssh-client \
            docker-compose:docker-compose shellcheck:shellcheck gpg:gnupg pass:pass \
            docker-credential-pass:golang-docker-credential-helpers debootstrap:debootstrap \
            dnsmasq:dnsmasq-base socat:socat; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x httpd >/dev/null || need+=(busybox-static) # no -q: under pipefail, an early exit of grep fails the pipe
if [ ${#need[@]} -gt 0 ]; then
  echo "provision: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The off-site S3 storage of the data tests: versitygw (a real S3 server over a folder, with signed requests and
# TLS), built from the Go module proxy into the cache; in the background, beside the downloads below.
VERSITYGW_VERSION=v1.8.0
s3_build=
if [ ! -x "$CACHE/versitygw-$VERSITYGW_VERSION" ]; then
  echo "provision: building versitygw $VERSITYGW_VERSION (the test bed's S3 server) in the background"
  ( d=$(mktemp -d) && GOBIN="$d" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" \
      && install -m 0755 "$d/versitygw" "$CACHE/versitygw-$VERSITYGW_VERSION" && rm -rf "$d" ) > "$CACHE/versitygw.log" 2>&1 &
  s3_build=$!
fi

# The edge's proxy: Caddy as the `caddy:2` image ships it today (Debian 12's is 2.6, older than the edge supports),
# built statically from the Go module proxy (test/testbed/caddy pins the version: raise it when caddy:2 moves on)
# into the cache, in the background too; up.sh makes the test bed's `caddy:2` stand-in image from it.
CADDY_VERSION=$(awk '$1 == "require" && $2 == "github.com/caddyserver/caddy/v2" {print $3}' "$(dirname "$0")/caddy/go.mod")
caddy_build=
if [ ! -x "$CACHE/caddy-$CADDY_VERSION" ]; then
  echo "provision: building Caddy $CADDY_VERSION (the edge's proxy) in the background"
  ( cd "$(dirname "$0")/caddy" && CGO_ENABLED=0 go build -trimpath -o "$CACHE/caddy-$CADDY_VERSION.tmp" . \
      && mv "$CACHE/caddy-$CADDY_VERSION.tmp" "$CACHE/caddy-$CADDY_VERSION" ) > "$CACHE/caddy.log" 2>&1 &
  caddy_build=$!
fi

# Debian 12's own `docker-compose` above is v1 (1.29): the VPS user without the v2 plugin
# sees only that one, as on the servers that bit our first users.
# Compose v2 is not in Debian 12: take trixie's package, unpacked, never installed
# through dpkg (its dependencies would drag the system to trixie).
if [ ! -x "$CACHE/docker-compose" ]; then
  echo "provision: fetching the compose v2 plugin from Debian trixie"
  apt_dir=$(mktemp -d)
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  # The same mirror the machine's own apt uses, for the trixie suite.
  mirror=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || { echo "provision: no Debian bookworm mirror in the apt sources" >&2; exit 1; }
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$apt_dir/sources.list"
  opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Dir::State::Status=/dev/null -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq
  (cd "$apt_dir" && apt-get "${opts[@]}" download docker-compose >/dev/null 2>&1)
  dpkg-deb -x "$apt_dir"/docker-compose_*.deb "$apt_dir/root"
  install -m 0755 "$apt_dir/root/usr/libexec/docker/cli-plugins/docker-compose" "$CACHE/docker-compose"
  rm -rf "$apt_dir"
fi
"$CACHE/docker-compose" version --short >/dev/null

# A program from a Debian package, unpacked into the cache, never installed: fetch_binary <package> <path in it>
fetch_binary() {
  [ -x "$CACHE/$1" ] && return 0
  echo "provision: fetching Debian's $1"
  local d
  d=$(mktemp -d)
  (cd "$d" && apt-get download "$1" >/dev/null 2>&1) || { apt-get update -qq && (cd "$d" && apt-get download "$1" >/dev/null); }
  dpkg-deb -x "$d"/"$1"_*.deb "$d/root"
  install -m 0755 "$d/root/$2" "$CACHE/$1"
  rm -rf "$d"
}
# Data snapshots: Debian's restic (up.sh makes the test bed's restic image from it).
fetch_binary restic usr/bin/restic
"$CACHE/restic" version >/dev/null

# A Debian root for the data tests' images (PostgreSQL, and restic with an SSH client for its SFTP
# backend): made once per machine with debootstrap from the same mirror apt uses (up.sh imports it).
if [ ! -s "$CACHE/debian-root.tar" ]; then
  echo "provision: making a Debian root with PostgreSQL and an SSH client (debootstrap, about a minute)"
  mirror=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  r=$(mktemp -d)
  debootstrap --variant=minbase --include=postgresql-15,openssh-client bookworm "$r" "$mirror" >/dev/null
  rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/locale/* "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
  tar -C "$r" -cf "$CACHE/debian-root.tar.tmp" . && mv "$CACHE/debian-root.tar.tmp" "$CACHE/debian-root.tar"
  rm -rf "$r" "$CACHE/postgres-root.tar"
fi

if [ -n "$s3_build" ] && ! wait "$s3_build"; then
  tail -20 "$CACHE/versitygw.log" >&2
  echo "provision: building versitygw failed (above)" >&2
  exit 1
fi
ln -sf "versitygw-$VERSITYGW_VERSION" "$CACHE/versitygw"
if [ -n "$caddy_build" ] && ! wait "$caddy_build"; then
  tail -20 "$CACHE/caddy.log" >&2
  echo "provision: building Caddy failed (above)" >&2
  exit 1
fi
ln -sf "caddy-$CADDY_VERSION" "$CACHE/caddy-edge"
"$CACHE/caddy-edge" version >/dev/null
