#!/usr/bin/env bash
# Constant-time evidence by instruction counts (benches/constant_time_counts.rs): every
# request of a "near" and a "far" class of wrong credentials runs under valgrind's
# callgrind; fails if a callguard check's count depends on the class, or if the control
# (tower-http's `==` bearer check) shows no difference. Counts are deterministic, so this is
# safe to run in CI. Installs valgrind from Debian's packages when it is missing.
# Usage: bash scripts/constant_time.sh [requests per class, default 400]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_valgrind
valgrind --version
cargo bench --quiet --bench constant_time_counts -- "${1:-400}"
