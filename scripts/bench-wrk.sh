#!/usr/bin/env bash
# Loopback load test: what cognito_bearer costs per request.
#
# Runs one Caddy (bin/caddy, built with xcaddy) with three sites on 127.0.0.1:
#   plain   respond "ok"
#   bearer  cognito_bearer (access token required) + respond "ok"
#   mapped  cognito_bearer with users mapped + require role + respond "ok"
# gets a real access token from a private cognito-local (the mapped site's
# local user is made with the caddy cognito CLI), checks the answers with and
# without it, then runs `wrk -t2 -c64 -d4s` against each site in interleaved
# rounds and prints the median requests/s of each and the ratios to plain.
# Loopback only; everything it starts is stopped at exit.
#
#   DURATION=4s ROUNDS=5 THREADS=2 CONNECTIONS=64 scripts/bench-wrk.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=${DURATION:-4s}
rounds=${ROUNDS:-5}
threads=${THREADS:-2}
conns=${CONNECTIONS:-64}

command -v wrk >/dev/null || die "wrk is not installed (make install-deps)"
[ -f "$root/testenv/node_modules/cognito-local/lib/bin/start.js" ] || die "cognito-local is not installed (make install-deps)"
ensure_caddy
ensure_tools

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		port_busy "$p" || { echo "$p"; return; }
	done
}

work=$(mktemp -d /tmp/caddy-cognito-bench.XXXXXX)
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

cl_port=$(free_port)
start cognito-local "$work/cognito-local.log" \
	env PORT="$cl_port" HOST=localhost bash -c "cd '$work' && exec node '$root/testenv/node_modules/cognito-local/lib/bin/start.js'"
eval "$("$root/bin/seed" -url "http://localhost:$cl_port" -pool bench -client bench-app \
	-user bench@example.com -password 'Bench-Passw0rd!' -groups readers -token)"

plain_port=$(free_port)
bearer_port=$(free_port)
while [ "$bearer_port" = "$plain_port" ]; do bearer_port=$(free_port); done
mapped_port=$(free_port)
while [ "$mapped_port" = "$plain_port" ] || [ "$mapped_port" = "$bearer_port" ]; do mapped_port=$(free_port); done
cat >"$work/Caddyfile" <<CADDY
{
	admin off
	auto_https off
	persist_config off
	cognito {
		store sqlite $work/cognito.db
		pool bench {
			issuer $COGNITO_ISSUER
			client_id $COGNITO_CLIENT_ID
		}
	}
}

http://127.0.0.1:$plain_port {
	respond "ok"
}

http://127.0.0.1:$bearer_port {
	cognito_bearer
	respond "ok"
}

http://127.0.0.1:$mapped_port {
	cognito_bearer {
		users mapped
		require role reader
	}
	respond "ok"
}
CADDY
# The mapped site's user, made with the CLI as an operator would.
"$root/bin/caddy" cognito users add --db "$work/cognito.db" --username bench --role reader >/dev/null
"$root/bin/caddy" cognito users link bench --db "$work/cognito.db" --issuer "$COGNITO_ISSUER" --sub "$COGNITO_SUB" >/dev/null
start caddy "$work/caddy.log" env HOME="$work" XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" \
	"$root/bin/caddy" run --config "$work/Caddyfile" --adapter caddyfile
wait_http "http://127.0.0.1:$plain_port/" 30 && wait_http "http://127.0.0.1:$bearer_port/" 30 ||
	{ cat "$work/caddy.log" >&2; die "caddy did not start"; }

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$bearer_port/")
[ "$code" = 401 ] || die "bearer site without a token: HTTP $code, want 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $COGNITO_ACCESS_TOKEN" "http://127.0.0.1:$bearer_port/")
[ "$code" = 200 ] || die "bearer site with a valid token: HTTP $code, want 200"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $COGNITO_ACCESS_TOKEN" "http://127.0.0.1:$mapped_port/")
[ "$code" = 200 ] || die "mapped site with a valid token: HTTP $code, want 200"

run_wrk() { # name url [header]
	local out
	if [ $# -gt 2 ]; then
		out=$(wrk -t"$threads" -c"$conns" -d"$duration" --latency -H "$3" "$2")
	else
		out=$(wrk -t"$threads" -c"$conns" -d"$duration" --latency "$2")
	fi
	printf '%s\n' "--- $1 ($2)" "$out" >&2
	if grep -q 'Non-2xx' <<<"$out"; then die "$1: wrk saw non-2xx answers"; fi
	awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

# The sites are measured in interleaved rounds and each reports its median:
# load on a shared machine drifts, and back-to-back runs of one site and
# then the other would measure the drift.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
say "wrk -t$threads -c$conns -d$duration, $rounds interleaved rounds (loopback)"
# Every site gets the very same request, token included, so that the ratio
# is the cost of the plugin rather than of parsing a larger request.
auth="Authorization: Bearer $COGNITO_ACCESS_TOKEN"
: >"$work/plain.rps"; : >"$work/bearer.rps"; : >"$work/mapped.rps"
for round in $(seq "$rounds"); do
	run_wrk plain "http://127.0.0.1:$plain_port/" "$auth" >>"$work/plain.rps"
	run_wrk cognito_bearer "http://127.0.0.1:$bearer_port/" "$auth" >>"$work/bearer.rps"
	run_wrk mapped "http://127.0.0.1:$mapped_port/" "$auth" >>"$work/mapped.rps"
done
plain=$(median <"$work/plain.rps")
bearer=$(median <"$work/bearer.rps")
mapped=$(median <"$work/mapped.rps")
printf '\nwrk -t%s -c%s -d%s, loopback, %s cores, median of %s interleaved rounds\n' "$threads" "$conns" "$duration" "$(nproc)" "$rounds"
printf '  %-32s %12s req/s\n' 'respond "ok"' "$plain" 'cognito_bearer + respond' "$bearer" 'cognito_bearer users mapped' "$mapped"
awk -v p="$plain" -v b="$bearer" -v m="$mapped" 'BEGIN {
	printf "  ratio bearer/plain: %.2f (target >= 0.90)\n", b/p
	printf "  ratio mapped/plain: %.2f\n", m/p
}'
