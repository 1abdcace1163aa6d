# The two commands of the README's quick start, and a few helpers.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
DEMO_CONFIG ?= config/demo.toml

.PHONY: all deps build run test bench check-config clean

all: build

deps:
	@scripts/install-deps

build: deps
	$(CARGO) build --release --locked

# Runs the daemon on the built-in demo (no camera, broker or network needed): the demo video is rendered
# by polewatch itself on first use, played as the demo camera, and every vehicle read is printed.
# Ctrl-C stops it.
DEMO_VIDEO ?= demo-state/demo.mp4
run: build
	@mkdir -p demo-state
	@test -s $(DEMO_VIDEO) || ./target/release/polewatch demo-video --out $(DEMO_VIDEO)
	./target/release/polewatch check-config --config $(DEMO_CONFIG)
	./target/release/polewatch run --config $(DEMO_CONFIG)

# Every test: unit, property, integration (real sled store, the daemon under a notify socket, kill -9).
test: deps
	$(CARGO) test --locked

# Figures, not pass/fail: see README "Benchmarks".
bench: build
	./target/release/polewatch bench store
	./target/release/polewatch bench crash

check-config: build
	./target/release/polewatch check-config --config $(DEMO_CONFIG)

clean:
	$(CARGO) clean
	rm -rf demo-state
