#!/usr/bin/env python3
"""Print the signature bench as a Markdown table with ratios, from criterion's saved
estimates (run `cargo bench --bench signature` first)."""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
sizes = [("64B", 64), ("1KiB", 1024), ("64KiB", 65536), ("1MiB", 1048576)]


def median_ns(group, fn, size):
    path = root / group / fn / size / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


for group in ["signature_one_frame", "signature_16KiB_frames"]:
    print(f"\n### {group}\n")
    print("| body | HMAC primitive | layer | no layer | layer − no layer | added ÷ primitive | primitive throughput ÷ layer-added throughput |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, _ in sizes:
        try:
            prim = median_ns(group, "hmac_primitive", label)
            layer = median_ns(group, "layer", label)
            bare = median_ns(group, "no_layer", label)
        except FileNotFoundError:
            continue
        added = layer - bare
        print(f"| {label} | {fmt(prim)} | {fmt(layer)} | {fmt(bare)} | {fmt(added)} | {added / prim:.2f}x | {prim / added:.3f} |")
