#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each.
# `go test -fuzz` takes one target of one package per call, so loop over them.
set -euo pipefail
fuzztime=${1:-5s}
cd "$(dirname "$0")/.."
n=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	compgen -G "$dir/*_test.go" >/dev/null || continue
	targets=$( (grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go || true) | sed 's/^func //' | sort -u)
	for t in $targets; do
		echo "fuzz: $pkg $t for $fuzztime"
		go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg"
		n=$((n + 1))
	done
done
echo "fuzz: $n targets ran"
