# The two commands: `make run` (install what is missing, build, serve on http://127.0.0.1:3000)
# and `make test` (the whole test suite). `make bench` runs the benchmarks: the in-process one, the
# reference harness (../shared/bench) with a socat forwarder as the floor, and instruction counts.
# `make soak` runs the soak for an hour and the chaos scenario for ten minutes (release build;
# SOAK_SECONDS and CHAOS_SECONDS change that).
.PHONY: run test bench lint soak supply-chain proptest-long

run:
	scripts/run.sh

test:
	scripts/test.sh

bench:
	cargo build --release --features ssr --bin llm-bridge
	cargo build --release -p llm-bridge-mock
	cargo run --release --features ssr --example bench
	scripts/bench-harness.sh
	scripts/bench-instructions.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --features ssr --all-targets -- -D warnings
	cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

supply-chain:
	scripts/supply-chain.sh

# The property tests of the translators and decoders with many more cases than `make test` runs
# them with (a longer job).
proptest-long:
	PROPTEST_CASES=20000 cargo test --features ssr --lib proptests

SOAK_SECONDS ?= 3600
CHAOS_SECONDS ?= 600
soak:
	LLM_BRIDGE_SOAK_SECONDS=$(SOAK_SECONDS) cargo test --release --features ssr --test it soak -- --nocapture
	LLM_BRIDGE_CHAOS_SECONDS=$(CHAOS_SECONDS) cargo test --release --features ssr --test it chaos -- --nocapture
