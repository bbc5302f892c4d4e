#!/usr/bin/env bash
# Runs the whole test suite the way CI does: gofmt, go vet, then go test -race.
# The tests start their own redis-server and memcached processes on free
# loopback ports (see internal/redistest and internal/memcachedtest), so
# redis-server, redis-cli and memcached must be installed; when run as root
# this script installs them with apt-get.
#
# Extra arguments go to `go test`, e.g. scripts/test.sh -run TestGet ./drivers/...
# (with no package among them, ./... is tested).
set -euo pipefail
cd "$(dirname "$0")/.."

# need PACKAGE COMMAND...: the Debian package PACKAGE provides COMMANDs; it
# is installed when one of them is missing and this script runs as root.
apt_updated=0
need() {
	local pkg=$1 cmd missing=0
	shift
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 || missing=1
	done
	[ "$missing" -eq 0 ] && return 0
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test.sh: installing $pkg (the tests run their own servers on free ports)" >&2
		if [ "$apt_updated" -eq 0 ]; then
			apt-get update
			apt_updated=1
		fi
		DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg"
	else
		echo "test.sh: the tests need $* ($pkg)." >&2
		echo "  Debian/Ubuntu: sudo apt-get install $pkg" >&2
		echo "  macOS:         brew install ${pkg%-server}" >&2
		echo "  or re-run this script as root to have it installed." >&2
		exit 1
	fi
}
need redis-server redis-server redis-cli
need memcached memcached

# Package patterns on the command line replace ./...; everything else is
# passed to go test as flags.
pkgs=()
for arg in "$@"; do
	case "$arg" in
	. | ./* | ../* | github.com/*) pkgs+=("$arg") ;;
	esac
done
default=()
if [ ${#pkgs[@]} -eq 0 ]; then
	pkgs=(./...)
	default=(./...)
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
	echo "test.sh: gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet "${pkgs[@]}"
go test -race "$@" ${default[@]+"${default[@]}"}
