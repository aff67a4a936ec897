# ECS Sidecar Reconciler. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO        ?= go
BIN       ?= bin/reconciler
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# Short fuzzing inside `make test`; `make fuzz` runs each target longer.
FUZZTIME_TEST ?= 5s
FUZZTIME      ?= 60s
STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# From Debian's prometheus package (.ci/run installs it).
PROMTOOL      ?= promtool

.PHONY: help build run test fmt-check vet promtool cfn-lint image unit fuzz-short fuzz bench bench-go lint clean

# The help texts are the `## ` comments; $(FUZZTIME_TEST) and $(FUZZTIME) in them
# print as their values.
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -F':.*## ' -v fuzztime_test='$(FUZZTIME_TEST)' -v fuzztime='$(FUZZTIME)' \
		'{gsub(/\$$\(FUZZTIME_TEST\)/, fuzztime_test, $$2); gsub(/\$$\(FUZZTIME\)/, fuzztime, $$2); printf "  %-12s %s\n", $$1, $$2}'

build: ## build the static binary bin/reconciler (CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/reconciler

run: build ## build, then run the reconciler against the embedded AWS on 127.0.0.1:4566, no AWS account needed (more flags: ARGS='...')
	$(BIN) run --embedded $(ARGS)

test: fmt-check vet promtool cfn-lint unit fuzz-short ## what CI runs: gofmt, go vet, promtool, cfn-lint, go test -race, short fuzzing

fmt-check:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

cfn-lint: ## lint the CloudFormation templates in deploy/cloudformation (the stack, the macro, hub mode's hub and member)
	@command -v cfn-lint >/dev/null || { echo "cfn-lint is missing: pip install cfn-lint (it comes with the machine's Python)"; exit 1; }
	cfn-lint deploy/cloudformation/reconciler.yaml deploy/cloudformation/macro.yaml deploy/cloudformation/member.yaml deploy/cloudformation/hub.yaml

# No Docker engine needed: cmd/image cross-compiles with -tags noembedded and
# writes the OCI image with go-containerregistry (docs/image.md).
image: ## build the OCI image for linux/amd64 and linux/arm64 into dist/image, without Docker; PUSH=REF also pushes it (docs/image.md)
	$(GO) run ./cmd/image --version '$(VERSION)' --out dist/image $(if $(PUSH),--push '$(PUSH)') $(IMAGE_ARGS)

promtool: ## check and unit-test the Prometheus alert rules in deploy/prometheus
	@command -v $(PROMTOOL) >/dev/null || { echo "promtool is missing: apt-get install prometheus (Debian)"; exit 1; }
	$(PROMTOOL) check rules deploy/prometheus/alerts.yaml
	cd deploy/prometheus && $(PROMTOOL) test rules alerts_test.yaml

unit:
	$(GO) test -race -timeout 15m ./...

fuzz-short: ## run every fuzz target for $(FUZZTIME_TEST) each, as `make test` does (FUZZTIME_TEST=... to change)
	scripts/fuzz.sh $(FUZZTIME_TEST)

fuzz: ## run every fuzz target for $(FUZZTIME) each; `make fuzz FUZZTIME=10m KEEP=1` also saves new inputs to testdata/fuzz
	scripts/fuzz.sh $(FUZZTIME)

bench: build ## end-to-end benchmark (cmd/bench) against the embedded AWS: prints a table, writes docs/benchmarks.md (about 6 minutes; exits 1 when a target is missed)
	$(GO) run ./cmd/bench --reconciler $(BIN) --out docs/benchmarks.md --command 'make bench'

bench-go: ## Go micro-benchmarks of every package, 5 runs each
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

.PHONY: soak
# SOAK_RUN=TestSoakTwoReplicas runs only the two-replica soak; SOAK_FULL=1 is -soak.full.
SOAK_RUN ?= TestSoak
soak: ## the full chaos soak (docs/soak.md): 500 families, 1,000 services, hostile input, kills at steps of work; one, two and three replicas; then events-only, sweeps-only and quiet phases
	$(GO) test ./internal/soak -run '$(SOAK_RUN)' -soak.full -count=1 -timeout 150m -v

lint: fmt-check vet ## gofmt, go vet, go mod tidy -diff (fails when go.mod or go.sum is not tidy) and staticcheck
	$(GO) mod tidy -diff
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin
