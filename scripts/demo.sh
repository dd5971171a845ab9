#!/usr/bin/env bash
# make demo: cognito-local (a Cognito emulator) on :9229, an upstream that
# shows the headers it receives on :9000, and Caddy with caddy-cognito
# (examples/demo.Caddyfile) on http://localhost:8080 (an API behind
# cognito_bearer) and http://localhost:8081 (a web app behind cognito_login:
# browser sign-in through cognito-local's hosted UI). Ctrl-C stops everything.
#
# The pool, its two app clients (demo-app for the API, demo-web with a
# secret and the web app's callback for sign-in), user demo@example.com and
# group "admins" are created once and kept in testenv/.cognito/ (delete that
# folder to start over).
#
#   scripts/demo.sh           run until Ctrl-C
#   scripts/demo.sh --check   start, call the API with a token, sign in to
#                             the web app (bin/signin), stop
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check=false
[ "${1:-}" = "--check" ] && check=true

"$root/scripts/install-test-deps.sh"
ensure_caddy
ensure_tools

logs="$root/bin/demo-logs"
mkdir -p "$logs"
for p in 9229 9000 8080 8081 2019; do
	port_busy "$p" && die "port $p is in use; stop whatever listens there (another demo?)"
done
trap 'stop_all; say "stopped"' EXIT
trap 'exit 130' INT TERM

# cognito-local keeps its state in .cognito/ under its working directory.
start cognito-local "$logs/cognito-local.log" \
	env PORT=9229 HOST=localhost bash -c "cd '$root/testenv' && exec node node_modules/cognito-local/lib/bin/start.js"
seed=("$root/bin/seed" -url http://localhost:9229 -pool demo -user demo@example.com -password 'Demo-Passw0rd!' -groups admins)
web=http://localhost:8081
load_vars "${seed[@]}" -client demo-web -secret -callback "$web/auth/callback" -logout "$web/auth/logout/done"
export COGNITO_WEB_CLIENT_ID=$COGNITO_CLIENT_ID COGNITO_WEB_CLIENT_SECRET=$COGNITO_CLIENT_SECRET
unset COGNITO_CLIENT_SECRET
load_vars "${seed[@]}" -client demo-app

start echo "$logs/echo.log" "$root/bin/echo" -listen 127.0.0.1:9000
wait_http http://127.0.0.1:9000/ || die "echo upstream did not start"

# The local user behind /team/ (users mapped), made with the CLI as an
# operator would; kept in bin/demo-data/ across runs.
export COGNITO_POOL_ID COGNITO_CLIENT_ID DEMO_DATA="$root/bin/demo-data"
mkdir -p "$DEMO_DATA"
cli() { "$root/bin/caddy" cognito "$@" --config "$root/examples/demo.Caddyfile" --adapter caddyfile; }
if ! cli users show demo >/dev/null 2>&1; then
	cli users add --username demo --email "$COGNITO_EMAIL" --given-name Demo --role member >/dev/null
	cli users link demo --sub "$COGNITO_SUB" >/dev/null
fi
start caddy "$logs/caddy.log" "$root/bin/caddy" run --config "$root/examples/demo.Caddyfile" --adapter caddyfile
wait_http http://localhost:8080/ 30 && wait_http "$web/" 30 || { cat "$logs/caddy.log" >&2; die "caddy did not start"; }

cat <<INFO

  caddy-cognito demo is running
  ─────────────────────────────
  API (Caddy)        http://localhost:8080/         any valid access token
                     http://localhost:8080/admin/   group "admins" only
                     http://localhost:8080/profile/ ID tokens
                     http://localhost:8080/team/    local users with role "member" (users mapped)
  Web app (Caddy)    http://localhost:8081/         browser sign-in (cognito_login)
                     http://localhost:8081/auth/me      the session as JSON
                     http://localhost:8081/auth/logout  sign out
  Cognito emulator   http://localhost:9229  pool $COGNITO_POOL_ID
                     app clients $COGNITO_CLIENT_ID (API), $COGNITO_WEB_CLIENT_ID (web app)
  User               $COGNITO_EMAIL  password: $COGNITO_PASSWORD  (group: admins)
  Logs               $logs/

  1. Get a token (Cognito's InitiateAuth, USER_PASSWORD_AUTH):

  TOKEN=\$(curl -s http://localhost:9229/ \\
      -H 'Content-Type: application/x-amz-json-1.1' \\
      -H 'X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth' \\
      -d '{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"$COGNITO_CLIENT_ID","AuthParameters":{"USERNAME":"$COGNITO_EMAIL","PASSWORD":"$COGNITO_PASSWORD"}}' \\
      | sed -E 's/.*"AccessToken":"([^"]+)".*/\1/')

  2. Call the API with it (the upstream prints the X-Auth-* headers it got):

  curl -H "Authorization: Bearer \$TOKEN" http://localhost:8080/hello
  curl -H "Authorization: Bearer \$TOKEN" http://localhost:8080/admin/
  curl -H "Authorization: Bearer \$TOKEN" http://localhost:8080/team/    # X-Auth-User is the local user id
  curl -i http://localhost:8080/hello          # no token: 401

  3. Sign in with a browser: open http://localhost:8081/, sign in on the
     hosted UI as $COGNITO_EMAIL, and the upstream's page shows the X-Auth-*
     headers of the local user "demo". The browser holds only a session id
     (cookie cognito_session); the tokens stay on the server. Without a browser:

  eval "\$(bin/signin -site http://localhost:8081 -user $COGNITO_EMAIL -password '$COGNITO_PASSWORD')"
  curl -H "Cookie: \$COGNITO_SESSION_COOKIE" http://localhost:8081/hello
  curl -H "Cookie: \$COGNITO_SESSION_COOKIE" http://localhost:8081/auth/me

  4. Manage local users (the same store the running server reads):

  bin/caddy cognito users list --config examples/demo.Caddyfile
  bin/caddy cognito users disable demo --config examples/demo.Caddyfile   # /team/ answers 403, the web app asks to sign in
  bin/caddy cognito users enable demo --config examples/demo.Caddyfile

  Ctrl-C stops everything.
INFO

if $check; then
	load_vars "${seed[@]}" -client demo-app -token
	code=$(curl -s -o /dev/null -w '%{http_code}' http://localhost:8080/hello)
	[ "$code" = 401 ] || die "without a token: HTTP $code, want 401"
	out=$(curl -sf -H "Authorization: Bearer $COGNITO_ACCESS_TOKEN" http://localhost:8080/admin/) || die "with a token: request failed"
	printf '%s\n' "$out"
	grep -q "X-Auth-User: $COGNITO_SUB" <<<"$out" || die "upstream did not see X-Auth-User: $COGNITO_SUB"
	out=$(curl -sf -H "Authorization: Bearer $COGNITO_ACCESS_TOKEN" http://localhost:8080/team/) || die "/team/ with a token: request failed"
	grep -q "X-Auth-Roles: member" <<<"$out" || die "upstream of /team/ did not see X-Auth-Roles: member"

	# The web app: a browser without a session is sent to sign in; bin/signin
	# signs in through the hosted UI as a browser would.
	loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Accept: text/html' "$web/hello")
	[[ $loc == "302 $web/auth/login?"* ]] || die "web app without a session: got '$loc', want a 302 to $web/auth/login"
	load_vars "$root/bin/signin" -site "$web" -user "$COGNITO_EMAIL" -password "$COGNITO_PASSWORD"
	out=$(curl -sf -H "Cookie: $COGNITO_SESSION_COOKIE" "$web/hello") || die "web app with a session: request failed"
	printf '%s\n' "$out"
	user_id=$(cli users show demo --json 2>/dev/null | sed -nE 's/.*"id": *"([^"]+)".*/\1/p' | head -1)
	for h in "X-Auth-User: $user_id" "X-Auth-Sub: $COGNITO_SUB" "X-Auth-Email: $COGNITO_EMAIL" "X-Auth-Roles: member"; do
		grep -qF "$h" <<<"$out" || die "upstream of the web app did not see $h"
	done
	me=$(curl -sf -H "Cookie: $COGNITO_SESSION_COOKIE" "$web/auth/me") || die "$web/auth/me with a session: request failed"
	grep -q '"username": *"demo"' <<<"$me" || die "$web/auth/me does not show the local user demo: $me"

	cli users disable demo >/dev/null
	sleep 0.01 # a change made by another process is seen within 5 ms
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $COGNITO_ACCESS_TOKEN" http://localhost:8080/team/)
	webcode=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COGNITO_SESSION_COOKIE" "$web/hello")
	cli users enable demo >/dev/null
	[ "$code" = 403 ] || die "/team/ for a disabled user: HTTP $code, want 403"
	[ "$webcode" = 302 ] || die "web app for a disabled user: HTTP $webcode, want 302 (sign in again)"
	say "check passed"
	exit 0
fi
wait
