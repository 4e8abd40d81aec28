# berth's build. The Go toolchain named in go.mod is fetched through the
# module proxy when the installed one is older (GOTOOLCHAIN=auto).
export GOTOOLCHAIN := auto

IMAGES  ?= bin/images
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
GO      ?= go
BIN     ?= bin/berth
FUZZTIME ?= 10s

.PHONY: build test unit fuzz lint images example clean

# Static, without the C library's name service: each container start runs
# the binary again, and the dynamic loader would cost ~5 ms each time.
# Without Go's heap base randomisation where the toolchain still offers to
# turn it off: a berth process's heap then starts on a huge page boundary
# (internal/hugeheap says why that matters). tests/berthbin builds the
# binary the e2e tests and benchmarks run alike.
HEAPEXP := $(shell GOEXPERIMENT=norandomizedheapbase64 $(GO) env GOEXPERIMENT 2>/dev/null)
# The binary is then written again 2 MiB at a time: the page cache keeps it
# in 2 MiB folios, which every container start (libcontainer's init runs
# the binary) maps with a handful of page faults instead of ~200
# (internal/hugeheap/doc.go). tests/berthbin does the same.
#
# With musl when it is installed (Debian: musl-tools; build/musl-cc), else
# with the system's C library. On berth's virtual machines a static
# program linked with glibc spends ~0.9 ms of CPU starting up (glibc probes
# the CPU's features, and each probe traps to the hypervisor), with musl
# ~0.1 ms. Every container start runs the binary once more: up -d of 50
# services took 5% less CPU (bench/README.md, session 15). tests/berthbin
# chooses alike.
MUSLCC := $(if $(shell command -v musl-gcc 2>/dev/null),$(CURDIR)/build/musl-cc)
build:
	$(if $(MUSLCC),CC=$(MUSLCC)) GOEXPERIMENT=$(HEAPEXP) $(GO) build -trimpath -tags netgo,osusergo -ldflags "-s -w -extldflags=-static -X main.version=$(VERSION)" -o $(BIN) ./cmd/berth
	dd if=$(BIN) of=$(BIN).tmp bs=2M status=none && chmod 755 $(BIN).tmp && mv -f $(BIN).tmp $(BIN)

# The whole suite, as CI runs it: vet, unit tests, short fuzz runs.
test: lint unit fuzz

# The offline images are built first: tests that need them reuse them.
# The end-to-end package (tests/) runs real containers one test after
# another: ~7 minutes here, more on a slower machine, so go test's default
# 10 minutes is too tight; a hanging berth command fails its own test
# after 3 minutes (tests/run_test.go, cmdTimeout).
# internal/hugeheap's and runtime/container/pid1's C code runs again built
# with musl, as berth ships.
unit: images
	IMAGEBUILD_OUT=$(abspath $(IMAGES)) $(GO) test -race -count=1 -timeout 40m ./...
	$(if $(MUSLCC),CC=$(MUSLCC) $(GO) test -count=1 ./internal/hugeheap ./runtime/container/pid1)

# Each fuzz target runs briefly from its committed seed corpus.
fuzz:
	$(GO) test ./project -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./runtime/image -run '^$$' -fuzz '^FuzzExtract$$' -fuzztime $(FUZZTIME)
	$(GO) test ./runtime/logs -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./runtime/supervisor -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./network/dns -run '^$$' -fuzz '^FuzzAnswer$$' -fuzztime $(FUZZTIME)
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
# (BERTH_ROOT, default /var/lib/berth), brings the Redis-backed counter up,
# asks its page twice through the published port, and takes it down.
example: build images
	for i in busybox redis postgres; do $(BIN) load -q -i $(IMAGES)/$$i.tar; done
	cd examples/redis-counter && ../../$(BIN) up -d --wait && ../../$(BIN) ps && \
		curl -fsS http://127.0.0.1:8080/cgi-bin/hits && curl -fsS http://127.0.0.1:8080/cgi-bin/hits; \
		code=$$?; ../../$(BIN) down; exit $$code

clean:
	rm -rf bin
