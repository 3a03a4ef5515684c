#!/usr/bin/env bash
# Where an accepted request's instructions go (benches/profile.rs under callgrind): for each
# case, the instructions per request in steady state (the difference between a run of
# FEW and of MANY requests, divided by MANY - FEW, so start-up and first-use work cancel
# out) and the functions they are spent in. Counts do not depend on what else the machine
# does. Installs valgrind from Debian's packages when it is missing.
# Usage: bash scripts/profile.sh [case ...]   (default: every case; TOP functions shown, 25)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_valgrind
bin=$(bench_executable profile)
few=100; many=600
cases=("$@")
[ ${#cases[@]} -gt 0 ] || mapfile -t cases < <("$bin" list)
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
for case in "${cases[@]}"; do
  for n in $few $many; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$case.$n" \
      --toggle-collect='profile::measured*' "$bin" "$case" "$n" >/dev/null 2>&1
    callgrind_annotate --threshold=100 "$out/$case.$n" > "$out/$case.$n.txt" 2>/dev/null
  done
done
python3 - "$out" "$few" "$many" "${TOP:-25}" "${cases[@]}" <<'PY'
import re, sys
out, few, many, top, cases = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
row = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*?)(?:\s+\[[^\]]*\])?$")
def counts(path):
    total, functions = 0, {}
    for line in open(path):
        m = row.match(line)
        if not m:
            continue
        n, name = int(m.group(1).replace(",", "")), m.group(2)
        if name == "PROGRAM TOTALS":
            total = n
            continue
        name = name.split(":", 1)[1] if ":" in name else name
        functions[name] = functions.get(name, 0) + n
    return total, functions
span = many - few
for case in cases:
    t1, f1 = counts(f"{out}/{case}.{few}.txt")
    t2, f2 = counts(f"{out}/{case}.{many}.txt")
    print(f"\n## {case}: {(t2 - t1) / span:,.0f} instructions per request")
    diff = {k: (f2.get(k, 0) - f1.get(k, 0)) / span for k in set(f1) | set(f2)}
    for name, n in sorted(diff.items(), key=lambda kv: -kv[1])[:top]:
        if n >= 1:
            print(f"{n:10,.0f}  {name[:150]}")
PY
