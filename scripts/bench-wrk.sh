#!/usr/bin/env bash
# Loopback load test: what cognito_bearer and cognito_login cost per request.
#
# Runs one Caddy (bin/caddy, built with xcaddy) with six sites on 127.0.0.1:
#   plain   respond "ok"
#   bearer  cognito_bearer (access token required) + respond "ok"
#   lean    the same with `identity_headers user`: one identity header
#           instead of seven, which shows what the other headers cost
#   mapped  cognito_bearer with users mapped + require role + respond "ok"
#   login   cognito_login (a signed-in session required) + respond "ok"
#   assert  the login site with `assertion` (X-Auth-Assertion signed, and
#           reused while fresh) on its own port: the same session cookie
# and two more Caddys, each with only a login site: login-pg on a
# PostgreSQL store and login-sq on SQLite (see below),
# and loads them with seven workloads (and those two): the six sites with one repeated
# token and session, and "cold": the bearer site with COLD_TOKENS (25,000)
# distinct valid tokens in turn (bin/mint signs them with cognito-local's
# key), more than its token cache holds. Each cold run goes on from the
# token where the last one stopped, yet the cache evicts arbitrary
# entries, so a token may still be there when its turn comes again: the
# run counts the cache's misses (Caddy's /metrics, on a loopback admin
# port) and the cold limit is per fresh token, that is per miss. The
# cold path is compared with the raw RSA-2048 verification
# time of this machine (bin/mint -rsa, on Caddy's CPU, in every round).
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
# the server's CPU time per request, user and system apart, read from
# /proc/<caddy>/stat, which the client cannot blur at all. Any answer but
# 200 (3xx included, which wrk does not count) or any socket error fails
# the run.
# Loopback only; everything it starts is stopped at exit.
#
# Targets (a "below target" line is printed for each one missed; the run
# still succeeds, as speed is measured, not asserted): bearer and login
# >= 0.95 of plain, mapped >= 0.93, assert >= 0.90 of login, and the cold path's server CPU per
# request <= the repeated token's + 1.10 x one raw RSA verification.
#
# PROFILE=dir also, after the rounds, saves a CPU profile and the allocations of each workload under wrk
# (dir/<site>.cpu.pprof, dir/<site>.allocs.pprof: look with
# `go tool pprof -top [-diff_base dir/<site>.allocs-before.pprof] bin/caddy <file>`).
#
# Instructions: this machine's speed swings by a third from one second to
# the next (other tenants), more than the margins of the targets, so the
# rates above are backed by a count that does not swing. After the rounds
# each Caddy is restarted under valgrind's callgrind (INSTRUCTIONS=0 leaves
# it out) and every workload is replayed at a low rate; what is printed is
# the user-space instructions Caddy ran per request (GC included, the
# kernel's share of the network not: it is the same for every site), the
# plugin's cost over plain in instructions, and the cold limit in
# instructions: (cold - repeated) / the instructions of the very
# crypto/rsa.VerifyPKCS1v15 calls that the cold requests made.
#
# INSTRUCTIONS_DIR=dir keeps each workload's callgrind file there
# (dir/<site>.callgrind, and its request count in dir/<site>.requests:
# `callgrind_annotate --inclusive=no`). INSTRUCTIONS_DURATION (12s) is each
# counted window. ROUNDS=0 makes only the instruction counts.
#
#   DURATION=4s ROUNDS=5 THREADS=2 CONNECTIONS=64 WRK_TIMEOUT=10s COLD_TOKENS=25000 PROFILE= INSTRUCTIONS=1 INSTRUCTIONS_DIR= CADDY_BIN= scripts/bench-wrk.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=${DURATION:-4s}
rounds=${ROUNDS:-5}
threads=${THREADS:-2}
conns=${CONNECTIONS:-64}
cold_tokens=${COLD_TOKENS:-25000}
profile=${PROFILE:-}
# wrk counts an answer slower than this as a socket error (its default is
# 2s). Once, wrk's CPU stood still for some 4 s (a 4s run took 8.6 s,
# its slowest answer 179 ms): every open connection timed out and the run
# failed. A server that hangs still fails it, after 10 s.
wrk_timeout=${WRK_TIMEOUT:-10s}
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
# CADDY_BIN=path measures another build (bin/caddy-dev from `make dev`
# keeps the symbols that xcaddy strips, for callgrind_annotate).
caddy_bin=${CADDY_BIN:-$root/bin/caddy}
[ -n "${CADDY_BIN:-}" ] || ensure_caddy
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

for v in cl_port plain_port bearer_port lean_port mapped_port login_port assert_port admin_port; do pick_port "$v"; done
# The admin endpoint, on loopback: the cold runs read the token cache's
# counters from its /metrics, and PROFILE reads its pprof.
admin="admin 127.0.0.1:$admin_port"
[ -n "$profile" ] && mkdir -p "$profile"
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
	$admin
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

# The bearer site sending one identity header: what the others cost.
http://127.0.0.1:$lean_port {
	cognito_bearer {
		identity_headers user
	}
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

# Cookies are per host, not port: the login site's session works here too.
http://127.0.0.1:$assert_port {
	cognito_login {
		assertion
	}
	respond "ok"
}
CADDY
# The local user of the mapped and the login site, made with the CLI as an
# operator would (linked already, so the login site admits it without an
# admit rule).
"$caddy_bin" cognito users add --db "$work/cognito.db" --username bench --role reader >/dev/null
"$caddy_bin" cognito users link bench --db "$work/cognito.db" --issuer "$COGNITO_ISSUER" --sub "$COGNITO_SUB" >/dev/null
start caddy "$work/caddy.log" "${server_cpu[@]}" env HOME="$work" XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" \
	"$caddy_bin" run --config "$work/Caddyfile" --adapter caddyfile
wait_http "http://127.0.0.1:$plain_port/" 30 && wait_http "http://127.0.0.1:$bearer_port/" 30 &&
	wait_http "$login_site/" 30 ||
	{ cat "$work/caddy.log" >&2; die "caddy did not start"; }
caddy_pid=${pids[-1]} # taskset and env exec Caddy: the same process

# cpu_ticks PID: the user and the system CPU ticks that Caddy has used so
# far, and its minor page faults (fields 14, 15 and 10 of /proc/pid/stat;
# the name field may hold spaces, so count from its end). Page faults are
# system time: a heap that the GC hands back to the kernel and grows again
# pays them.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12, $13, $8 }'; }

# Every answer must be a 200: wrk itself counts only statuses >= 400.
# With BENCH_TOKENS set (the cold workload), every request takes the next
# of the tokens in that file, each of the BENCH_THREADS threads its own
# share, so that no token comes twice before the list wraps; the cookie
# (BENCH_COOKIE) is sent as in the other workloads.
cat >"$work/status.lua" <<'LUA'
local threads, counter = {}, 0
local tokens_file, cookie = os.getenv("BENCH_TOKENS"), os.getenv("BENCH_COOKIE")
function setup(thread)
	counter = counter + 1
	thread:set("id", counter)
	table.insert(threads, thread)
end
function init(args)
	bad = 0
	if tokens_file and tokens_file ~= "" then
		tokens = {}
		for line in io.lines(tokens_file) do tokens[#tokens + 1] = line end
		step = tonumber(os.getenv("BENCH_THREADS"))
		pos = id + tonumber(os.getenv("BENCH_TOKENS_START") or "0")
		if pos > #tokens then pos = pos - #tokens end
	end
end
if tokens_file and tokens_file ~= "" then
	function request()
		local t = tokens[pos]
		pos = pos + step
		if pos > #tokens then pos = pos - #tokens end
		return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. t, ["Cookie"] = cookie })
	end
end
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
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" "http://127.0.0.1:$assert_port/")
[ "$code" = 200 ] || die "assertion site with the session cookie: HTTP $code, want 200"

# login-pg: the login site on a PostgreSQL store (bin/pgserve: a
# throwaway server of Debian's PostgreSQL), and login-sq, the same on
# SQLite: each in a Caddy of its own with only that site, so the two
# processes differ in nothing but the store (the main Caddy, with six
# sites and the cold workload's 10,000 cached tokens, has another heap
# and so another GC rhythm). A signed-in request must cost a memory
# lookup on either store; login-pg is compared with login-sq.
# BENCH_POSTGRES=0 leaves both out.
# login_alone NAME STORE: starts that Caddy (config $work/Caddyfile.NAME,
# site ${url[NAME]}) with `store STORE`, makes and links the local user
# with the CLI, signs in, and sets pid_of[NAME] and cookie_of[NAME].
declare -A url=() pid_of=() cookie_of=()
login_alone() {
	local name=$1 store=$2 port site home out code cli
	pick_port port
	site="http://127.0.0.1:$port" home="$work/$name"
	url[$name]="$site/"
	load_vars "$root/bin/seed" -url "http://localhost:$cl_port" -pool bench -client "bench-web-$name" \
		-user bench@example.com -password 'Bench-Passw0rd!' -groups readers \
		-secret -callback "$site/auth/callback" -logout "$site/auth/logout/done"
	mkdir -p "$home"
	cat >"$work/Caddyfile.$name" <<CADDY
{
	admin off
	auto_https off
	persist_config off
	cognito {
		store $store
		secret $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
		pool bench {
			issuer $COGNITO_ISSUER
			client_id $COGNITO_CLIENT_ID
			client_secret $COGNITO_CLIENT_SECRET
			domain http://localhost:$cl_port
		}
	}
}

$site {
	cognito_login
	respond "ok"
}
CADDY
	cli=(--config "$work/Caddyfile.$name" --adapter caddyfile)
	"$caddy_bin" cognito users add "${cli[@]}" --username bench --role reader >/dev/null 2>&1 ||
		die "$name: caddy cognito users add failed"
	"$caddy_bin" cognito users link bench "${cli[@]}" --issuer "$COGNITO_ISSUER" --sub "$COGNITO_SUB" >/dev/null 2>&1 ||
		die "$name: caddy cognito users link failed"
	start "caddy-$name" "$work/caddy-$name.log" "${server_cpu[@]}" env HOME="$home" XDG_DATA_HOME="$home/data" XDG_CONFIG_HOME="$home/config" \
		"$caddy_bin" run --config "$work/Caddyfile.$name" --adapter caddyfile
	wait_http "$site/" 30 || { cat "$work/caddy-$name.log" >&2; die "caddy of $name did not start"; }
	pid_of[$name]=${pids[-1]}
	out=$("$root/bin/signin" -site "$site" -user bench@example.com -password 'Bench-Passw0rd!') ||
		{ tail -20 "$work/caddy-$name.log" >&2; die "$name: signing in failed"; }
	cookie_of[$name]="Cookie: $(eval "$out"; echo "$COGNITO_SESSION_COOKIE")"
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "${cookie_of[$name]}" "$site/")
	[ "$code" = 200 ] || die "$name with a session cookie: HTTP $code, want 200"
}
alone=()
if [ "${BENCH_POSTGRES:-1}" != 0 ]; then
	start pgserve "$work/pgserve.log" "$root/bin/pgserve"
	for _ in $(seq 300); do grep -q '^PG_DSN=' "$work/pgserve.log" && break; sleep 0.1; done
	grep -q '^PG_DSN=' "$work/pgserve.log" || { cat "$work/pgserve.log" >&2; die "PostgreSQL did not start (make install-deps; BENCH_POSTGRES=0 skips it)"; }
	login_alone login-pg "postgres \"$(sed -n 's/^PG_DSN=//p' "$work/pgserve.log")\""
	login_alone login-sq "sqlite $work/login-sq/cognito.db"
	alone=(login-pg login-sq)
fi

# The cold workload's tokens: distinct, valid, for the same user.
"$root/bin/mint" -issuer "$COGNITO_ISSUER" -client "$api_client" -sub "$COGNITO_SUB" -username bench \
	-n "$cold_tokens" >"$work/tokens" || die "minting $cold_tokens tokens failed"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(tail -1 "$work/tokens")" "http://127.0.0.1:$bearer_port/")
[ "$code" = 200 ] || die "bearer site with a minted token: HTTP $code, want 200"

# token_lookups: the main Caddy's token cache hits and misses so far
# ("hits misses"; the counters may be written as floats, 1.2e+06).
token_lookups() {
	curl -fsS "http://127.0.0.1:$admin_port/metrics" | awk '
		/^caddy_cognito_cache_lookups_total\{cache="token",result="hit"\}/ { h = $2 }
		/^caddy_cognito_cache_lookups_total\{cache="token",result="miss"\}/ { m = $2 }
		END { printf "%d %d\n", h, m }'
}

run_wrk() { # name: loads workload name; prints "requests/s", the server's CPU µs per request "all user system", and its page faults per request
	local out name=$1 url=${url[$1]} pid=${pid_of[$1]:-$caddy_pid} before after start=0 looked n h0 m0 h1 m1
	# The cold workload goes on from the token after the last run's, and
	# counts the token cache's lookups meanwhile (nothing else runs).
	if [ "$name" = cold ]; then
		start=$(cat "$work/cold.pos")
		looked=$(token_lookups) || die "reading Caddy's /metrics failed"
	fi
	before=$(cpu_ticks "$pid")
	out=$(BENCH_TOKENS="${tokens_of[$name]:-}" BENCH_TOKENS_START="$start" BENCH_COOKIE="$COGNITO_SESSION_COOKIE" BENCH_THREADS="$threads" \
		"${client_cpu[@]}" wrk -t"$threads" -c"$conns" -d"$duration" --timeout "$wrk_timeout" --latency -s "$work/status.lua" \
		-H "$auth" -H "${cookie_of[$name]:-$cookie}" "$url")
	after=$(cpu_ticks "$pid")
	printf '%s\n' "--- $name ($url)" "$out" >&2
	if grep -q 'Non-2xx' <<<"$out"; then die "$name: wrk saw non-2xx answers"; fi
	if grep -q 'Socket errors' <<<"$out"; then die "$name: wrk saw socket errors"; fi
	grep -q '^not-200: 0$' <<<"$out" || die "$name: answers other than 200 ($(grep '^not-200' <<<"$out"))"
	if [ "$name" = cold ]; then
		n=$(awk '/ requests in / { print $1 }' <<<"$out")
		echo $(((start + n) % cold_tokens)) >"$work/cold.pos"
		# The share of this run's requests that verified a signature.
		read -r h0 m0 <<<"$looked"
		read -r h1 m1 <<<"$(token_lookups)" || die "reading Caddy's /metrics failed"
		awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) 'BEGIN { if (h + m == 0) exit 1; printf "%.4f\n", m / (h + m) }' >>"$work/cold.misses" ||
			die "cold: the token cache counted no lookups"
	fi
	awk -v b="$before" -v a="$after" -v hz="$ticks_per_s" '
		/ requests in / { n = $1 }
		/^Requests\/sec:/ { rps = $2 }
		END {
			split(b, b2, " "); split(a, a2, " ")
			u = (a2[1] - b2[1]) / hz / n * 1e6; s = (a2[2] - b2[2]) / hz / n * 1e6
			printf "%s %.1f %.1f %.1f %.3f\n", rps, u + s, u, s, (a2[3] - b2[3]) / n
		}' <<<"$out"
}

# The sites are measured in interleaved rounds, in a rotating order, and
# plain runs again between every two sites: this machine's speed swings by
# a third within seconds (other tenants), so a site is compared with the
# plain runs just before and just after it (their mean), never with one
# measured a minute away. The ratios reported are the medians of those
# per-round ratios. login-pg is compared with login-sq, and assert with
# login, each as the ratio of their ratios to their own neighbouring plain.
# The rate targets, used by the rounds' check and the projection below.
declare -A goal=([bearer]=0.95 [mapped]=0.93 [login]=0.95)
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
say "wrk -t$threads -c$conns -d$duration, $rounds interleaved rounds (loopback)"
# Every site gets the very same request, token and session cookie
# included, so that the ratio is the cost of the plugin rather than of
# parsing a larger request.
auth="Authorization: Bearer $COGNITO_ACCESS_TOKEN"
sites=(plain bearer lean mapped login assert cold)
url+=([plain]="http://127.0.0.1:$plain_port/" [bearer]="http://127.0.0.1:$bearer_port/" [lean]="http://127.0.0.1:$lean_port/"
	[mapped]="http://127.0.0.1:$mapped_port/" [login]="$login_site/" [assert]="http://127.0.0.1:$assert_port/"
	[cold]="http://127.0.0.1:$bearer_port/")
declare -A tokens_of=([cold]="$work/tokens")
sites+=("${alone[@]}")
others=("${sites[@]:1}")
# What each run of a site gives, one file per figure (and the ratio).
figures=(rps cpu user sys faults)
for s in "${sites[@]}"; do for f in "${figures[@]}" ratio; do : >"$work/$s.$f"; done; done
# record SITE RPS CPU USER SYS FAULTS: one run's figures (run_wrk's output).
record() {
	local s=$1 f
	shift
	for f in "${figures[@]}"; do echo "$1" >>"$work/$s.$f" && shift; done
}
: >"$work/rsa"
: >"$work/cold.limit"
: >"$work/cold.misses"
echo 0 >"$work/cold.pos"
: >"$work/assert-login.ratio"
for round in $(seq "$rounds"); do
	declare -A rps=() cpu=() ratio=()
	# One raw RSA-2048 verification, on Caddy's CPU, in this round.
	load_vars "${server_cpu[@]}" "$root/bin/mint" -rsa -runs 1
	awk -v ns="$RSA_VERIFY_NS" 'BEGIN { printf "%.1f\n", ns / 1000 }' >>"$work/rsa"
	res=$(run_wrk plain) # a failure stops the run (set -e)
	record plain $res
	read -r before_rps _ <<<"$res"
	for i in "${!others[@]}"; do
		s=${others[$(((i + round) % ${#others[@]}))]}
		res=$(run_wrk "$s")
		record "$s" $res
		read -r r c _ <<<"$res"
		rps[$s]=$r cpu[$s]=$c
		res=$(run_wrk plain)
		record plain $res
		read -r after_rps _ <<<"$res"
		ratio[$s]=$(awk -v a="$r" -v p="$before_rps" -v q="$after_rps" 'BEGIN { printf "%.4f", 2 * a / (p + q) }')
		before_rps=$after_rps
	done
	for s in bearer lean mapped login assert cold; do echo "${ratio[$s]}" >>"$work/$s.ratio"; done
	if [ ${#alone[@]} -gt 0 ]; then
		awk -v a="${ratio[login-pg]}" -v l="${ratio[login-sq]}" 'BEGIN { printf "%.4f\n", a / l }' >>"$work/pg-sq.ratio"
	fi
	awk -v a="${ratio[assert]}" -v l="${ratio[login]}" 'BEGIN { printf "%.4f\n", a / l }' >>"$work/assert-login.ratio"
	# The cold path's cost over the repeated token, in raw verifications,
	# per fresh token: a hit costs what a repeated token does, so the
	# difference is all the misses'.
	awk -v c="${cpu[cold]}" -v b="${cpu[bearer]}" -v ns="$RSA_VERIFY_NS" -v m="$(tail -1 "$work/cold.misses")" \
		'BEGIN { printf "%.3f\n", (c - b) / m / (ns / 1000) }' >>"$work/cold.limit"
done
# ROUNDS=0 skips the timed rounds (only the instruction counts are made).
if [ "$rounds" -gt 0 ]; then
	pinning="not pinned"
	[ "${#server_cpu[@]}" -gt 0 ] && pinning="caddy on CPU 0, wrk on CPU 1"
	printf '\nwrk -t%s -c%s -d%s, loopback, %s cores (%s), %s interleaved rounds in rotating order, plain between every two sites\n' "$threads" "$conns" "$duration" "$(nproc)" "$pinning" "$rounds"
	for s in "${sites[@]}"; do
		case $s in
		plain) label='respond "ok"' ;; bearer) label='cognito_bearer + respond' ;;
		lean) label='cognito_bearer, 1 identity header' ;;
		mapped) label='cognito_bearer users mapped' ;; login) label='cognito_login session + respond' ;;
		assert) label='cognito_login + assertion' ;;
		cold) label="cognito_bearer, $cold_tokens tokens" ;;
		login-pg) label='cognito_login alone, PostgreSQL' ;;
		login-sq) label='cognito_login alone, SQLite' ;;
		esac
		printf '  %-34s %10s req/s   server CPU %6s µs/request (user %5s, system %5s; %s page faults; medians)\n' "$label" "$(median <"$work/$s.rps")" \
			"$(median <"$work/$s.cpu")" "$(median <"$work/$s.user")" "$(median <"$work/$s.sys")" "$(median <"$work/$s.faults")"
	done
	printf '  raw RSA-2048 verification on CPU %s: %s µs (median of the rounds: %s)\n' "${server_cpu[2]:-any}" "$(median <"$work/rsa")" "$(paste -sd' ' "$work/rsa")"
	printf '  per-round ratios to plain: bearer %s | lean %s | mapped %s | login %s | assert %s | cold %s\n' \
		"$(paste -sd' ' "$work/bearer.ratio")" "$(paste -sd' ' "$work/lean.ratio")" "$(paste -sd' ' "$work/mapped.ratio")" "$(paste -sd' ' "$work/login.ratio")" \
		"$(paste -sd' ' "$work/assert.ratio")" "$(paste -sd' ' "$work/cold.ratio")"
	printf '  per-round cold limit ratios: %s (per fresh token; share of the cold requests that were fresh: %s)\n' \
		"$(paste -sd' ' "$work/cold.limit")" "$(paste -sd' ' "$work/cold.misses")"

	# The targets, each with the median of the rounds and their spread.
	below=0
	target() { # label file op bound
		local m lo hi
		m=$(median <"$2")
		lo=$(sort -n "$2" | head -1) hi=$(sort -n "$2" | tail -1)
		printf '  %-58s %.2f (rounds %.2f..%.2f; target %s %s)\n' "$1" "$m" "$lo" "$hi" "$3" "$4"
		if ! awk -v m="$m" -v b="$4" -v op="$3" 'BEGIN { exit !((op == ">=") ? m >= b : m <= b) }'; then
			printf '  below target: %s is %.2f, target %s %s\n' "$1" "$m" "$3" "$4"
			below=$((below + 1))
		fi
	}
	target "ratio bearer/plain (repeated token)" "$work/bearer.ratio" ">=" "${goal[bearer]}"
	printf '  %-58s %.2f\n' "ratio bearer with identity_headers user / plain" "$(median <"$work/lean.ratio")"
	target "ratio mapped/plain" "$work/mapped.ratio" ">=" "${goal[mapped]}"
	target "ratio login/plain (live session)" "$work/login.ratio" ">=" "${goal[login]}"
	target "ratio login with assertion / login (same session)" "$work/assert-login.ratio" ">=" 0.90
	printf '  %-58s %.2f\n' "ratio cold/plain ($cold_tokens distinct tokens)" "$(median <"$work/cold.ratio")"
	target "cold limit: (CPU cold - CPU repeated) / fresh share / raw RSA verify" "$work/cold.limit" "<=" 1.10
	[ ${#alone[@]} -gt 0 ] && target "ratio login on PostgreSQL / on SQLite (twin Caddys)" "$work/pg-sq.ratio" ">=" 0.95
	[ "$below" -eq 0 ] && printf '  every target met\n'
fi

# PROFILE=dir: a CPU profile and the allocations of each workload, from a
# run of its own after the measured rounds (profiling slows the server).
if [ -n "$profile" ]; then
	secs=${duration%s}
	for s in bearer lean mapped login assert cold; do
		curl -fsS -o "$profile/$s.allocs-before.pprof" "http://127.0.0.1:$admin_port/debug/pprof/allocs" || die "pprof allocs"
		curl -fsS -o "$profile/$s.cpu.pprof" "http://127.0.0.1:$admin_port/debug/pprof/profile?seconds=$((secs > 2 ? secs - 1 : 1))" &
		prof=$!
		run_wrk "$s" >/dev/null
		wait "$prof" || die "pprof profile"
		curl -fsS -o "$profile/$s.allocs.pprof" "http://127.0.0.1:$admin_port/debug/pprof/allocs" || die "pprof allocs"
	done
	say "profiles in $profile: go tool pprof -top bin/caddy $profile/bearer.cpu.pprof; allocations: go tool pprof -sample_index=alloc_space -top -diff_base $profile/bearer.allocs-before.pprof bin/caddy $profile/bearer.allocs.pprof"
fi

# INSTRUCTIONS (on unless INSTRUCTIONS=0): every workload again, each Caddy
# restarted under callgrind, which counts instructions (user space, GC
# included) rather than seconds, so the other tenants cannot move them.
if [ "${INSTRUCTIONS:-1}" != 0 ]; then
	command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
		die "valgrind is not installed (make install-deps; INSTRUCTIONS=0 leaves the instruction counts out)"
	# valgrind 3.19 cannot run Go's RDTSCP clock read nor its AVX-512 GC
	# scan, and mishandles the async preemption signal: Go's own GODEBUG
	# switches turn them off for these runs (x/sys/cpu warns that it does
	# not know rdtscp; that is harmless). One P, as pinned to one CPU above.
	vg_env=(GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off,cpu.avx512f=off,cpu.avx512bw=off,cpu.avx512cd=off,cpu.avx512dq=off,cpu.avx512vl=off GOMAXPROCS=1)
	# vg_pid CONFIG: the pid of the callgrind process running Caddy on CONFIG.
	vg_pid() { pgrep -f "valgrind.bin --tool=callgrind .* --config $1 " | head -1; }
	# count_instr NAME PID: instructions per request of workload NAME under
	# callgrind, after a warm-up; prints the count.
	count_instr() {
		local name=$1 pid=$2 out n ir file
		# The cold workload warms up on tokens of its own (BENCH_TOKENS_START),
		# so that the counted requests all bring tokens never seen.
		BENCH_TOKENS="${tokens_of[$name]:-}" BENCH_TOKENS_START=$((cold_tokens / 2)) BENCH_COOKIE="$COGNITO_SESSION_COOKIE" BENCH_THREADS=1 \
			wrk -t1 -c4 -d2s -s "$work/status.lua" -H "$auth" -H "${cookie_of[$name]:-$cookie}" "${url[$name]}" >/dev/null
		callgrind_control -z "$pid" >/dev/null
		out=$(BENCH_TOKENS="${tokens_of[$name]:-}" BENCH_COOKIE="$COGNITO_SESSION_COOKIE" BENCH_THREADS=1 \
			wrk -t1 -c4 -d"$instr_duration" -s "$work/status.lua" -H "$auth" -H "${cookie_of[$name]:-$cookie}" "${url[$name]}")
		callgrind_control -d "$pid" >/dev/null
		grep -q '^not-200: 0$' <<<"$out" || die "$name under callgrind: answers other than 200"
		n=$(awk '/ requests in / { print $1 }' <<<"$out")
		echo "$n" >"$work/$name.counted" # the window's requests, for its rate under callgrind
		file=$(ls -t "$work"/cg."$pid"* | head -1)
		ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$file")
		if [ -n "${INSTRUCTIONS_DIR:-}" ]; then
			mkdir -p "$INSTRUCTIONS_DIR" && cp "$file" "$INSTRUCTIONS_DIR/$name.callgrind" && echo "$n" >"$INSTRUCTIONS_DIR/$name.requests"
		fi
		rm -f "$work"/cg."$pid"*
		awk -v ir="$ir" -v n="$n" 'BEGIN { printf "%d\n", ir / n }'
	}
	# restart_counted NAME PID CONFIG HOMEDIR: stop that Caddy, start it again under callgrind.
	restart_counted() {
		kill "$2" && wait "$2" 2>/dev/null || true
		start "$1" "$work/$1.log" env HOME="$4" XDG_DATA_HOME="$4/data" XDG_CONFIG_HOME="$4/config" "${vg_env[@]}" \
			valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$work/cg.%p" "$caddy_bin" run --config "$3" --adapter caddyfile
	}
	# Long enough for several GC cycles: their work is part of the cost,
	# and a short window holds one more or one less of them.
	instr_duration=${INSTRUCTIONS_DURATION:-12s}
	say "instructions per request: each workload under callgrind, $instr_duration each"
	restart_counted caddy-callgrind "$caddy_pid" "$work/Caddyfile" "$work"
	wait_http "http://127.0.0.1:$plain_port/" 120 || { cat "$work/caddy-callgrind.log" >&2; die "caddy under callgrind did not start"; }
	vg=$(vg_pid "$work/Caddyfile")
	declare -A instr=()
	# A window of plain first, not counted: Caddy's start leaves garbage
	# whose collection would fall into the first counted window.
	count_instr plain "$vg" >/dev/null
	for s in plain bearer lean mapped login assert; do instr[$s]=$(count_instr "$s" "$vg"); done
	# plain once more: how far a count moves between two windows; the sites
	# are compared with the mean of both plain counts. cold comes after it:
	# its 10,000 cached tokens enlarge the heap, which spaces out the GC
	# cycles and lowers every later count.
	instr_plain_again=$(count_instr plain "$vg")
	instr[plain]=$(((instr[plain] + instr_plain_again) / 2))
	instr[cold]=$(count_instr cold "$vg")
	for s in "${alone[@]}"; do
		restart_counted "caddy-$s-callgrind" "${pid_of[$s]}" "$work/Caddyfile.$s" "$work/$s"
		wait_http "${url[$s]}" 120 || { cat "$work/caddy-$s-callgrind.log" >&2; die "caddy of $s under callgrind did not start"; }
		count_instr "$s" "$(vg_pid "$work/Caddyfile.$s")" >/dev/null # warm-up, as plain's above
		instr[$s]=$(count_instr "$s" "$(vg_pid "$work/Caddyfile.$s")")
	done
	# One raw RSA-2048 verification: bin/mint -verify N minus -verify 0.
	rsa_ir() {
		(cd "$root" && env "${vg_env[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$root/bin/mint" -verify "$1" 2>&1) |
			awk '/I +refs:/ { gsub(",", "", $NF); print $NF }'
	}
	rsa0=$(rsa_ir 0) rsa1=$(rsa_ir 500)
	instr[rsa]=$(((rsa1 - rsa0) / 500))
	printf '\ninstructions per request (callgrind: user space, GC included; the same for any machine speed)\n'
	for s in "${sites[@]}"; do
		printf '  %-10s %9s instructions/request   %+8d over plain\n' "$s" "${instr[$s]}" "$((instr[$s] - instr[plain]))"
	done
	printf '  %-10s %9s instructions/request   (plain is the mean of its first count and this one, made after assert)\n' "plain" "$instr_plain_again"
	printf '  %-10s %9s instructions (bin/mint -verify)\n' "raw RSA" "${instr[rsa]}"
	awk -v c="${instr[cold]}" -v b="${instr[bearer]}" -v r="${instr[rsa]}" \
		'BEGIN { printf "  cold limit in instructions: (cold - repeated) / raw RSA verify = %.2f (target <= 1.10)\n", (c - b) / r }'
	if [ ${#alone[@]} -gt 0 ]; then
		printf '  login on PostgreSQL over SQLite (twin Caddys): %+d instructions/request\n' "$((instr[login-pg] - instr[login-sq]))"
	fi
	# The SQLite store looks for other processes' changes at most once per
	# 5 ms of wall clock (changeCheckAge), whatever the rate: a cost per
	# second, not per request. Under callgrind the rate is some 30 times
	# lower, so those looks weigh that much more in mapped's and login's
	# counts than at full speed (a PostgreSQL store is told of changes and
	# never looks: most of the difference above).
	# wrk's duration (12, 12s, 2m, 1h) in seconds.
	secs=$(awk -v d="$instr_duration" 'BEGIN { u = substr(d, length(d)); n = d + 0; print (u == "m" ? n * 60 : u == "h" ? n * 3600 : n) }')
	for s in mapped login; do
		full=""
		[ "$rounds" -gt 0 ] && full=$(median <"$work/$s.rps")
		awk -v s="$s" -v n="$(cat "$work/$s.counted")" -v d="$secs" -v f="$full" '
		function looks(rate) { return rate > 200 ? 200 / rate : 1 } # per request, at most one each
		BEGIN {
			r = n / d
			printf "  %s (SQLite) includes the store'"'"'s change look, at most 200 a second: under callgrind (%d req/s) up to %.2f looks per request", s, r, looks(r)
			if (f > 0) printf ", in the rounds (%d req/s) %.3f", f, looks(f)
			printf "\n"
		}'
	done
	# The rates these counts imply: callgrind counts only user space, while
	# the rate is bound by user plus system time. With plain's user and
	# system CPU per request from the rounds, and two assumptions stated
	# with the figures (the kernel's work per request is the same on every
	# site, as the requests and answers are, which the rates table above
	# shows only roughly true; user time follows the instruction count), a
	# site's rate ratio is (U + S) / (U x I/I_plain + S).
	if [ "$rounds" -gt 0 ]; then
		pu=$(median <"$work/plain.user") ps=$(median <"$work/plain.sys")
		printf '\nrate ratios projected from the instruction counts, with plain at %s µs user + %s µs system per request (medians of the rounds; assumes equal system time per request and user time in proportion to instructions)\n' "$pu" "$ps"
		for s in bearer lean mapped login assert; do
			awk -v n="$s" -v t="${goal[$s]:-}" -v u="$pu" -v sy="$ps" -v i="${instr[$s]}" -v p="${instr[plain]}" 'BEGIN {
				r = (u + sy) / (u * i / p + sy)
				printf "  %-10s %.3f%s\n", n, r, t == "" ? "" : sprintf(" (target >= %s: %s)", t, r >= t ? "met" : "below")
			}'
		done
	fi
fi
