#!/usr/bin/env bash
# Release build of the server and the console: target/release/llm-bridge + target/site.
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo-leptos looks for wasm-opt on PATH first; ours (binaryen 132) must win over any other.
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
cargo leptos build --release
