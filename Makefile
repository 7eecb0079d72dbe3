# cgnat: the two commands of the README, and their parts.
SHELL := /bin/bash
CARGO ?= $(shell command -v cargo 2>/dev/null || echo $(HOME)/.cargo/bin/cargo)
DEMO_OUT ?= out/demo
# Seconds each cargo-fuzz target runs in `make test`.
FUZZ_SECS ?= 20

.PHONY: demo test deb deps test-deps build lint unit e2e clean

## demo: install what is missing, build, translate the bundled sample traffic.
demo: deps
	$(CARGO) build --release -p cgnat-dataplane
	./target/release/cgnat check -c config/examples/pcap.toml > /dev/null
	mkdir -p $(DEMO_OUT)
	./target/release/cgnat pcap -c config/examples/pcap.toml \
	    --inside samples/subscribers.pcap --out-dir $(DEMO_OUT) > $(DEMO_OUT)/stdout.log
	@scripts/show-demo.sh samples/subscribers.pcap $(DEMO_OUT)

## test: install what is missing, then lint and run every test (unit, pcap mode,
## replays of real captures, end-to-end with real clients and servers in network
## namespaces, the comparison with the Linux kernel's helpers), then fuzz every
## payload parser for FUZZ_SECS seconds.
test: test-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace --all-targets
	mkdir -p target
	set -o pipefail; $(CARGO) test --workspace -- --test-threads=2 2>&1 | tee target/test-output.log
	scripts/fuzz $(FUZZ_SECS)
	@awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($$(i+1) ~ /^passed/) p += $$i; if ($$(i+1) ~ /^failed/) f += $$i } } \
	     END { printf "tests: %d passed, %d failed\n", p, f; exit (f > 0) }' target/test-output.log

## deb: the Debian package, $(DEB_DIR)/cgnat_VERSION_ARCH.deb, of the release build;
## PROFILE=debug packs the debug build, CGNAT_BIN=PATH a binary built elsewhere.
PROFILE ?= release
DEB_DIR ?= target/deb
CARGO_PROFILE = $(if $(filter dev debug,$(PROFILE)),dev,$(PROFILE))
PROFILE_DIR = $(if $(filter dev debug,$(PROFILE)),debug,$(PROFILE))
deb: deps
ifndef CGNAT_BIN
	$(CARGO) build --profile $(CARGO_PROFILE) -p cgnat-dataplane --bin cgnat
endif
	scripts/build-deb $(or $(CGNAT_BIN),target/$(PROFILE_DIR)/cgnat) $(DEB_DIR)

deps:
	scripts/install-deps.sh

test-deps:
	scripts/install-deps.sh --test

clean:
	$(CARGO) clean
	rm -rf out
