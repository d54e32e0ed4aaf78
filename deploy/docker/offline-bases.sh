#!/usr/bin/env bash
# Base images for a host that reaches a Debian mirror and an npm registry but no container
# registry: a Debian 12 base made with debootstrap, and a Node 20 base made from it plus this
# host's own node, npm and node headers (node needs only glibc and libstdc++).
#   sudo deploy/docker/offline-bases.sh [rootfs-dir]
# then build with
#   docker build -f deploy/docker/Dockerfile --network host \
#     --build-arg DEBIAN_IMAGE=bnn-base/debian:bookworm --build-arg NODE_IMAGE=bnn-base/node:20-bookworm -t bnn:latest .
# (--network host: the build's apt-get and npm ci reach the mirror and registry as this host does).
# Needs: root, debootstrap, docker (or podman: DOCKER=podman), node 20 and npm on PATH.
# Carries this host's apt settings (/etc/apt/apt.conf.d), CA bundle and npm registry/cafile settings
# into the images, so they reach what this host reaches.
set -euo pipefail
DOCKER=${DOCKER:-docker}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
rootfs=${1:-/var/tmp/bnn-bookworm-rootfs}
node_bin=$(command -v node)
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
node_prefix=$(cd "$(dirname "$node_bin")/.." && pwd)
case "$("$node_bin" --version)" in v20.*) ;; *) echo "offline-bases.sh: node 20 required, found $("$node_bin" --version)" >&2; exit 1 ;; esac
[ -f "$node_prefix/include/node/node_api.h" ] || { echo "offline-bases.sh: no node headers in $node_prefix/include/node" >&2; exit 1; }

if [ ! -x "$rootfs/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR"
fi
echo "deb $MIRROR bookworm main" > "$rootfs/etc/apt/sources.list"
cp /etc/apt/apt.conf.d/99* "$rootfs/etc/apt/apt.conf.d/" 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt" 2>/dev/null ||
  { mkdir -p "$rootfs/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"; }
rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/archives/"*.deb
tar -C "$rootfs" -c . | "$DOCKER" import - bnn-base/debian:bookworm

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/usr/local/bin" "$work/usr/local/lib/node_modules" "$work/usr/local/include" "$work/etc"
cp "$node_bin" "$work/usr/local/bin/node"
cp -a "$npm_dir" "$work/usr/local/lib/node_modules/npm"
cp -a "$node_prefix/include/node" "$work/usr/local/include/node"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/usr/local/bin/npx"
{
  echo "registry=$(npm config get registry)"
  echo "cafile=/etc/ssl/certs/ca-certificates.crt"
} > "$work/etc/npmrc"
cat > "$work/Dockerfile" <<'EOF'
FROM bnn-base/debian:bookworm
COPY usr/local /usr/local
COPY etc/npmrc /usr/local/etc/npmrc
EOF
"$DOCKER" build -t bnn-base/node:20-bookworm "$work"
echo "offline-bases.sh: built bnn-base/debian:bookworm and bnn-base/node:20-bookworm"
