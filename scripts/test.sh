#!/usr/bin/env bash
# Runs the whole test suite the way CI does: gofmt, go vet, then go test -race.
# The tests start their own redis-server processes on free loopback ports
# (see internal/redistest), so redis-server and redis-cli must be installed;
# when run as root this script installs them with apt-get.
#
# Extra arguments go to `go test`, e.g. scripts/test.sh -run TestGet ./drivers/...
# (with no package among them, ./... is tested).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test.sh: installing redis-server (the tests run their own servers on free ports)" >&2
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
	else
		echo "test.sh: redis-server and redis-cli are needed by the tests." >&2
		echo "  Debian/Ubuntu: sudo apt-get install redis-server" >&2
		echo "  macOS:         brew install redis" >&2
		echo "  or re-run this script as root to have it installed." >&2
		exit 1
	fi
fi

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
