#!/usr/bin/env bash
# Installs the system libraries Rein links (OpenBLAS, SQLite headers) on Debian/Ubuntu, and any
# further Debian packages named as arguments (CI: `scripts/setup.sh tmux chromium` for the rating-screen
# and HTML-report tests).
# A machine that has never run `apt-get update` has no package lists, so `apt-get install` alone
# finds nothing: the lists are fetched first when a package is missing. Run as root (or with sudo).
set -euo pipefail

packages=(libopenblas-dev libsqlite3-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo "$0" "$@"
  fi
  echo "error: installing ${missing[*]} needs root (run as root or install sudo)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Package lists are fetched only when they are absent or do not know a missing package.
if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
