# berth — build, fixtures, tests and a demo.  `make help` lists the targets.
#
# Everything that a fresh Debian 12 machine with only Go lacks is installed by
# `make deps`; every other target assumes it has run (`make test` and `make demo`
# run it themselves). Tests and the demo need root.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
# Targets such as `test` list their steps as prerequisites in order (deps before
# build before fixtures); keep make from running them side by side.
.NOTPARALLEL:

GO       ?= go
BIN_DIR  := bin
CACHE    := .cache
FIXTURES := $(CACHE)/fixtures

# Binaries built from ./cmd/<name> into bin/<name>. All are pure Go and static: the
# runtime re-executes itself inside containers whose rootfs has no libc of ours. Its
# process entry point is internal/linux/nsenter's assembly entry (-E), which joins
# namespaces before the Go runtime starts; only a binary that imports that package
# may be linked with -E, so the flag is per binary (ENTRY_<name>).
BINARIES ?= berth-runtime berth berth-monitor berth-init berthd

# netgo/osusergo keep net and os/user pure Go.
GO_TAGS    ?= netgo osusergo
GO_LDFLAGS ?= -s -w
ENTRY_berth-runtime := -E github.com/berth-dev/berth/internal/linux/nsenter.entry
GO_BUILD    = CGO_ENABLED=0 $(GO) build -trimpath -tags '$(GO_TAGS)'

# The runtime the demo and the e2e scripts drive (override: make demo RUNTIME=runc).
RUNTIME ?= $(CURDIR)/$(BIN_DIR)/berth-runtime
# What the conformance suite compares: the runtimes under test, baseline (runc) last.
CONFORMANCE_RUNTIMES ?= $(CURDIR)/$(BIN_DIR)/berth-runtime runc

.PHONY: help deps build fixtures conformance test vet unit e2e demo bench-runtime bench-pull bench-run bench-build bench-network clean

help:
	@echo "make deps         install missing Debian packages (root; quick when all present)"
	@echo "make build        static binaries into $(BIN_DIR)/: $(BINARIES)"
	@echo "make fixtures     test fixtures into $(FIXTURES)/ (busybox rootfs + bundle, debian rootfs)"
	@echo "make conformance  OCI runtime-tools suite: $(CONFORMANCE_RUNTIMES)"
	@echo "make test         deps build fixtures, go vet, go test, test/*.sh, conformance"
	@echo "make demo         run a busybox container with $(RUNTIME)"
	@echo "make bench-runtime  start-up time of $(RUNTIME) vs crun and runc (hyperfine)"
	@echo "make bench-pull   pull of a 7-layer 210 MB image: berth vs podman pull vs skopeo copy"
	@echo "make bench-run    run --rm --network none busybox true, idle RSS, ps: berth vs podman vs docker"
	@echo "make bench-build  cold, cached and one-file-edited builds: berth vs docker build vs podman build"
	@echo "make bench-network  bridge setup cost and TCP throughput: berth vs podman vs docker"
	@echo "make clean        remove $(BIN_DIR)/ and $(CACHE)/"

deps:
	@scripts/install-deps.sh

build: $(addprefix $(BIN_DIR)/,$(BINARIES))

# Always hand over to `go build`: its cache knows better than make what changed.
$(BIN_DIR)/%: FORCE
	@mkdir -p $(BIN_DIR)
	$(GO_BUILD) -ldflags '$(GO_LDFLAGS) $(ENTRY_$*)' -o $@ ./cmd/$*
	@# A binary that silently came out dynamic would work here and fail inside a
	@# container; check.
	@if ! file -L $@ | grep -Eq 'statically linked|static-pie linked'; then \
		echo "build: $@ is not statically linked:"; file -L $@; ldd $@ || true; exit 1; fi

FORCE:

fixtures:
	scripts/fixtures/busybox-rootfs.sh
	RUNTIME=$(RUNTIME) scripts/fixtures/busybox-bundle.sh $(FIXTURES)/busybox/bundle
	scripts/fixtures/debian-rootfs.sh

conformance: build
	test/conformance/run.sh $(CONFORMANCE_RUNTIMES)

vet:
	$(GO) vet ./...

# The Go tests find the runtime and the fixtures through these (internal/testutil);
# pointing them at the binary just built saves a rebuild in every test package.
TEST_ENV = BERTH_RUNTIME=$(RUNTIME) BERTH_BINARY=$(CURDIR)/$(BIN_DIR)/berth BERTH_FIXTURES=$(CURDIR)/$(FIXTURES)

unit:
	@if [ "$$(id -u)" -ne 0 ]; then echo "unit: warning: not root, root-only tests will skip"; fi
	@# -p 1: one test package at a time. The end-to-end packages share the
	@# host's iptables, bridges and 2 CPUs; side by side they time each
	@# other out. Sequential, the whole run still takes well under 30 minutes.
	$(TEST_ENV) $(GO) test -count=1 -p 1 ./...
	@# The engine's end-to-end suite once more, through berthd (berth --host):
	@# the local and the remote path must behave the same.
	$(TEST_ENV) BERTH_E2E_REMOTE=1 $(GO) test -count=1 -run TestEngineSuiteThroughBerthd ./test/api

# End-to-end scripts: every test/*.sh, with the runtime and fixtures in the env.
e2e:
	@shopt -s nullglob; for t in test/*.sh; do \
		echo "== e2e: $$t"; \
		RUNTIME=$(RUNTIME) $(TEST_ENV) \
		BUSYBOX_BUNDLE=$(CURDIR)/$(FIXTURES)/busybox/bundle \
		DEBIAN_ROOTFS=$(CURDIR)/$(FIXTURES)/debian/rootfs \
			bash "$$t" || { echo "e2e: $$t failed"; exit 1; }; \
	done

# Conformance runs last so that its closing "N passed, N failed" line is the
# run's summary.
test: deps build fixtures vet unit e2e conformance

demo: deps build fixtures
	RUNTIME=$(RUNTIME) scripts/demo.sh

bench-runtime: deps build fixtures
	RUNTIME=$(RUNTIME) bench/runtime-startup/run.sh

bench-pull: deps build fixtures
	BERTH=$(CURDIR)/$(BIN_DIR)/berth bench/pull/run.sh

bench-run: deps build fixtures
	BERTH=$(CURDIR)/$(BIN_DIR)/berth bench/run/run.sh

bench-build: deps build fixtures
	BERTH=$(CURDIR)/$(BIN_DIR)/berth bench/build/run.sh

bench-network: deps build fixtures
	BERTH=$(CURDIR)/$(BIN_DIR)/berth bench/network/run.sh

clean:
	rm -rf --one-file-system $(BIN_DIR) $(CACHE)
