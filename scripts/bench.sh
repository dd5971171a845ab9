#!/usr/bin/env bash
# make bench: the Go benchmarks of the plugin with the ratios the goals are
# stated in, then the wrk comparison on loopback (scripts/bench-wrk.sh).
#   BENCH=regexp   which Go benchmarks (default: all)
#   SKIP_WRK=1     only the Go benchmarks
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "== go test -bench (root module)"
go test -run '^$' -bench "${BENCH:-.}" -benchmem -count=1 ./... | tee "$out"
# Ratios from this one run (ns/op is the third field of a result line).
awk '
	/^Benchmark/ { name = $1; sub(/-[0-9]+$/, "", name); ns[name] = $3 }
	END {
		print "\n== ratios (same run)"
		if (ns["BenchmarkVerifyCold"] && ns["BenchmarkRSAVerifyRaw"])
			printf "  cold verify rate / raw RSA-2048 verify rate: %.2f (target >= 0.80)\n", ns["BenchmarkRSAVerifyRaw"] / ns["BenchmarkVerifyCold"]
		if (ns["BenchmarkVerifyKeyRS256"] && ns["BenchmarkCryptoRSAVerify"])
			printf "  the key set'"'"'s RS256 check / crypto/rsa.VerifyPKCS1v15 (time): %.2f (the modulus prepared once, not per call)\n", ns["BenchmarkVerifyKeyRS256"] / ns["BenchmarkCryptoRSAVerify"]
		if (ns["BenchmarkVerifyHot"])
			printf "  hot verify (cache hit): %d ns\n", ns["BenchmarkVerifyHot"]
		if (ns["BenchmarkHandlerPlain"] && ns["BenchmarkHandlerBearer"])
			printf "  handler: bearer adds %d ns per request (plain %d ns)\n", ns["BenchmarkHandlerBearer"] - ns["BenchmarkHandlerPlain"], ns["BenchmarkHandlerPlain"]
		if (ns["BenchmarkHandlerBearer"] && ns["BenchmarkHandlerBearerTwoPools"])
			printf "  handler: two pools vs one pool: %+d ns per request\n", ns["BenchmarkHandlerBearerTwoPools"] - ns["BenchmarkHandlerBearer"]
		if (ns["BenchmarkHandlerBearer"] && ns["BenchmarkHandlerMapped"])
			printf "  handler: users mapped vs stateless bearer: %+d ns per request\n", ns["BenchmarkHandlerMapped"] - ns["BenchmarkHandlerBearer"]
		if (ns["BenchmarkHandlerPlain"] && ns["BenchmarkHandlerLogin"])
			printf "  handler: login session adds %d ns per request; plain/login: %.2f\n", ns["BenchmarkHandlerLogin"] - ns["BenchmarkHandlerPlain"], ns["BenchmarkHandlerPlain"] / ns["BenchmarkHandlerLogin"]
		if (ns["BenchmarkHandlerLogin"] && ns["BenchmarkHandlerLoginAssertion"])
			printf "  handler: login with assertion / without (rate): %.2f (target >= 0.90)\n", ns["BenchmarkHandlerLogin"] / ns["BenchmarkHandlerLoginAssertion"]
		if (ns["BenchmarkHandlerBearer"] && ns["BenchmarkHandlerBearerAssertion"])
			printf "  handler: bearer with assertion / without (rate): %.2f (target >= 0.90)\n", ns["BenchmarkHandlerBearer"] / ns["BenchmarkHandlerBearerAssertion"]
	}' "$out"
if [ -z "${SKIP_WRK:-}" ]; then
	echo "== wrk"
	scripts/bench-wrk.sh
fi
