#!/usr/bin/env python3
"""Latency percentiles per system (one connection) from bench/results/latest.json
-> bench/results/latency.png. Run by `make bench`."""
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

root = pathlib.Path(__file__).resolve().parent
data = json.loads((root / "results" / "latest.json").read_text())
rows = data["rows"]
names = [r["system"] for r in rows]
pcts = [("p50", "p50_us_1"), ("p75", "p75_us_1"), ("p90", "p90_us_1"), ("p99", "p99_us_1")]
fig, ax = plt.subplots(figsize=(11, 5))
width = 0.8 / len(pcts)
for i, (label, key) in enumerate(pcts):
    xs = [j + i * width for j in range(len(rows))]
    ax.bar(xs, [r[key] for r in rows], width, label=label)
ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))])
ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
ax.set_ylabel("latency at 1 connection (µs)")
ax.set_yscale("log")
ax.set_title(f"backstage-proxy-wasm: latency percentiles per system ({data['seconds_per_run']} s runs, same machine, same run)")
ax.legend()
fig.tight_layout()
out = root / "results" / "latency.png"
fig.savefig(out, dpi=120)
print(f"wrote {out}")
sys.exit(0)
