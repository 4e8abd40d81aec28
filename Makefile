# berth's build. The Go toolchain named in go.mod is fetched through the
# module proxy when the installed one is older (GOTOOLCHAIN=auto).
export GOTOOLCHAIN := auto

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
GO      ?= go
BIN     ?= bin/berth
FUZZTIME ?= 10s

.PHONY: build test unit fuzz lint example clean

build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/berth

# The whole suite, as CI runs it: vet, unit tests, short fuzz runs.
test: lint unit fuzz

unit:
	$(GO) test -race -count=1 ./...

# Each fuzz target runs briefly from its committed seed corpus.
fuzz:
	$(GO) test ./project -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./runtime/image -run '^$$' -fuzz '^FuzzExtract$$' -fuzztime $(FUZZTIME)

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# Builds berth and prints the resolved configuration of the example project.
example: build
	cd examples/postgres-dev && ../../$(BIN) config

clean:
	rm -rf bin
