# berth's build. The Go toolchain named in go.mod is fetched through the
# module proxy when the installed one is older (GOTOOLCHAIN=auto).
export GOTOOLCHAIN := auto

IMAGES  ?= bin/images
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
GO      ?= go
BIN     ?= bin/berth
FUZZTIME ?= 10s

.PHONY: build test unit fuzz lint images example clean

build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/berth

# The whole suite, as CI runs it: vet, unit tests, short fuzz runs.
test: lint unit fuzz

# The offline images are built first: tests that need them reuse them.
unit: images
	IMAGEBUILD_OUT=$(abspath $(IMAGES)) $(GO) test -race -count=1 ./...

# Each fuzz target runs briefly from its committed seed corpus.
fuzz:
	$(GO) test ./project -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./runtime/image -run '^$$' -fuzz '^FuzzExtract$$' -fuzztime $(FUZZTIME)
	$(GO) test ./runtime/logs -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./runtime/supervisor -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	for f in FuzzParsePasswd FuzzParseGroup FuzzHosts FuzzResolvConf; do \
		$(GO) test ./runtime/rootfs -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# The images tests and examples run (busybox, redis:7, postgres:15), built
# from Debian packages: no registry needed. Rebuilt only when inputs change.
images:
	$(GO) run ./tests/imagebuild -out $(IMAGES)

# Builds berth and the offline images, loads them into berth's store
# (BERTH_ROOT, default /var/lib/berth), shows the example project and runs
# a one-off container of it.
example: build images
	for i in busybox redis postgres; do $(BIN) load -q -i $(IMAGES)/$$i.tar; done
	cd examples/postgres-dev && ../../$(BIN) config && ../../$(BIN) images && \
		../../$(BIN) run --rm --no-deps -T client psql --version

clean:
	rm -rf bin
