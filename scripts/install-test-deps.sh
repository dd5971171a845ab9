#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need, and nothing
# that is already there (safe to run again):
#   - Debian packages: chromium (the browser playwright-core drives), wrk and
#     valgrind (make bench's rates and instruction counts), gcc,
#     nginx (the forward-auth test runs it unprivileged, as a test process),
#     postgresql (the shared store's tests start their own server from its binaries)
#   - testenv/node_modules from testenv/package-lock.json (npm ci): cognito-local,
#     oidc-provider, playwright-core, aws-jwt-verify, maildev
# No tool downloads a browser of its own. Exits non-zero on any failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'install-test-deps: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# --- Debian packages -------------------------------------------------------
missing=()
[ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind)
# cgo (go test -race, the cgo SQLite driver) needs a C toolchain.
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
# nginx-light would do too; the test needs only http_auth_request, in both.
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
# The PostgreSQL store's tests run initdb/postgres from here in a temporary
# directory; the distribution's own cluster is not used.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
	say "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq || die "apt-get update failed"
	as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
else
	say "chromium, wrk, valgrind, gcc, nginx and postgresql are installed"
fi

# --- node packages -----------------------------------------------------------
command -v node >/dev/null 2>&1 || die "node is not installed (Node.js 20 or newer is needed)"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
testenv="$root/testenv"
lock="$testenv/package-lock.json"
[ -f "$lock" ] || die "$lock is missing"
stamp="$testenv/node_modules/.installed-from-lock.sha256"
want="$(sha256sum "$lock" "$testenv/package.json" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
	[ -f "$testenv/node_modules/cognito-local/lib/bin/start.js" ]; then
	say "testenv/node_modules is up to date"
else
	say "npm ci in testenv/"
	# playwright-core never downloads browsers; the variables make sure no
	# other package does either.
	(cd "$testenv" &&
		PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 \
			npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
	echo "$want" >"$stamp"
fi

# --- check -----------------------------------------------------------------
for f in cognito-local/lib/bin/start.js oidc-provider/package.json playwright-core/package.json \
	aws-jwt-verify/package.json maildev/package.json; do
	[ -e "$testenv/node_modules/$f" ] || die "testenv/node_modules/$f is missing after install"
done
say "ready: $(node --version), chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}' || echo '?'), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"
