#!/usr/bin/env bash
# Installs those of the named Debian packages that are not installed yet,
# without their recommended packages (--no-install-recommends), and says
# which. Nothing runs when all are there. apt-get's output is shown and its
# failure fails the make target that called this.
# Usage: testkit/apt-install.sh PACKAGE...
set -euo pipefail

if ! command -v dpkg-query >/dev/null; then
  echo "$0: not a Debian or Ubuntu system: install the equivalents of: $*" >&2
  exit 1
fi

missing=()
for p in "$@"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing Debian packages (no recommends): ${missing[*]}"
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
