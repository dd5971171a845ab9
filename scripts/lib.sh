# Shared helpers for scripts/demo.sh and scripts/bench-wrk.sh (sourced).

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# ensure_caddy builds bin/caddy with xcaddy when it is missing or older than
# the plugin's sources.
ensure_caddy() {
	local bin="$root/bin/caddy"
	if [ -x "$bin" ] && [ -z "$(find "$root" -maxdepth 3 \( -path "$root/integration" -o -path "$root/testenv" -o -path "$root/.git" \) -prune -o \
		\( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$bin" -print -quit)" ]; then
		return 0
	fi
	say "building bin/caddy with xcaddy (make build)"
	make -C "$root" --no-print-directory build >&2 || die "make build failed"
}

# ensure_tools builds bin/seed, bin/echo, bin/signin, bin/mint and
# bin/pgserve from the integration module.
ensure_tools() {
	mkdir -p "$root/bin"
	(cd "$root/integration" && go build -o "$root/bin/seed" ./cmd/seed && go build -o "$root/bin/echo" ./cmd/echo &&
		go build -o "$root/bin/signin" ./cmd/signin && go build -o "$root/bin/mint" ./cmd/mint &&
		go build -o "$root/bin/pgserve" ./cmd/pgserve) ||
		die "building the tools in bin/ (seed, echo, signin, mint, pgserve) failed"
}

# load_vars CMD...: run CMD, which prints shell assignments (bin/seed,
# bin/signin), and evaluate them; a failing CMD stops the script (a bare
# eval "$(CMD)" would carry on).
load_vars() {
	local out
	out=$("$@") || die "$(basename "$1") failed"
	eval "$out"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_http URL [seconds]: poll until URL answers at all.
wait_http() {
	local url=$1 limit=${2:-30} i
	for ((i = 0; i < limit * 10; i++)); do
		if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
		sleep 0.1
	done
	return 1
}

pids=()
# start NAME LOGFILE CMD...: run CMD in the background, remember its pid.
start() {
	local name=$1 log=$2
	shift 2
	"$@" >"$log" 2>&1 &
	pids+=($!)
	say "$name started (pid $!, log $log)"
}

stop_all() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	pids=()
}
