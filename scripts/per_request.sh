#!/usr/bin/env bash
# Wall-clock time per request of benches/profile.rs's cases, for A/B comparisons on a noisy
# machine: each case runs REQUESTS requests in one process pinned to one core, the cases
# alternate, ROUNDS rounds, and the fastest round of each case is reported (the least
# disturbed). Runs to within a few nanoseconds of each other, where criterion's medians
# of separate groups move by 5%. Times include building each request, the same in every
# case: compare cases, not absolute numbers.
#
# With AGAINST=<git revision>, that revision is built too (in a worktree under
# target/per_request/, with its own target directory) and the two builds alternate case by
# case: the columns are that revision and the working tree, measured in the same minutes.
#
# Usage: bash scripts/per_request.sh [case ...]
#        (default: signature_64B hand_rolled_64B no_layer_64B bearer no_layer_bearer)
#        AGAINST=HEAD~3 ROUNDS=9 bash scripts/per_request.sh signature_64B
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${REQUESTS:-1000000}
rounds=${ROUNDS:-5}
core=${CORE:-1}

# The profile bench's executable, built in the current directory with target dir $1.
profile_binary() {
  CARGO_TARGET_DIR="$1" cargo bench --quiet --bench profile --no-run 2>/dev/null
  CARGO_TARGET_DIR="$1" cargo bench --quiet --bench profile --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "profile" and m.get("executable"):
        print(m["executable"])'
}

builds=(current)
declare -A binary
binary[current]=$(profile_binary "${CARGO_TARGET_DIR:-$PWD/target}")
if [ -n "${AGAINST:-}" ]; then
  revision=$(git rev-parse --short "$AGAINST")
  tree="$PWD/target/per_request/tree-$revision"
  if [ ! -d "$tree" ]; then
    git worktree add --detach -q "$tree" "$revision"
  fi
  binary[$revision]=$(cd "$tree" && profile_binary "$PWD/../target-$revision")
  builds=("$revision" current)
fi

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(signature_64B hand_rolled_64B no_layer_64B bearer no_layer_bearer)
declare -A best
for _ in $(seq "$rounds"); do
  for case in "${cases[@]}"; do
    for build in "${builds[@]}"; do
      start=$(date +%s%N)
      taskset -c "$core" "${binary[$build]}" "$case" "$requests" >/dev/null
      end=$(date +%s%N)
      ns=$(( (end - start) / requests ))
      key="$build/$case"
      if [ -z "${best[$key]:-}" ] || [ "$ns" -lt "${best[$key]}" ]; then best[$key]=$ns; fi
    done
  done
done
if [ ${#builds[@]} -eq 1 ]; then
  for case in "${cases[@]}"; do printf '%-18s %6d ns per request\n' "$case" "${best[current/$case]}"; done
else
  printf '%-18s %10s %10s  (ns per request)\n' case "${builds[0]}" current
  for case in "${cases[@]}"; do
    printf '%-18s %10d %10d\n' "$case" "${best[${builds[0]}/$case]}" "${best[current/$case]}"
  done
fi
