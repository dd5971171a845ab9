# caddy-cognito: build, test, demo, bench.
#
#   make install-deps   chromium, wrk, valgrind, gcc, nginx, postgresql (apt) and testenv/node_modules (npm ci)
#   make build          bin/caddy with the plugin, built by xcaddy as a user builds it
#   make dev            bin/caddy-dev, the same server from cmd/caddy with go build (fast)
#   make lint           golangci-lint (pinned in tools/lint/go.mod, built into bin/)
#   make test           installs what the tests need (install-deps), then every test: vet,
#                       lint, unit (race, cgo and pure-Go builds), integration, the demo check
#   make demo           cognito-local + Caddy + an echo upstream on http://localhost:8080
#   make bench          Go benchmarks and a wrk comparison (plain vs cognito_bearer)
#
# make test runs install-deps first (idempotent: it installs only what is
# missing; apt needs root or sudo). With CI=true a missing stand-in (node,
# cognito-local, chromium) fails the tests instead of skipping them.

# Recipes run in bash with pipefail, so that `go test -json | testreport`
# fails when go test does.
SHELL         := bash
.SHELLFLAGS   := -o pipefail -c

CADDY_VERSION ?= v2.11.9
MODULE        := github.com/caddy-cognito/caddy-cognito
GO            ?= go

.PHONY: all build dev test test-unit test-unit-race test-unit-nocgo test-integration demo-check vet lint demo bench install-deps clean

all: build

build:
	mkdir -p bin
	cd integration && CGO_ENABLED=0 $(GO) tool xcaddy build $(CADDY_VERSION) \
		--with $(MODULE)@v0.0.0=$(CURDIR) --output $(CURDIR)/bin/caddy

dev:
	mkdir -p bin
	$(GO) build -o bin/caddy-dev ./cmd/caddy

vet:
	$(GO) vet ./...
	cd integration && $(GO) vet ./...
	cd tools/testreport && $(GO) vet ./...

# golangci-lint is a tool of the nested module tools/lint, so that users of
# the plugin never inherit it; the binary is rebuilt when that module's
# go.mod or go.sum changes. .golangci.yml says which linters run.
GOLANGCI_LINT := bin/golangci-lint

$(GOLANGCI_LINT): tools/lint/go.mod tools/lint/go.sum
	mkdir -p bin
	cd tools/lint && $(GO) build -o $(CURDIR)/$(GOLANGCI_LINT) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...
	cd integration && $(CURDIR)/$(GOLANGCI_LINT) run ./...
	cd tools/testreport && $(CURDIR)/$(GOLANGCI_LINT) run ./...

# testreport (nested module tools/testreport) turns `go test -json` back into
# go test's usual output and ends with one line per skipped test and its
# reason: a skip is never silent.
TESTREPORT := bin/testreport

$(TESTREPORT): tools/testreport/go.mod tools/testreport/main.go
	mkdir -p bin
	cd tools/testreport && $(GO) test -count=1 . && $(GO) build -o $(CURDIR)/$(TESTREPORT) .

GOTEST := $(GO) test -json

test-unit-race: $(TESTREPORT)
	CGO_ENABLED=1 $(GOTEST) -race -count=1 -timeout 15m ./... | $(TESTREPORT)

# Without cgo: the pure-Go SQLite driver and the plain xcaddy build's path.
test-unit-nocgo: $(TESTREPORT)
	CGO_ENABLED=0 $(GOTEST) -count=1 -timeout 15m ./... | $(TESTREPORT)

test-unit: test-unit-race test-unit-nocgo

test-integration: $(TESTREPORT)
	cd integration && $(GOTEST) -count=1 -timeout 40m ./... | $(CURDIR)/$(TESTREPORT)

# The demo is part of the product: it starts, answers and stops.
demo-check:
	scripts/demo.sh --check

test: install-deps vet lint test-unit test-integration demo-check

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh

install-deps:
	scripts/install-test-deps.sh

clean:
	rm -rf bin
