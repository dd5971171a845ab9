#!/usr/bin/env bash
# make bench: the Go benchmarks of the plugin, then the wrk comparison of a
# plain site and the same site behind cognito_bearer (scripts/bench-wrk.sh).
#   BENCH=regexp   which Go benchmarks (default: all)
#   SKIP_WRK=1     only the Go benchmarks
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
echo "== go test -bench (root module)"
go test -run '^$' -bench "${BENCH:-.}" -benchmem -count=1 ./...
if [ -z "${SKIP_WRK:-}" ]; then
	echo "== wrk"
	scripts/bench-wrk.sh
fi
