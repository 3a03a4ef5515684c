#!/usr/bin/env bash
# Wall-clock time per request of benches/profile.rs's cases, for A/B comparisons on a noisy
# machine: each case runs REQUESTS requests in one process pinned to one core, the cases
# alternate, ROUNDS rounds, and the fastest round of each case is reported (the least
# disturbed). Runs to within a few nanoseconds of each other, where criterion's medians
# of separate groups move by 5%. Times include building each request, the same in every
# case: compare cases, not absolute numbers.
# Usage: bash scripts/per_request.sh [case ...]
#        (default: signature_64B hand_rolled_64B no_layer_64B bearer no_layer_bearer)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${REQUESTS:-1000000}
rounds=${ROUNDS:-5}
core=${CORE:-1}
cargo bench --quiet --bench profile --no-run 2>/dev/null
bin=$(cargo bench --quiet --bench profile --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "profile" and m.get("executable"):
        print(m["executable"])')
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(signature_64B hand_rolled_64B no_layer_64B bearer no_layer_bearer)
declare -A best
for _ in $(seq "$rounds"); do
  for case in "${cases[@]}"; do
    start=$(date +%s%N)
    taskset -c "$core" "$bin" "$case" "$requests" >/dev/null
    end=$(date +%s%N)
    ns=$(( (end - start) / requests ))
    if [ -z "${best[$case]:-}" ] || [ "$ns" -lt "${best[$case]}" ]; then best[$case]=$ns; fi
  done
done
for case in "${cases[@]}"; do printf '%-18s %6d ns per request\n' "$case" "${best[$case]}"; done
