# Helpers shared by the scripts: `source scripts/lib.sh` from the repository's root.
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Background processes started with `spawn` are stopped when the script exits.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
spawn() { "$@" & pids+=($!); }

free_port() { scripts/free-port.sh; }

# Waits (10 s at most) until a URL answers 2xx.
wait_http() {
  for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done
  echo "$1 did not answer within 10 s" >&2
  return 1
}

# Prints `VAR=URL` lines wiring every provider to a mock upstream at $1 (http://host:port).
mock_wiring() {
  grep -v '^#' mock-upstream/wiring.txt | while read -r var url; do
    [ -n "$var" ] && printf '%s=%s\n' "$var" "${url//\{mock\}/$1}"
  done
}
