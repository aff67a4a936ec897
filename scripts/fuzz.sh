#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each.
# `go test -fuzz` takes one target of one package per call, so loop over them.
# With KEEP=1, the inputs the fuzzer found interesting (kept in the Go build
# cache) are copied to the package's testdata/fuzz/<target>, the corpus that
# plain `go test` replays and that is committed.
set -euo pipefail
fuzztime=${1:-5s}
cache=$(go env GOCACHE)/fuzz
cd "$(dirname "$0")/.."
n=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	compgen -G "$dir/*_test.go" >/dev/null || continue
	targets=$( (grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go || true) | sed 's/^func //' | sort -u)
	for t in $targets; do
		echo "fuzz: $pkg $t for $fuzztime"
		go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg"
		if [ "${KEEP:-}" = 1 ] && [ -d "$cache/$pkg/$t" ]; then
			mkdir -p "$dir/testdata/fuzz/$t"
			cp -n "$cache/$pkg/$t"/* "$dir/testdata/fuzz/$t/"
		fi
		n=$((n + 1))
	done
done
echo "fuzz: $n targets ran"
