#!/usr/bin/env python3
"""Print every criterion group measured so far as Markdown tables of medians, from
target/criterion (run `cargo bench` first). The ratios in BENCHMARKS.md are computed from
these numbers."""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
groups = sys.argv[1:] or sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "report")


def fmt(ns):
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    if ns >= 1000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns:.0f} ns"


for group in groups:
    rows = []
    for estimates in sorted((root / group).glob("**/new/estimates.json")):
        name = str(estimates.parent.parent.relative_to(root / group))
        median = json.loads(estimates.read_text())["median"]["point_estimate"]
        rows.append((name, median))
    if not rows:
        continue
    print(f"\n### {group}\n\n| benchmark | median |\n| --- | --- |")
    for name, median in rows:
        print(f"| {name} | {fmt(median)} |")
