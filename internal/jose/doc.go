// Package jose verifies compact RS256 JSON Web Signatures against a JSON Web Key Set fetched, cached and refreshed from one URL, reading headers and claims with a strict JSON scanner.
package jose
