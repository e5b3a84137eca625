#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Draws the paper's figures from benchmark CSVs (scripts/bench-guest.sh) as PNG files.

Usage: bench-plot.py CSV_DIR OUT_DIR

Reads every *.csv in CSV_DIR that has goodput rows, and draws each figure whose grid is
there (a figure without data is skipped and named on stderr):
  fig4-mptcp-vs-tcp.png    goodput vs RTT, symmetric paths, GE loss: tcp, mptcp, mptcp-ndiff
                           (paper Fig 4; grid symmetric-ge)
  fig6-udp-vs-tcp.png      % goodput change of a UDP over a TCP single-path tunnel vs RTT,
                           per uniform loss rate (paper Fig 6; grid udp-vs-tcp)
  fig7-symmetric.png       goodput vs RTT, symmetric paths, no loss: every tunnel and the
                           capacity limit (paper Fig 7; grid symmetric)
  fig9-symmetric-loss.png  as Fig 7 with GE loss (paper Fig 9; grid symmetric-ge)
  fig10-mpudp-vs-mptcp.png % goodput change from MPTCP to MPUDP split 50 vs RTT ratio, per GE
                           loss (paper Fig 10; grid asymmetric)
  fig11-path-aware.png     as Fig 10 for split 75, split 90 and rtt (paper Fig 11)
Error bars are 95 % Student-t intervals; for a percent change A/B - 1, the interval is
propagated from both means' intervals (first order: relative half-widths add in quadrature).
Needs matplotlib (pinned in scripts/plot-requirements.txt).
"""
import csv
import glob
import importlib
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

# The statistics, capacity and loss names are the tables' own (scripts/bench-report.py).
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
report = importlib.import_module("bench-report")
ci95, loss_label = report.ci95, report.loss_label
capacity_mbit = report.capacity_mbit
LABELS = {"udp": "UDP (single path)", "tcp": "TCP (single path)", "mptcp": "MPTCP fullmesh",
          "mptcp-ndiff": "MPTCP ndiffports", "split50": "MPUDP 50/50",
          "split75": "MPUDP 75/25", "split90": "MPUDP 90/10", "seq50": "MPUDP 50/50, reordered",
          "seq75": "MPUDP 75/25, reordered", "rtt": "MPUDP rtt scheduler"}
STYLE = {"udp": ("k", "o", "-"), "tcp": ("0.45", "s", "-"), "mptcp": ("tab:blue", "^", "--"),
         "mptcp-ndiff": ("tab:cyan", "v", "--"), "split50": ("tab:red", "D", "-"),
         "split75": ("tab:orange", "<", "-"), "split90": ("tab:brown", ">", "-"),
         "seq50": ("tab:purple", "P", "-"),
         "seq75": ("tab:pink", "X", "-"), "rtt": ("tab:green", "*", "-")}


def load(csv_dir):
    rows = []
    for path in sorted(glob.glob(os.path.join(csv_dir, "*.csv"))):
        with open(path) as f:
            rows += [r for r in csv.DictReader(f) if "goodput_mbit" in r and "loss" in r]
    return rows


def stat(rows, grid, tunnel, rtt0, rtt1, loss):
    """Mean and 95 % half-width of the successful downloads in one cell, or None."""
    values = [float(r["goodput_mbit"]) for r in rows
              if r["grid"] == grid and r["tunnel"] == tunnel and int(r["rtt0_ms"]) == rtt0
              and int(r["rtt1_ms"]) == rtt1 and r["loss"] == loss
              and r["goodput_mbit"] != "failed"]
    return ci95(values) if values else None


def change(a, b):
    """Percent change from b to a, with its propagated 95 % half-width."""
    (ma, ha), (mb, hb) = a, b
    pct = (ma / mb - 1) * 100
    return pct, (ma / mb) * math.hypot(ha / ma, hb / mb) * 100


def loss_key(loss):
    """Orders loss settings by their numbers (GE by 1-k), path by path."""
    return [float(part.removeprefix("ge")) for part in loss.split("/")]


def axes(title, ylabel, xlabel):
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, color="0.85", linewidth=0.6)
    return fig, ax


def save(fig, out_dir, name):
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name))
    plt.close(fig)
    print(f"wrote {name}")


def goodput_vs_rtt(rows, out_dir, name, grid, tunnels, title):
    """Goodput against the (symmetric) RTT, one line per tunnel, and the capacity limit."""
    cells = sorted({(int(r["rtt0_ms"]), r["loss"], float(r["rate0_mbit"]) +
                     float(r["rate1_mbit"])) for r in rows
                    if r["grid"] == grid and r["rtt0_ms"] == r["rtt1_ms"]})
    if not cells:
        print(f"skipped {name}: no {grid} grid", file=sys.stderr)
        return
    loss = cells[0][1]
    fig, ax = axes(f"{title} ({loss_label(loss) if loss != '0' else 'no loss'})",
                   "goodput (Mbit/s)", "RTT of each path (ms)")
    for tunnel in tunnels:
        points = [(rtt, stat(rows, grid, tunnel, rtt, rtt, loss)) for rtt, _, _ in cells]
        points = [(rtt, s) for rtt, s in points if s]
        if not points:
            continue
        color, marker, line = STYLE[tunnel]
        ax.errorbar([p[0] for p in points], [p[1][0] for p in points],
                    yerr=[p[1][1] for p in points], label=LABELS[tunnel], color=color,
                    marker=marker, linestyle=line, capsize=3, markersize=5)
    rtts = [c[0] for c in cells]
    ax.plot(rtts, [capacity_mbit(c[2]) for c in cells], color="0.6",
            linestyle=":", label="capacity of both paths")
    ax.set_ylim(bottom=0)
    # The paper's RTT axis (0-100 ms), also when a grid ran only some of its cells.
    ax.set_xlim(-3, max(100, max(rtts)) + 5)
    # Below the axes: inside, it would hide the single-path lines.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    fig.set_size_inches(6.4, 5.0)
    save(fig, out_dir, name)


def grouped_bars(ax, groups, series):
    """series: [(label, color, [(pct, half) or None per group])]."""
    width = 0.8 / max(len(series), 1)
    for i, (label, color, values) in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))
              if values[g]]
        ys = [v[0] for v in values if v]
        errs = [v[1] for v in values if v]
        ax.bar(xs, ys, width, yerr=errs, label=label, color=color, capsize=2,
               edgecolor="black", linewidth=0.4)
    ax.set_xticks(range(len(groups)), groups)
    ax.axhline(0, color="black", linewidth=0.8)


def udp_vs_tcp(rows, out_dir):
    grid = "udp-vs-tcp"
    losses = sorted({r["loss"] for r in rows if r["grid"] == grid}, key=loss_key)
    rtts = sorted({int(r["rtt0_ms"]) for r in rows if r["grid"] == grid})
    if not losses:
        print("skipped fig6-udp-vs-tcp.png: no udp-vs-tcp grid", file=sys.stderr)
        return
    fig, ax = axes("Goodput change of a UDP over a TCP single-path tunnel",
                   "goodput change UDP vs TCP (%)", "RTT (ms)")
    colors = plt.cm.Greys([0.35, 0.6, 0.85, 1.0])
    series = []
    for i, loss in enumerate(losses):
        values = []
        for rtt in rtts:
            udp, tcp = (stat(rows, grid, t, rtt, rtt, loss) for t in ("udp", "tcp"))
            values.append(change(udp, tcp) if udp and tcp else None)
        series.append((loss_label(loss), colors[i % len(colors)], values))
    grouped_bars(ax, [str(r) for r in rtts], series)
    ax.legend(fontsize=8)
    save(fig, out_dir, "fig6-udp-vs-tcp.png")


def versus_mptcp(rows, out_dir, name, tunnels, title):
    """Percent change from MPTCP to each MPUDP tunnel, by RTT ratio, one bar per GE loss."""
    grid = "asymmetric"
    cells = sorted({(int(r["rtt0_ms"]), int(r["rtt1_ms"])) for r in rows if r["grid"] == grid},
                   key=lambda c: c[1] / c[0])
    losses = sorted({r["loss"] for r in rows if r["grid"] == grid},
                    key=loss_key)
    present = [t for t in tunnels if any(r["grid"] == grid and r["tunnel"] == t for r in rows)]
    if not cells or not present:
        print(f"skipped {name}: no asymmetric grid with {tunnels}", file=sys.stderr)
        return
    fig, axs = plt.subplots(1, len(present), figsize=(5.2 * len(present), 4.2), dpi=120,
                            squeeze=False, sharey=True)
    colors = plt.cm.Greys([0.25, 0.5, 0.75, 1.0])
    for ax, tunnel in zip(axs[0], present):
        series = []
        for i, loss in enumerate(losses):
            values = []
            for rtt0, rtt1 in cells:
                mp, mptcp = (stat(rows, grid, t, rtt0, rtt1, loss) for t in (tunnel, "mptcp"))
                values.append(change(mp, mptcp) if mp and mptcp else None)
            series.append((loss_label(loss), colors[i % len(colors)], values))
        grouped_bars(ax, [f"1:{rtt1 / rtt0:g}" for rtt0, rtt1 in cells], series)
        ax.set_title(f"{LABELS[tunnel]} vs MPTCP fullmesh", fontsize=10)
        ax.set_xlabel(f"RTT ratio (primary {cells[0][0]} ms)")
        ax.grid(True, axis="y", color="0.85", linewidth=0.6)
    axs[0][0].set_ylabel("goodput change from MPTCP (%)")
    axs[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    save(fig, out_dir, name)


def main():
    csv_dir, out_dir = sys.argv[1], sys.argv[2]
    rows = load(csv_dir)
    os.makedirs(out_dir, exist_ok=True)
    goodput_vs_rtt(rows, out_dir, "fig4-mptcp-vs-tcp.png", "symmetric-ge",
                   ["tcp", "mptcp", "mptcp-ndiff"], "MPTCP vs single-path TCP tunnels")
    udp_vs_tcp(rows, out_dir)
    goodput_vs_rtt(rows, out_dir, "fig7-symmetric.png", "symmetric",
                   ["udp", "tcp", "mptcp", "mptcp-ndiff", "split50", "rtt"],
                   "Tunnels over two symmetric 10 Mbit/s paths")
    goodput_vs_rtt(rows, out_dir, "fig9-symmetric-loss.png", "symmetric-ge",
                   ["udp", "mptcp", "split50", "rtt"], "Tunnels over two lossy paths")
    versus_mptcp(rows, out_dir, "fig10-mpudp-vs-mptcp.png", ["split50"],
                 "MPUDP 50/50 vs MPTCP on paths of unequal RTT (10/10 Mbit/s)")
    versus_mptcp(rows, out_dir, "fig11-path-aware.png", ["split75", "split90", "rtt"],
                 "Shifting traffic to the faster path (10/10 Mbit/s)")


if __name__ == "__main__":
    main()
