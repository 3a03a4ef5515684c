#!/usr/bin/env bash
# Run every cargo-fuzz target for a bounded time (default 30 s each) on the stable
# toolchain (RUSTC_BOOTSTRAP lets cargo-fuzz use the sanitizer flags it needs). Installs
# cargo-fuzz from crates.io when it is missing. Prints each target's executions and exits
# non-zero if any target found a crash (the crashing input is left in fuzz/artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1

status=0
passed=0
failed=0
for target in $(cargo fuzz list); do
  log=$(mktemp)
  # A private copy of the committed seeds, so the run's discoveries do not dirty the tree.
  corpus=$(mktemp -d)
  cp -r "fuzz/corpus/$target/." "$corpus/"
  if cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    passed=$((passed + 1))
    result="no crash"
  else
    failed=$((failed + 1))
    status=1
    result="CRASH (see fuzz/artifacts/$target)"
    tail -40 "$log"
  fi
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  echo "fuzz $target: ${runs:-?} executions in ${seconds}s, $result"
  rm -rf "$log" "$corpus"
done
echo "fuzz: $passed passed, $failed failed"
exit $status
