#!/usr/bin/env bash
# Supply chain: cargo-deny checks licences (permissive only), bans (no wildcard versions;
# duplicates listed), and sources (crates.io only) offline, from Cargo.lock. Advisories need the
# RustSec database from github.com: checked when it can be fetched, otherwise skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
  say "installing cargo-deny $CARGO_DENY_VERSION (a few minutes once)"
  cargo install "cargo-deny@$CARGO_DENY_VERSION" --locked
fi

# cargo-deny reads every platform's crates from Cargo.lock; a build fetches only this platform's
# (Windows-only crates are missing on a fresh machine), so fetch them all first.
say "fetching every platform's crates in Cargo.lock"
cargo fetch --locked --quiet

say "cargo deny: licences, bans, sources"
cargo deny --offline check licenses bans sources

say "cargo deny: advisories"
if timeout 60 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny check advisories
else
  echo "SKIPPED: the RustSec advisory database (github.com/rustsec/advisory-db) cannot be reached" \
       "from this machine; advisories were not checked" >&2
fi
