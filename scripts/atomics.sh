#!/usr/bin/env bash
# Atomic read-modify-write instructions per request (benches/profile.rs under callgrind):
# every `lock`-prefixed instruction and every `xchg` with memory, executed in the bench's own
# executable, counted in steady state (a run of MANY requests minus a run of FEW, divided by
# the difference) and listed by the function they sit in. A reference count taken and given
# back is two of them; the runtime's own are in every case, so compare cases, not totals.
# Counts do not depend on what else the machine does. Installs valgrind (Debian) and uses
# binutils' objdump.
# Usage: bash scripts/atomics.sh [case ...]   (default: signature_64B hand_rolled_64B
#        hand_rolled_shared_64B bearer no_layer_bearer)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_valgrind
bin=$(bench_executable profile)
few=100; many=600
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(signature_64B hand_rolled_64B hand_rolled_shared_64B bearer no_layer_bearer)
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
objdump -d --no-show-raw-insn -C "$bin" > "$out/disassembly"
for case in "${cases[@]}"; do
  for n in $few $many; do
    valgrind --tool=callgrind --dump-instr=yes --compress-strings=no --compress-pos=no \
      --callgrind-out-file="$out/$case.$n" --toggle-collect='profile::measured*' \
      "$bin" "$case" "$n" >/dev/null 2>&1
  done
done
python3 - "$out" "$bin" "$few" "$many" "${cases[@]}" <<'PY'
import collections, re, sys
out, binary, few, many, cases = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
# The atomic instructions of the executable: address -> (function, mnemonic).
atomic, function = {}, None
for line in open(f"{out}/disassembly"):
    m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
    if m:
        function = m.group(1)
        continue
    m = re.match(r"^\s*([0-9a-f]+):\s+(\S+)\s*(\S*)", line)
    if m and (m.group(2) == "lock" or (m.group(2).startswith("xchg") and "(" in m.group(3))):
        mnemonic = "lock " + m.group(3) if m.group(2) == "lock" else m.group(2)
        atomic[int(m.group(1), 16)] = (function, mnemonic)
name = binary.rsplit("/", 1)[-1]
def executed(path):
    """Executions of each atomic instruction of the executable, from a callgrind dump."""
    counts, in_binary, skip = collections.Counter(), False, 0
    for line in open(path):
        if skip:
            skip -= 1
            continue
        if line.startswith("ob="):
            in_binary = line.rstrip().endswith(name)
        elif line.startswith("calls="):
            skip = 1  # the next line is the call's inclusive cost, not an instruction's
        elif in_binary and line.startswith("0x"):
            fields = line.split()
            address = int(fields[0], 16)
            if address in atomic:
                counts[atomic[address]] += int(fields[-1])
    return counts
span = many - few
for case in cases:
    a, b = executed(f"{out}/{case}.{few}"), executed(f"{out}/{case}.{many}")
    per = {k: (b[k] - a[k]) / span for k in set(a) | set(b)}
    per = {k: v for k, v in per.items() if v >= 0.01}
    print(f"\n## {case}: {sum(per.values()):.1f} atomic instructions per request")
    for (fn, mnemonic), n in sorted(per.items(), key=lambda kv: (-kv[1], kv[0][0])):
        print(f"{n:6.2f}  {mnemonic:14s} {fn[:120]}")
PY
