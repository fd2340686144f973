#!/usr/bin/env bash
# Release build of the server and the console: target/release/llm-bridge + target/site.
# Skipped when the last successful build read the same inputs (by content: the sources, styles,
# assets, manifest and lock file, this script, the wasm-opt pin, the toolchain and cargo-leptos
# versions, RUSTFLAGS and LEPTOS_* variables) and its outputs are still there, untouched since.
# LLM_BRIDGE_FORCE_BUILD=1 builds anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo-leptos looks for wasm-opt on PATH first; ours (binaryen 132) must win over any other.
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

stamp=target/.release-build
outputs=(
  target/release/llm-bridge
  target/site/pkg/llm-bridge.js
  target/site/pkg/llm-bridge.wasm
  target/site/pkg/llm-bridge.css
)

inputs_hash() {
  local paths=() p
  for p in src style public Cargo.toml Cargo.lock build.rs .cargo scripts/build.sh \
    tools/package.json tools/package-lock.json; do
    if [ -e "$p" ]; then paths+=("$p"); fi
  done
  {
    rustc --version 2>&1 || true
    cargo leptos --version 2>&1 || true
    env | grep -E '^(RUSTFLAGS|CARGO_ENCODED_RUSTFLAGS|LEPTOS_[A-Z_]*)=' | LC_ALL=C sort || true
    find "${paths[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

up_to_date() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$1" ] || return 1
  local f
  for f in "${outputs[@]}"; do
    # Missing, or rewritten by something else after the build that wrote the stamp.
    if [ ! -f "$f" ] || [ "$f" -nt "$stamp" ]; then return 1; fi
  done
}

# Taken before building: a file edited during the build makes the next run build again.
hash=$(inputs_hash)
if [ "${LLM_BRIDGE_FORCE_BUILD:-}" != 1 ] && up_to_date "$hash"; then
  printf '\033[1m==> %s\033[0m\n' "release build is up to date (no input changed); not rebuilding" >&2
  exit 0
fi
rm -f "$stamp"
cargo leptos build --release
mkdir -p target
printf '%s\n' "$hash" >"$stamp"
