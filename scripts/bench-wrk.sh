#!/usr/bin/env bash
# Loopback load test: what cognito_bearer and cognito_login cost per request.
#
# Runs one Caddy (bin/caddy, built with xcaddy) with four sites on 127.0.0.1:
#   plain   respond "ok"
#   bearer  cognito_bearer (access token required) + respond "ok"
#   mapped  cognito_bearer with users mapped + require role + respond "ok"
#   login   cognito_login (a signed-in session required) + respond "ok"
# gets a real access token from a private cognito-local, and a real session
# cookie by signing in to the login site through cognito-local's hosted UI
# (bin/signin; the local user both the mapped and the login site know is
# made with the caddy cognito CLI), checks the answers with and without
# them, then runs `wrk -t2 -c64 -d4s` against each site in interleaved
# rounds and prints the median requests/s of each and the median of the
# per-round ratios to plain.
# Every site gets the same request: token header and session cookie.
# On two or more CPUs Caddy runs on CPU 0 and wrk on CPU 1 (taskset), so
# the client's cost does not blur the ratios; beside each rate it prints
# the server's CPU time per request, read from /proc/<caddy>/stat, which
# the client cannot blur at all. Any answer but 200 (3xx included, which
# wrk does not count) or any socket error fails the run.
# Loopback only; everything it starts is stopped at exit.
#
#   DURATION=4s ROUNDS=5 THREADS=2 CONNECTIONS=64 scripts/bench-wrk.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=${DURATION:-4s}
rounds=${ROUNDS:-5}
threads=${THREADS:-2}
conns=${CONNECTIONS:-64}
# Caddy and wrk on separate CPUs where there are two.
server_cpu=() client_cpu=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	server_cpu=(taskset -c 0) client_cpu=(taskset -c 1)
fi
ticks_per_s=$(getconf CLK_TCK)

command -v wrk >/dev/null || die "wrk is not installed (make install-deps)"
[ -f "$root/testenv/node_modules/cognito-local/lib/bin/start.js" ] || die "cognito-local is not installed (make install-deps)"
# The login site signs in through cognito-local's hosted UI, which must echo
# the nonce: testenv/patch-cognito-local.js, run by npm ci.
node "$root/testenv/patch-cognito-local.js" --check >/dev/null || die "cognito-local is not patched (make install-deps)"
ensure_caddy
ensure_tools

taken=" "
# pick_port VAR: set VAR to a port nobody listens on and not picked before.
pick_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		[[ $taken == *" $p "* ]] && continue
		port_busy "$p" || break
	done
	taken+="$p "
	printf -v "$1" '%s' "$p"
}

work=$(mktemp -d /tmp/caddy-cognito-bench.XXXXXX)
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

for v in cl_port plain_port bearer_port mapped_port login_port; do pick_port "$v"; done
start cognito-local "$work/cognito-local.log" \
	env PORT="$cl_port" HOST=localhost bash -c "cd '$work' && exec node '$root/testenv/node_modules/cognito-local/lib/bin/start.js'"
# Two app clients: bench-app (public) gives the access token; bench-web
# (with a secret, the code flow and the login site's callback) signs in.
load_vars "$root/bin/seed" -url "http://localhost:$cl_port" -pool bench -client bench-app \
	-user bench@example.com -password 'Bench-Passw0rd!' -groups readers -token
api_client=$COGNITO_CLIENT_ID
login_site="http://127.0.0.1:$login_port"
load_vars "$root/bin/seed" -url "http://localhost:$cl_port" -pool bench -client bench-web \
	-user bench@example.com -password 'Bench-Passw0rd!' -groups readers \
	-secret -callback "$login_site/auth/callback" -logout "$login_site/auth/logout/done"
web_client=$COGNITO_CLIENT_ID

cat >"$work/Caddyfile" <<CADDY
{
	admin off
	auto_https off
	persist_config off
	cognito {
		store sqlite $work/cognito.db
		pool bench {
			issuer $COGNITO_ISSUER
			# cognito_login signs in with the first; tokens of both are accepted.
			client_id $web_client $api_client
			client_secret $COGNITO_CLIENT_SECRET
			domain http://localhost:$cl_port
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

$login_site {
	cognito_login
	respond "ok"
}
CADDY
# The local user of the mapped and the login site, made with the CLI as an
# operator would (linked already, so the login site admits it without an
# admit rule).
"$root/bin/caddy" cognito users add --db "$work/cognito.db" --username bench --role reader >/dev/null
"$root/bin/caddy" cognito users link bench --db "$work/cognito.db" --issuer "$COGNITO_ISSUER" --sub "$COGNITO_SUB" >/dev/null
start caddy "$work/caddy.log" "${server_cpu[@]}" env HOME="$work" XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" \
	"$root/bin/caddy" run --config "$work/Caddyfile" --adapter caddyfile
wait_http "http://127.0.0.1:$plain_port/" 30 && wait_http "http://127.0.0.1:$bearer_port/" 30 &&
	wait_http "$login_site/" 30 ||
	{ cat "$work/caddy.log" >&2; die "caddy did not start"; }
caddy_pid=${pids[-1]} # taskset and env exec Caddy: the same process

# cpu_ticks: user+system CPU ticks Caddy has used so far (fields 14, 15 of
# /proc/pid/stat; the name field may hold spaces, so count from its end).
cpu_ticks() { sed 's/^.*) //' "/proc/$caddy_pid/stat" | awk '{ print $12 + $13 }'; }

# Every answer must be a 200: wrk itself counts only statuses >= 400.
cat >"$work/status.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body) if status ~= 200 then bad = bad + 1 end end
function done(summary, latency, requests)
	local n = 0
	for _, t in ipairs(threads) do n = n + t:get("bad") end
	io.write(string.format("not-200: %d\n", n))
end
LUA

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$bearer_port/")
[ "$code" = 401 ] || die "bearer site without a token: HTTP $code, want 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $COGNITO_ACCESS_TOKEN" "http://127.0.0.1:$bearer_port/")
[ "$code" = 200 ] || die "bearer site with a valid token: HTTP $code, want 200"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $COGNITO_ACCESS_TOKEN" "http://127.0.0.1:$mapped_port/")
[ "$code" = 200 ] || die "mapped site with a valid token: HTTP $code, want 200"
code=$(curl -s -o /dev/null -w '%{http_code}' "$login_site/")
[ "$code" = 302 ] || [ "$code" = 401 ] || die "login site without a session: HTTP $code, want 302 or 401"
out=$("$root/bin/signin" -site "$login_site" -user bench@example.com -password 'Bench-Passw0rd!') ||
	{ tail -20 "$work/caddy.log" >&2; die "signing in to the login site failed"; }
eval "$out"
cookie="Cookie: $COGNITO_SESSION_COOKIE"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" "$login_site/")
[ "$code" = 200 ] || die "login site with a session cookie: HTTP $code, want 200"

run_wrk() { # name url [header…]: prints "requests/s µs-of-server-CPU-per-request"
	local out name=$1 url=$2 h args=() before after
	shift 2
	for h in "$@"; do args+=(-H "$h"); done
	before=$(cpu_ticks)
	out=$("${client_cpu[@]}" wrk -t"$threads" -c"$conns" -d"$duration" --latency -s "$work/status.lua" "${args[@]}" "$url")
	after=$(cpu_ticks)
	printf '%s\n' "--- $name ($url)" "$out" >&2
	if grep -q 'Non-2xx' <<<"$out"; then die "$name: wrk saw non-2xx answers"; fi
	if grep -q 'Socket errors' <<<"$out"; then die "$name: wrk saw socket errors"; fi
	grep -q '^not-200: 0$' <<<"$out" || die "$name: answers other than 200 ($(grep '^not-200' <<<"$out"))"
	awk -v b="$before" -v a="$after" -v hz="$ticks_per_s" '
		/ requests in / { n = $1 }
		/^Requests\/sec:/ { rps = $2 }
		END { printf "%s %.1f\n", rps, (a - b) / hz / n * 1e6 }' <<<"$out"
}

# The sites are measured in interleaved rounds, in a rotating order: load
# on a shared machine drifts, and back-to-back runs of one site and then
# the other would measure the drift. Each round gives a ratio of each site
# to plain measured minutes apart at most; the ratios reported are the
# medians of those per-round ratios (steadier than a ratio of medians when
# the machine's speed swings between rounds).
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
say "wrk -t$threads -c$conns -d$duration, $rounds interleaved rounds (loopback)"
# Every site gets the very same request, token and session cookie
# included, so that the ratio is the cost of the plugin rather than of
# parsing a larger request.
auth="Authorization: Bearer $COGNITO_ACCESS_TOKEN"
sites=(plain bearer mapped login)
declare -A url=([plain]="http://127.0.0.1:$plain_port/" [bearer]="http://127.0.0.1:$bearer_port/"
	[mapped]="http://127.0.0.1:$mapped_port/" [login]="$login_site/")
for s in "${sites[@]}"; do : >"$work/$s.rps"; : >"$work/$s.ratio"; : >"$work/$s.cpu"; done
for round in $(seq "$rounds"); do
	declare -A rps=()
	for i in 0 1 2 3; do
		s=${sites[$(((i + round) % 4))]}
		res=$(run_wrk "$s" "${url[$s]}" "$auth" "$cookie") # a failure stops the run (set -e)
		read -r r c <<<"$res"
		rps[$s]=$r
		echo "$r" >>"$work/$s.rps"
		echo "$c" >>"$work/$s.cpu"
	done
	for s in bearer mapped login; do
		awk -v a="${rps[$s]}" -v p="${rps[plain]}" 'BEGIN { printf "%.4f\n", a / p }' >>"$work/$s.ratio"
	done
done
pinning="not pinned"
[ "${#server_cpu[@]}" -gt 0 ] && pinning="caddy on CPU 0, wrk on CPU 1"
printf '\nwrk -t%s -c%s -d%s, loopback, %s cores (%s), %s interleaved rounds in rotating order\n' "$threads" "$conns" "$duration" "$(nproc)" "$pinning" "$rounds"
for s in plain bearer mapped login; do
	case $s in
	plain) label='respond "ok"' ;; bearer) label='cognito_bearer + respond' ;;
	mapped) label='cognito_bearer users mapped' ;; login) label='cognito_login session + respond' ;;
	esac
	printf '  %-32s %12s req/s (median)   server CPU %6s µs/request (median)\n' "$label" "$(median <"$work/$s.rps")" "$(median <"$work/$s.cpu")"
done
printf '  per-round ratios to plain: bearer %s | mapped %s | login %s\n' \
	"$(paste -sd' ' "$work/bearer.ratio")" "$(paste -sd' ' "$work/mapped.ratio")" "$(paste -sd' ' "$work/login.ratio")"
printf '  ratio bearer/plain: %.2f (target >= 0.90), median of the rounds\n' "$(median <"$work/bearer.ratio")"
printf '  ratio mapped/plain: %.2f\n' "$(median <"$work/mapped.ratio")"
printf '  ratio login/plain: %.2f (target >= 0.90)\n' "$(median <"$work/login.ratio")"
