#!/usr/bin/env python3
"""Writes benches/RESULTS.md (to stdout) from the outputs benches/run.sh collected.

    python3 benches/report.py OUT_DIR CRITERION_DIR > benches/RESULTS.md

OUT_DIR holds the pvbench JSON lines, the perf report and the Python comparison; CRITERION_DIR
is criterion's output (target/criterion) with the baselines run1 (and run2 for the envelope).
Criterion figures are the median time per iteration. The hand-written analysis is appended
from benches/notes.md.
"""

from __future__ import annotations

import datetime
import glob
import json
import math
import os
import platform
import re
import subprocess
import sys
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))


def load_criterion(root, baseline):
    out = {}
    for path in glob.glob(os.path.join(root, "**", baseline, "benchmark.json"), recursive=True):
        with open(path) as f:
            meta = json.load(f)
        with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
            est = json.load(f)
        out[meta["full_id"]] = {
            "ns": est["median"]["point_estimate"],
            "throughput": meta.get("throughput") or {},
        }
    return out


def jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def rate(x):
    if x is None:
        return "n/a"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"


def pct(x):
    return "n/a" if x is None else f"{100 * x:.0f}%"


class Crit:
    def __init__(self, root):
        self.runs = [load_criterion(root, b) for b in ("run1", "run2")]

    def ns(self, full_id, run=0):
        r = self.runs[run].get(full_id)
        return r and r["ns"]

    def best_ns(self, full_id):
        vals = [r[full_id]["ns"] for r in self.runs if full_id in r]
        return min(vals) if vals else None

    def per_s(self, full_id, elements=1, run=None):
        ns = self.best_ns(full_id) if run is None else self.ns(full_id, run)
        return None if not ns else elements * 1e9 / ns

    def gbps(self, full_id, nbytes, run=None):
        ns = self.best_ns(full_id) if run is None else self.ns(full_id, run)
        return None if not ns else nbytes / ns  # bytes per ns = GB/s


def machine():
    model, flags = "unknown", []
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        model = re.search(r"model name\s*:\s*(.*)", info).group(1)
        have = set(re.search(r"flags\s*:\s*(.*)", info).group(1).split())
        flags = [x for x in ("aes", "pclmulqdq", "vaes", "vpclmulqdq", "avx2", "avx512f",
                             "avx512vl", "sha_ni", "bmi2", "adx") if x in have]
    except (OSError, AttributeError):
        pass

    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "n/a"

    return {
        "cpu": model,
        "flags": " ".join(flags),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "rustc": cmd("rustc", "--version"),
        "commit": os.environ.get("PV_COMMIT") or cmd("git", "-C", HERE, "rev-parse", "--short", "HEAD"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


CATEGORIES = [
    ("randomness (getrandom syscall)", r"crng|chacha|get_random|getrandom|_copy_to_iter|do_syscall|entry_SYSCALL|syscall|SystemRandom|fill_random|__x64_sys|syscall_exit|SYSRET"),
    ("SHA-256/HMAC (HKDF, commitment)", r"sha256|digest|hmac|hkdf|fill_okm|DynState|BlockContext"),
    ("AES-GCM (key setup, wrap, payload)", r"aes|gcm|ghash|aead|clmul"),
    ("audit log and store (sled, postcard)", r"sled|audit|postcard|crossbeam|pagecache|serde"),
    ("memcpy/memset", r"memmove|memcpy|memset"),
    ("allocator", r"malloc|free|realloc|cfree|unlink_chunk|alloc::"),
    ("kernel scheduling/IO", r"schedule|switch|spin_|irq|softirq|iowrite|futex|wake"),
]


def categorize(sym, kernel):
    for name, pat in CATEGORIES:
        if re.search(pat, sym, re.I):
            return name
    return "other kernel" if kernel else "other (envelope code, context, checks)"


def lines_all(rep):
    out = []
    for line in open(rep):
        mt = re.match(r"\s*([\d.]+)%\s+\[([.k])\]\s+(.*)", line)
        if mt:
            out.append((float(mt.group(1)), mt.group(3).strip(), mt.group(2) == "k"))
    return out


SIZES = [("64B", 64), ("1KiB", 1024), ("64KiB", 65536), ("1MiB", 1 << 20)]
RAWS = ["raw-ring", "raw-rustcrypto", "raw-aws-lc-rs"]
OURS = ["phivault-ring", "phivault-rustcrypto", "phivault-aws-lc", "phivault-ring-into",
        "phivault-aws-lc-into", "vault-audited", "vault-reads-unaudited"]
# The envelope variants the score may use (the Vault API rows are scored apart).
ENVELOPES = [o for o in OURS if not o.startswith("vault-")]


# ---- hot paths (issue 19) ---------------------------------------------------------------
# hotpaths.jsonl: one line per (side, workload, round); ratio = ours_per_s / limit_per_s,
# measured side by side in one process. The chart's x-axis is log10 from 0.05 to 10.
HP_MIN, HP_MAX = 0.05, 10.0
HP_GRID = [0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10]
HP_COLOURS = {"before": "#b7c3d3", "met": "#2f9e5f", "not met": "#e8892c", "goal": "#222222"}


def median(xs):
    """The median of the values that are not None (None when there are none)."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def load_hotpaths(path):
    """Workloads of hotpaths.jsonl in the order first seen, each side reduced to its median.

    Each entry: workload, label, ours, limit, goal, multiple (goal read as "N×" rather than a
    share), and before/after = {ratio, ours_per_s, limit_per_s, rounds, commits} or None. The
    names and the goal come from the "after" lines when there are any.
    """
    order, rounds = [], {}
    for x in jsonl(path):
        w, side = x.get("workload"), x.get("side")
        if not w or side not in ("before", "after"):
            continue
        if w not in rounds:
            order.append(w)
            rounds[w] = {"before": [], "after": []}
        rounds[w][side].append(x)
    out = []
    for w in order:
        lines = rounds[w]["after"] + rounds[w]["before"]
        meta = {k: next((x[k] for x in lines if x.get(k) is not None), None)
                for k in ("label", "ours", "limit", "goal", "goal_kind")}
        row = {"workload": w, "label": meta["label"] or w, "ours": meta["ours"] or "?",
               "limit": meta["limit"] or "?", "goal": meta["goal"],
               "multiple": meta["goal_kind"] == "multiple" or (meta["goal"] or 0) >= 1.0}
        for side in ("before", "after"):
            xs = rounds[w][side]
            row[side] = None if not xs else {
                "ratio": median(x.get("ratio") if x.get("ratio") is not None
                                else (x["ours_per_s"] / x["limit_per_s"]
                                      if x.get("ours_per_s") and x.get("limit_per_s") else None)
                                for x in xs),
                "ours_per_s": median(x.get("ours_per_s") for x in xs),
                "limit_per_s": median(x.get("limit_per_s") for x in xs),
                "rounds": len(xs),
                "commits": list(dict.fromkeys(x["commit"] for x in xs if x.get("commit"))),
                "notes": list(dict.fromkeys(x["note"] for x in xs if x.get("note"))),
            }
        out.append(row)
    return out


def hp_ratio(x, multiple):
    """A ratio as "69%" or, for goals that are multiples (≥ 1), as "6.6×"."""
    if x is None:
        return "n/a"
    return f"{x:.1f}×" if multiple else pct(x)


def hp_status(row):
    """"met" when the after ratio reaches the goal, else "not met" ("n/a" without one)."""
    after = row["after"]
    if not after or after["ratio"] is None or row["goal"] is None:
        return "n/a"
    return "met" if after["ratio"] >= row["goal"] else "not met"


def hp_cell(side, multiple):
    """One side of the table: "rate/s / limit/s / ratio", or "—" when it was not measured."""
    if side is None:
        return "—"
    return (f"{rate(side['ours_per_s'])}/s / {rate(side['limit_per_s'])}/s / "
            f"{hp_ratio(side['ratio'], multiple)}")


def md_cell(s):
    """Text safe inside a markdown table cell."""
    return str(s).replace("|", "\\|").replace("\n", " ")


def hotpaths_svg(rows):
    """The chart as standalone SVG text: per workload, horizontal bars of the ratio to the
    limit (after; before thinner and lighter) on a log10 axis, and the goal as a tick."""
    width, left, right, top, row_h = 900, 250, 40, 78, 50
    plot_w = width - left - right
    height = top + row_h * len(rows) + 58
    lo, hi = math.log10(HP_MIN), math.log10(HP_MAX)

    def x(v):
        v = min(max(v, HP_MIN), HP_MAX)
        return left + (math.log10(v) - lo) / (hi - lo) * plot_w

    def f(v):
        return f"{v:.1f}"

    def fits(tx, s, size):
        """Whether text of this size starting at tx ends inside the image (width estimated)."""
        return tx + 0.62 * size * len(s) <= width - 4

    def text(tx, ty, s, size=13, anchor="start", fill="#222", weight=None, halo=False):
        extra = f' font-weight="{weight}"' if weight else ""
        if halo:
            extra += ' stroke="#ffffff" stroke-width="3" paint-order="stroke"'
        return (f'<text x="{f(tx)}" y="{f(ty)}" font-size="{size}" text-anchor="{anchor}" '
                f'fill="{fill}"{extra}>{escape(s)}</text>')

    bottom = top + row_h * len(rows)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        "<title>hot paths (issue 19): throughput ratio to the limit, measured in the same run</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        text(left, 24, "Hot paths (issue 19): our call's throughput / its limit's, same run",
             size=15, weight="bold"),
    ]
    # legend
    lx, ly = left, 44
    for name, key in (("before", "before"), ("after, goal met", "met"), ("after, goal not met", "not met")):
        h = 7 if key == "before" else 14
        out.append(f'<rect x="{f(lx)}" y="{f(ly + (14 - h) / 2)}" width="18" height="{h}" '
                   f'fill="{HP_COLOURS[key]}"/>')
        out.append(text(lx + 24, ly + 11.5, name, size=12))
        lx += 24 + 6.8 * len(name) + 22
    out.append(f'<line x1="{f(lx + 9)}" y1="{ly - 2}" x2="{f(lx + 9)}" y2="{ly + 16}" '
               f'stroke="{HP_COLOURS["goal"]}" stroke-width="2"/>')
    out.append(text(lx + 18, ly + 11.5, "goal", size=12))
    # grid
    for g in HP_GRID:
        gx = x(g)
        strong = g == 1
        out.append(f'<line x1="{f(gx)}" y1="{top - 6}" x2="{f(gx)}" y2="{bottom + 4}" '
                   f'stroke="{"#888888" if strong else "#dddddd"}" stroke-width="1"/>')
        out.append(text(gx, bottom + 20, f"{g:g}", size=12, anchor="middle"))
    out.append(f'<line x1="{left}" y1="{bottom + 4}" x2="{width - right}" y2="{bottom + 4}" '
               'stroke="#888888" stroke-width="1"/>')
    out.append(text(left + plot_w / 2, bottom + 44,
                    "ratio to the limit (log scale; 1 = as fast as the limit)", size=13, anchor="middle"))
    # rows
    for i, row in enumerate(rows):
        y = top + i * row_h
        mult, status = row["multiple"], hp_status(row)
        if i % 2:
            out.append(f'<rect x="0" y="{y}" width="{width}" height="{row_h}" fill="#f6f7f9"/>')
            # keep the grid visible over the band
            for g in HP_GRID:
                out.append(f'<line x1="{f(x(g))}" y1="{y}" x2="{f(x(g))}" y2="{y + row_h}" '
                           f'stroke="{"#888888" if g == 1 else "#dddddd"}" stroke-width="1"/>')
        label = row["label"] if len(row["label"]) <= 34 else row["label"][:33] + "…"
        out.append(text(left - 10, y + 22, label, size=13, anchor="end"))
        out.append(text(left - 10, y + 38, row["workload"][:40], size=10, anchor="end", fill="#666"))
        b, a = row["before"], row["after"]
        if b and b["ratio"] is not None:
            bx = x(b["ratio"])
            out.append(f'<rect x="{left}" y="{y + 8}" width="{f(bx - left)}" height="7" '
                       f'fill="{HP_COLOURS["before"]}"><title>{escape(row["label"])}, before: '
                       f'{escape(hp_cell(b, mult))}</title></rect>')
            room = fits(bx + 4, "before " + hp_ratio(b["ratio"], mult), 10)
            out.append(text(bx + 4 if room else bx - 4, y + 15 if room else y + 6,
                            "before " + hp_ratio(b["ratio"], mult), size=10,
                            anchor="start" if room else "end", fill="#555", halo=True))
        if a and a["ratio"] is not None:
            ax = x(a["ratio"])
            colour = HP_COLOURS["met" if status == "met" else "not met"]
            out.append(f'<rect x="{left}" y="{y + 18}" width="{f(ax - left)}" height="16" '
                       f'fill="{colour}"><title>{escape(row["label"])}, after: '
                       f'{escape(hp_cell(a, mult))}</title></rect>')
            if not fits(ax + 4, hp_ratio(a["ratio"], mult), 13):  # label inside the bar's end
                out.append(text(ax - 4, y + 31, hp_ratio(a["ratio"], mult), size=13, anchor="end",
                                fill="#ffffff", weight="bold"))
            else:
                out.append(text(ax + 4, y + 31, hp_ratio(a["ratio"], mult), size=13, weight="bold",
                                halo=True))
        if row["goal"] is not None:
            gx = x(row["goal"])
            out.append(f'<line x1="{f(gx)}" y1="{y + 4}" x2="{f(gx)}" y2="{y + row_h - 4}" '
                       f'stroke="{HP_COLOURS["goal"]}" stroke-width="2"/>')
            out.append(text(gx + 4, y + row_h - 5, "goal " + hp_ratio(row["goal"], mult), size=10,
                            fill=HP_COLOURS["goal"], halo=True))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def hotpaths_section(out_dir, svg_path):
    """Markdown lines of the "Hot paths (issue 19)" section, and its chart written to svg_path.

    Empty (and no chart written) when OUT_DIR has no hotpaths.jsonl.
    """
    path = os.path.join(out_dir, "hotpaths.jsonl")
    if not os.path.exists(path):
        return []
    rows = load_hotpaths(path)
    if not rows:
        return []
    with open(svg_path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(hotpaths_svg(rows))
    n = {s: sorted({r[s]["rounds"] for r in rows if r[s]}) for s in ("before", "after")}
    rounds = "; ".join(f"{s} {v[0]}" + (f"-{v[-1]}" if v[-1] != v[0] else "") for s, v in n.items() if v)
    out = [
        "## Hot paths (issue 19)",
        "",
        "Each call against its limit, both measured side by side in one process; ratio = our",
        "rate / the limit's rate. Where a workload was measured in several rounds, the median ratio",
        f"and median rates are shown (rounds per workload: {rounds}). Status: the after ratio",
        "against the goal (a minimum share of the limit, or a multiple of it when written N×).",
        "",
        f"![hot paths: ratio to limit]({os.path.basename(svg_path)})",
        "",
        "| workload | call | limit (same run) | before: rate / limit / ratio | after: rate / limit / ratio | goal | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        goal = "n/a" if r["goal"] is None else "≥ " + hp_ratio(r["goal"], r["multiple"])
        out.append(f"| {md_cell(r['label'])} | {md_cell(r['ours'])} | {md_cell(r['limit'])} | "
                   f"{hp_cell(r['before'], r['multiple'])} | {hp_cell(r['after'], r['multiple'])} | "
                   f"{goal} | **{hp_status(r)}** |")
    out.append("")
    commits = {s: list(dict.fromkeys(c for r in rows if r[s] for c in r[s]["commits"]))
               for s in ("before", "after")}
    out.append("Before: " + (", ".join(f"`{c}`" for c in commits["before"]) or "n/a")
               + "; after: " + (", ".join(f"`{c}`" for c in commits["after"]) or "n/a") + ".")
    notes = [(r["label"], s, t) for r in rows for s in ("before", "after") if r[s] for t in r[s]["notes"]]
    if notes:
        out.append("")
        out.extend(f"- {md_cell(lbl)} ({s}): {md_cell(t)}" for lbl, s, t in notes)
    out.append("")
    return out


def main():
    out_dir, crit_dir = sys.argv[1], sys.argv[2]
    c = Crit(crit_dir)
    m = machine()
    p = print
    p("# phivault throughput: results")
    p()
    p("Generated by `benches/run.sh` (do not edit by hand; the analysis at the end comes from")
    p("`benches/notes.md`). Every figure below was measured in the same run, on this machine:")
    p()
    p("Other result files, each from its own scripts: [RESULTS-scaleout.md](RESULTS-scaleout.md)")
    p("(the PostgreSQL store, issue 21), [RESULTS-pipelines.md](RESULTS-pipelines.md) (Arrow,")
    p("Dask and Spark from Python, issue 22) and [RESULTS-fhir.md](RESULTS-fhir.md) (FHIR")
    p("de-identification, issue 20).")
    p()
    p("| | |")
    p("|---|---|")
    p(f"| CPU | {m['cpu']}, {m['cores']} cores visible |")
    p(f"| CPU flags that matter | {m['flags']} |")
    p(f"| kernel | {m['kernel']} |")
    p(f"| toolchain | {m['rustc']}, release profile (criterion `cargo bench`) |")
    p(f"| commit | {m['commit']} |")
    p(f"| date | {m['date']} |")
    p()
    quiet = os.environ.get("PV_BENCH_QUIET")
    if quiet:
        p(f"**Noise.** {quiet} Criterion runs are short (0.5 s warm-up, 1.5-2 s measurement,")
    else:
        p("**Noise.** The machine's 2 cores may be shared with builds or fuzzers, so absolute")
        p("figures move by 10-30% between runs. Criterion runs are short (0.5 s warm-up, 1.5-2 s measurement,")
    p("10-30 samples) and report the median; the envelope group is run twice (run1, run2) and")
    p("both ratios are shown. Ratios measured side by side in one run are steadier than")
    p("absolute figures. Raw outputs: `target/phivault-bench/`.")
    p()
    p("Commands: `benches/run.sh` runs `cargo bench -p phivault-benches --bench envelope|records|tokens`")
    p("and `target/release/pvbench open|disk 100000|threads|load DIR N|rewrap DIR|sledcas N|seal64 N|sealmany64 N|afterwrites N [vault]`")
    p("(`rewrap` once more with `PV_THREADS=2`),")
    p("`perf record -g` on `pvbench seal64`, and `benches/.venv/bin/python benches/compare_python.py`.")
    p()

    # ---- hot paths (issue 19) ----------------------------------------------------------
    for line in hotpaths_section(out_dir, os.path.join(HERE, "hotpaths.svg")):
        p(line)

    # ---- targets ----------------------------------------------------------------------
    rows = []

    def fastest_raw(op, size):
        vals = [(c.gbps(f"envelope-{op}/{size}/{r}", 1), r) for r in RAWS]
        vals = [v for v in vals if v[0]]
        return max(vals) if vals else (None, None)

    def best_env(op, size):
        """The fastest envelope variant at this size (best of both runs)."""
        vals = [(c.best_ns(f"envelope-{op}/{size}/{o}"), o) for o in ENVELOPES]
        vals = [v for v in vals if v[0]]
        return min(vals)[1] if vals else "phivault-ring"

    def score(op, size, run, ours_name=None):
        ours = c.ns(f"envelope-{op}/{size}/{ours_name or best_env(op, size)}", run)
        raws = [c.ns(f"envelope-{op}/{size}/{r}", run) for r in RAWS]
        raws = [r for r in raws if r]
        return None if not (ours and raws) else min(raws) / ours

    s1, s2 = score("encrypt", "1MiB", 0), score("encrypt", "1MiB", 1)
    _, fr = fastest_raw("encrypt", "1MiB")
    rows.append(("1 MiB envelope encrypt ≥ 90% of fastest raw AES-GCM",
                 f"`{best_env('encrypt', '1MiB')}`: {pct(s1)} / {pct(s2)} of {fr} (run1 / run2)",
                 "met" if s1 and s2 and min(s1, s2) >= 0.9 else "not met"))
    b64 = best_env("encrypt", "64B")
    e64 = [c.per_s(f"envelope-encrypt/64B/{b64}", run=r) for r in (0, 1)]
    m64 = c.per_s("envelope-encrypt-batch1000/64B/seal_many", 1000)
    v64 = c.per_s("envelope-encrypt-batch1000/64B/vault-encrypt_many-2thread", 1000)
    sm = [x for x in jsonl(os.path.join(out_dir, "sealmany64.jsonl")) if x.get("bench") == "sealmany64"]
    sm_best = max((x["per_s"] for x in sm), default=None)
    batch = max(x for x in (m64, sm_best) if x) if (m64 or sm_best) else None
    status = ("met" if all(e64) and min(e64) >= 1e6
              else "met with the batch call (`seal_many`), not one call per envelope"
              if batch and batch >= 1e6 else "not met")
    rows.append(("64 B envelope encrypt ≥ 1M ops/s per core",
                 f"`{b64}` {rate(e64[0])}/s / {rate(e64[1])}/s; `seal_many` {rate(m64)}/s per core"
                 + (f" (criterion), {rate(sm_best)}/s (`pvbench sealmany64`, best backend)" if sm_best else "")
                 + f"; `Vault::encrypt_many` on a pool of 2: {rate(v64)}/s",
                 status))
    tb = c.per_s("tokenize-batch10k/vaulted-mrn-durable", 10_000)
    sb = c.per_s("tokenize-batch10k/raw-sled-batch+flush", 10_000)
    r = tb / sb if tb and sb else None
    rows.append(("tokenize batch (vaulted, consistent, new, durable) ≥ 50% of raw sled batch",
                 f"{rate(tb)}/s vs {rate(sb)}/s = {pct(r)}", "met" if r and r >= 0.5 else "not met"))
    for kind, ours, raw, n in (("single", "detokenize-single/vaulted-mrn", "detokenize-single/raw-sled-get", 1),
                               ("batch 10k", "detokenize-batch10k/vaulted-mrn", "detokenize-batch10k/raw-sled-get", 10_000),
                               ("batch 10k, pool of 2", "detokenize-batch10k/vaulted-mrn-2threads", "detokenize-batch10k/raw-sled-get", 10_000)):
        a, b = c.per_s(ours, n), c.per_s(raw, n)
        r = a / b if a and b else None
        rows.append((f"detokenize vaulted ({kind}) ≥ 50% of raw sled point reads",
                     f"{rate(a)}/s vs {rate(b)}/s = {pct(r)}", "met" if r and r >= 0.5 else "not met"))
    a = c.per_s("tokenize-batch10k/ff1-ssn", 10_000)
    a2 = c.per_s("tokenize-batch10k/ff1-ssn-2threads", 10_000)
    b = c.per_s("tokenize-batch10k/fpe-crate-ff1-direct", 10_000)
    r = a / b if a and b else None
    r2 = a2 / b if a2 and b else None
    rows.append(("FF1 9-digit ≥ 2× the fpe crate (batch 10k)",
                 (f"one core {rate(a)}/s vs {rate(b)}/s = {r:.2f}×; pool of 2: {rate(a2)}/s = {r2:.2f}×"
                  if r and r2 else "n/a"),
                 "met per core" if r and r >= 2 else ("met on 2 cores only" if r2 and r2 >= 2 else "not met")))
    a = c.per_s("tokenize-batch10k/pseudonym", 10_000)
    a2 = c.per_s("tokenize-batch10k/pseudonym-2threads", 10_000)
    rows.append(("pseudonyms ≥ 3M/s (batch 10k)", f"one core {rate(a)}/s; pool of 2: {rate(a2)}/s",
                 "met" if a and a >= 3e6 else "not met"))
    rw = [x for x in jsonl(os.path.join(out_dir, "rewrap.jsonl")) if x["bench"] == "rewrap"]
    if rw:
        n_max = max(x["scanned"] for x in rw)
        bigs = [x for x in rw if x["scanned"] == n_max]
        big = max(bigs, key=lambda x: x["records_per_s"])
        mems = ", ".join(f"{x['scanned'] // 1000}k/{x.get('threads', 1)}t: {x['peak_rss_kib'] / 1024:.0f} MiB" for x in rw)
        speeds = "; ".join(f"{x.get('threads', 1)} thread(s) {rate(x['records_per_s'])}/s" for x in bigs)
        cas = [x for x in jsonl(os.path.join(out_dir, "rewrap.jsonl"))
               if x["bench"] == "sledcas" and x["records"] == n_max]
        ceiling = (f"; raw sled compare-and-swap of {n_max // 1000}k entries (the store's ceiling): "
                   f"{rate(cas[0]['per_s'])}/s, rewrap = {pct(big['records_per_s'] / cas[0]['per_s'])} of it"
                   if cas else "")
        rows.append(("rewrap ≥ 200k records/s, memory flat in the number of records",
                     f"at {n_max // 1000}k: {speeds}{ceiling}; peak RSS {mems}",
                     "met" if big["records_per_s"] >= 2e5 else "not met"))
    p("## Targets (issue 9)")
    p()
    p("| target | measured | status |")
    p("|---|---|---|")
    for t, v, s in rows:
        p(f"| {t} | {v} | **{s}** |")
    p()

    # ---- envelope ---------------------------------------------------------------------
    for op in ("encrypt", "decrypt"):
        p(f"## Envelope {op} vs raw AES-256-GCM on the same bytes")
        p()
        fn = "seal" if op == "encrypt" else "open"
        p("Throughput (best of run1/run2) and the envelope's ratio to the fastest raw AES-256-GCM")
        p(f"at that size (the limit). `phivault-*` = `envelope::{fn}` with a KEK (fresh DEK, HKDF,")
        p("DEK wrap, commitment, payload AEAD, output allocation); `vault-audited` = `Vault::%s`" % op)
        p("as shipped (keyring lookup, policy decision, one audit-log entry per call); `raw-*` = one")
        p("AES-GCM call in place, key schedule expanded once." + (" Raw decrypt includes one copy of the input, as the envelope makes one." if op == "decrypt" else ""))
        p()
        p("| size | " + " | ".join(OURS + RAWS) + " | best phivault-* variant % of fastest raw (run1 / run2) | phivault-ring vs raw-ring |")
        p("|---|" + "---|" * (len(OURS) + len(RAWS) + 2))
        for size, n in SIZES:
            cells = []
            for name in OURS + RAWS:
                fid = f"envelope-{op}/{size}/{name}"
                ps, gb = c.per_s(fid), c.gbps(fid, n)
                cells.append("n/a" if ps is None else f"{rate(ps)}/s, {gb:.2f} GB/s")
            s1, s2 = score(op, size, 0), score(op, size, 1)
            ours, ring = c.best_ns(f"envelope-{op}/{size}/phivault-ring"), c.best_ns(f"envelope-{op}/{size}/raw-ring")
            vs_ring = pct(ring / ours) if ours and ring else "n/a"
            p(f"| {size} | " + " | ".join(cells) + f" | {pct(s1)} / {pct(s2)} | {vs_ring} |")
        p()

    p("## Small envelopes in batches: `seal` per item vs `seal_many` (the change)")
    p()
    p("1000 envelopes per iteration, one context each; per-envelope rates. `seal_many` makes the")
    p("same envelopes but takes the randomness of 64 envelopes from one CSPRNG call.")
    p()
    p("| size | `seal` per item | `seal_many` | speed-up |")
    p("|---|---|---|---|")
    for size in ("64B", "1KiB"):
        a = c.per_s(f"envelope-encrypt-batch1000/{size}/seal-per-item", 1000)
        b = c.per_s(f"envelope-encrypt-batch1000/{size}/seal_many", 1000)
        p(f"| {size} | {rate(a)}/s | {rate(b)}/s | {f'{b / a:.2f}×' if a and b else 'n/a'} |")
    p()

    p("## Auditing on vs off")
    p()
    p("`vault-audited` is the `Vault` API as shipped (policy decision + one audit-log entry per")
    p("call, group-committed); `vault-reads-unaudited` is the same API after")
    p("`Vault::set_read_auditing(false)` (policy decisions stay; writes, administration and")
    p("denials are still logged); `envelope` is `envelope::seal`/`open` with the KEK (no policy,")
    p("no log). Tokens: single detokenize calls, read auditing on and off.")
    p()
    p("| op | size | audited (`Vault`) | reads not audited (`Vault`) | bare envelope | audited / not audited |")
    p("|---|---|---|---|---|---|")
    for op in ("encrypt", "decrypt"):
        for size, n in SIZES:
            a = c.per_s(f"envelope-{op}/{size}/vault-audited")
            u = c.per_s(f"envelope-{op}/{size}/vault-reads-unaudited")
            b = c.per_s(f"envelope-{op}/{size}/phivault-ring")
            p(f"| {op} | {size} | {rate(a)}/s | {rate(u)}/s | {rate(b)}/s | {pct(a / u) if a and u else 'n/a'} |")
    for kind in ("vaulted-mrn", "ff1-ssn"):
        a = c.per_s(f"detokenize-single/{kind}")
        u = c.per_s(f"detokenize-single/{kind}-unaudited")
        p(f"| detokenize | {kind} | {rate(a)}/s | {rate(u)}/s | — | {pct(a / u) if a and u else 'n/a'} |")
    p()

    # ---- records ----------------------------------------------------------------------
    p("## Records (default durability: every call flushed) vs raw sled")
    p()
    p("Raw sled: same sled configuration, same number of entries per call, same key and value")
    p("lengths, one flush per call.")
    p()
    p("| workload | phivault | raw sled | ratio |")
    p("|---|---|---|---|")
    for title, ours, raw, n in (
        ("put, one record (64 B), durable", "records-put-durable/64B/phivault-put", "records-put-durable/64B/raw-sled-insert+flush", 1),
        ("put_many, 10k × 64 B, durable", "records-put-batch10k/64B/phivault-put_many", "records-put-batch10k/64B/raw-sled-batch+flush", 10_000),
        ("get (64 B)", "records-get/64B/phivault-get", "records-get/64B/raw-sled-get", 1),
    ):
        a, b = c.per_s(ours, n), c.per_s(raw, n)
        p(f"| {title} | {rate(a)}/s | {rate(b)}/s | {pct(a / b) if a and b else 'n/a'} |")
    p()

    # ---- tokens -----------------------------------------------------------------------
    p("## Tokens per kind vs their references")
    p()
    p("| workload | kind | phivault | reference | reference figure | ratio |")
    p("|---|---|---|---|---|---|")
    for grp, n in (("tokenize-single", 1), ("tokenize-batch10k", 10_000),
                   ("detokenize-single", 1), ("detokenize-batch10k", 10_000)):
        tok = grp.startswith("tokenize")
        vaulted = "vaulted-mrn-durable" if tok else "vaulted-mrn"
        sled_ref = ("raw-sled-insert+flush" if n == 1 else "raw-sled-batch+flush") if tok else "raw-sled-get"
        for kind, ref in ((vaulted, sled_ref), ("ff1-ssn", "fpe-crate-ff1-direct"),
                          ("pseudonym", None), ("date-shift", None),
                          (vaulted + "-2threads", sled_ref), ("ff1-ssn-2threads", "fpe-crate-ff1-direct"),
                          ("pseudonym-2threads", None),
                          ("vaulted-mrn-unaudited", sled_ref), ("ff1-ssn-unaudited", "fpe-crate-ff1-direct")):
            a = c.per_s(f"{grp}/{kind}", n)
            if a is None:
                continue
            b = c.per_s(f"{grp}/{ref}", n) if ref else None
            ratio = f"{a / b:.2f}×" if a and b else "—"
            p(f"| {grp} | {kind} | {rate(a)}/s | {ref or '—'} | {rate(b) + '/s' if b else '—'} | {ratio} |")
    p()

    p("### CPU-bound token kinds: after the store benches vs in a process of their own")
    p()
    p("`tokens` runs every token bench in one process (run1), where FF1, pseudonyms and date")
    p("shifts come after bulk durable writes (vaulted tokens, raw sled batches); `run.sh` then")
    p("runs those kinds again in a fresh process (run2). The tables above take the better of the")
    p("two; both are here. Until session 3 run1 was 2-4x slower for pseudonyms and FF1 batches:")
    p("glibc malloc, fragmented by sled's allocations, spent half the time in `_int_malloc` and")
    p("`malloc_consolidate`. The benches (like the CLI and the Python module) now use mimalloc as")
    p("their global allocator, and the two columns agree; see \"Allocator\" below.")
    p()
    p("| workload | same process, after store benches (run1) | own process (run2) |")
    p("|---|---|---|")
    for grp, n in (("tokenize-single", 1), ("tokenize-batch10k", 10_000),
                   ("detokenize-single", 1), ("detokenize-batch10k", 10_000)):
        for kind in ("ff1-ssn", "fpe-crate-ff1-direct", "pseudonym", "date-shift", "ff1-ssn-2threads", "pseudonym-2threads"):
            fid = f"{grp}/{kind}"
            a, b = c.per_s(fid, n, run=0), c.per_s(fid, n, run=1)
            if a is None and b is None:
                continue
            p(f"| {fid} | {rate(a) + '/s' if a else 'n/a'} | {rate(b) + '/s' if b else 'n/a'} |")
    p()

    # ---- rewrap -----------------------------------------------------------------------
    p("## Rewrap and peak memory")
    p()
    p("`pvbench load DIR N` stores N records of 64 B (put_many, 10k per durable batch) in one")
    p("process; `pvbench rewrap DIR` opens the vault in a fresh process, rotates `default` and")
    p("rewraps everything (default options: batches of 1000 with a durable checkpoint each);")
    p("then `PV_THREADS=2 pvbench rewrap DIR` rotates again and rewraps everything on the vault's")
    p("pool of 2. Peak memory is the process's `VmHWM`.")
    p()
    p("| records | threads | load records/s | rewrap records/s | rewrap secs | peak RSS before rewrap | peak RSS after rewrap | store on disk |")
    p("|---|---|---|---|---|---|---|---|")
    loads = {x["records"]: x for x in jsonl(os.path.join(out_dir, "rewrap.jsonl")) if x["bench"] == "load"}
    for x in rw:
        ld = loads.get(x["scanned"], {})
        disk = ld.get("disk_bytes")
        p(f"| {x['scanned']:,} | {x.get('threads', 1)} | {rate(ld.get('records_per_s'))}/s | {rate(x['records_per_s'])}/s | "
          f"{x['secs']:.1f} | {x['peak_rss_kib_before'] / 1024:.0f} MiB | {x['peak_rss_kib'] / 1024:.0f} MiB | "
          f"{disk / 2**20:.0f} MiB |" if disk else "n/a |")
    p()

    # ---- open -------------------------------------------------------------------------
    p("## Vault open time per root-key setting")
    p()
    p("| root key | median open (ms) | runs (ms) |")
    p("|---|---|---|")
    for x in jsonl(os.path.join(out_dir, "open.jsonl")):
        runs = ", ".join(f"{t:.1f}" for t in x["runs_ms"])
        p(f"| {x['setting']} | {x['median_ms']:.1f} | {runs} |")
    p()

    # ---- disk -------------------------------------------------------------------------
    p("## Bytes on disk (space amplification)")
    p()
    for x in jsonl(os.path.join(out_dir, "disk.jsonl")):
        if x["bench"] == "disk-records":
            p(f"- **Records**: {x['records']:,} records of {x['payload']} B with {x['id_len']}-byte ids take "
              f"{x['bytes_per_record']:.0f} B each on disk (store entry: {x['entry_bytes']} B = 49 B key + "
              f"format byte + envelope); {x['vs_plaintext']:.1f}× the plaintext id + payload; "
              f"raw sled holding entries of the same size takes {x['raw_sled_bytes_per_record']:.0f} B each, "
              f"so phivault is {x['vs_raw_sled']:.2f}× raw sled.")
        if x["bench"] == "disk-tokens":
            p(f"- **Vaulted tokens** (consistent: token entry + index entry): {x['tokens']:,} values of "
              f"{x['value_len']} B take {x['bytes_per_token']:.0f} B each on disk "
              f"({x['vs_plaintext']:.0f}× the value).")
    p()
    p("Sizes are apparent file sizes of the store directory after the vault is closed.")
    p()

    # ---- threads ----------------------------------------------------------------------
    p("## 1 vs 2 threads")
    p()
    p("The batch calls are serial inside; \"2 threads\" is two threads calling at once on one")
    p("shared `Vault` (best of 3).")
    p()
    p("| workload | 1 thread | 2 threads | speed-up |")
    p("|---|---|---|---|")
    for x in jsonl(os.path.join(out_dir, "threads.jsonl")):
        if x["bench"] != "threads":
            continue
        p(f"| {x['workload']} | {rate(x['one_thread_per_s'])}/s | {rate(x['two_threads_per_s'])}/s | {x['speedup']:.2f}× |")
    p()
    p("## One batch call on the vault's pool (`VaultOptions::threads(2)`) vs the calling thread")
    p()
    p("`pvbench threads` (pool part): one caller, one batch call at a time, same vault and")
    p("batches; best of 3 rounds of 3 calls. Results are identical (tested in core/tests/parallel.rs).")
    p()
    p("| workload | calling thread (threads 1) | pool of 2 | speed-up |")
    p("|---|---|---|---|")
    for x in jsonl(os.path.join(out_dir, "threads.jsonl")):
        if x["bench"] != "pool":
            continue
        p(f"| {x['workload']} | {rate(x['one_thread_per_s'])}/s | {rate(x['pool_of_2_per_s'])}/s | {x['speedup']:.2f}× |")
    p()

    # ---- allocator --------------------------------------------------------------------
    aw = jsonl(os.path.join(out_dir, "afterwrites.jsonl"))
    if aw:
        p("## Allocator: CPU-bound work after bulk store writes")
        p()
        p("`pvbench afterwrites 100 vault`: pseudonym batches of 10k (40 each) before and after one")
        p("million new vaulted tokens written to the vault, and `pvbench afterwrites 100`: before")
        p("and after 100 raw sled batches of 10k (1 GiB sled cache) in the same process. This run uses")
        p("mimalloc (the benches' global allocator); the glibc figures are from session 3, same")
        p("machine, before the switch (benches/notes.md).")
        p()
        p("| phase | best batch, pseudonyms/s | mean ms per batch | RSS MiB |")
        p("|---|---|---|---|")
        for x in aw:
            p(f"| {x['phase']} | {rate(x['best_per_s'])} | {x['mean_batch_ms']:.2f} | {(x.get('rss_kib') or 0) / 1024:.0f} |")
        p()
    if sm:
        p("`pvbench sealmany64 1000000`: `envelope::seal_many` of 64 B, 1000 per call, one core: " + ", ".join(
            f"{x['backend']} {rate(x['per_s'])}/s" for x in sm) + ".")
        p()

    # ---- profile ----------------------------------------------------------------------
    p("## Profile of the 64-byte envelope encrypt")
    p()
    for mode, what in (("seal64", "`envelope::seal` (the crypto path)"),
                       ("vault64", "`Vault::encrypt` (with policy and audit)")):
        run = jsonl(os.path.join(out_dir, f"{mode}.jsonl"))
        rep = os.path.join(out_dir, f"perf-report-{mode}.txt")
        lines = []
        if os.path.exists(rep):
            for line in open(rep):
                mt = re.match(r"\s*([\d.]+)%\s+\[[.k]\]\s+(.*)", line)
                if mt:
                    lines.append((float(mt.group(1)), mt.group(2).strip(), "[k]" in line))
        if run:
            p(f"{what}: `perf record -g target/release/pvbench {mode} {run[0]['n']}` "
              f"({rate(run[0]['per_s'])}/s under perf). Top symbols by self time ([k] = kernel):")
        p()
        if lines:
            cats = {}
            for share, sym, kernel in lines_all(rep):
                cats[categorize(sym, kernel)] = cats.get(categorize(sym, kernel), 0) + share
            p("Where the time goes (self time grouped by what the symbol does): " + "; ".join(
                f"{k} {v:.0f}%" for k, v in sorted(cats.items(), key=lambda kv: -kv[1])) + ".")
            p()
            p("| self % | symbol |")
            p("|---|---|")
            for share, sym, kernel in lines[:18]:
                sym = re.sub(r"\s+-\s+-\s*$", "", sym)
                p(f"| {share:.1f} | {'[k] ' if kernel else ''}`{sym[:100]}` |")
        else:
            p("(perf was not available; no profile)")
        p()

    # ---- python -----------------------------------------------------------------------
    p("## Python: phivault vs what a Python user would pick (issue 7)")
    p()
    pyj = os.path.join(out_dir, "python.json")
    if os.path.exists(pyj):
        with open(pyj) as f:
            py = json.load(f)
        p(f"`benches/compare_python.py`, N = {py['n']:,} per workload, CPython; items/s (best of 2);")
        p("ratio = phivault / peer (> 1: phivault is faster).")
        p()
        p("| workload | peer | peer items/s | phivault call | phivault items/s | ratio |")
        p("|---|---|---|---|---|---|")
        for r in py["rows"]:
            ratio = f"{r['ratio']:.2f}" if r["ratio"] else "n/a"
            p(f"| {r['workload']} | {r['peer']} | {rate(r['peer_per_s'])} | {r['phivault']} | {rate(r['phivault_per_s'])} | {ratio} |")
        p()
        if py.get("phivault"):
            p("phivault's other Python figures (items/s): " + ", ".join(
                f"{k} {rate(v)}" for k, v in py["phivault"].items()) + ".")
            p()
        for name, why in py.get("missing", {}).items():
            p(f"- **{name}**: {why}")
        if not py.get("phivault"):
            p("- **phivault**: the Python package could not be run (build it with scripts/test-python.sh).")
        p()
    else:
        p("Not run (SKIP_PYTHON set, or the peers' virtualenv could not be made).")
        p()

    notes = os.path.join(HERE, "notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            p(f.read().rstrip())


if __name__ == "__main__":
    main()
