#!/usr/bin/env python3
"""Issue 22's goal: FF1 SSNs and pseudonyms through Arrow from Python against the Rust batch
rate of the same call on the same data, measured in one run.

Rounds alternate: the Rust reference (target/release/arrowref, `Session::tokenize_many`) and
the Python calls (pyarrow array in, pyarrow array out; and the list form of before), each the
best of ROUNDS runs; the ratio is Python / Rust of the same round, and the median of the
rounds is reported.

    cargo build --release -p phivault-benches --bin arrowref
    .venv/bin/python benches/compare_arrow.py [--n 200000] [--rounds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def ssns(n: int) -> list[str]:
    return ["%03d-%02d-%04d" % (100 + i % 800, 10 + i % 89, i % 10000) for i in range(n)]


def best(rounds: int, n: int, f) -> float:
    top = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        top = max(top, n / (time.perf_counter() - t))
    return top


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    import pyarrow as pa

    import phivault

    exe = os.path.join(ROOT, "target", "release", "arrowref")
    values = ssns(a.n)
    ids = ["patient-%d" % i for i in range(a.n)]
    arr_s, arr_i = pa.array(values), pa.array(ids)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        v = phivault.Vault.create(os.path.join(d, "v"), key=os.urandom(32))
        assert v.tokenize_many(arr_s[:3], "ssn").to_pylist() == v.tokenize_many(values[:3], "ssn")
        for _ in range(a.repeat):
            rust = json.loads(
                subprocess.run([exe, str(a.n), str(a.rounds)], check=True, capture_output=True,
                               text=True).stdout
            )
            py = {
                "ff1_arrow": best(a.rounds, a.n, lambda: v.tokenize_many(arr_s, "ssn")),
                "ff1_list": best(a.rounds, a.n, lambda: v.tokenize_many(values, "ssn")),
                "pseudonym_arrow": best(a.rounds, a.n, lambda: v.tokenize_many(arr_i, "pseudonym")),
                "pseudonym_list": best(a.rounds, a.n, lambda: v.tokenize_many(ids, "pseudonym")),
            }
            rows.append((rust, py))
        v.close()
    print(f"N = {a.n}, best of {a.rounds} runs per round, {a.repeat} rounds (values/s; ratio to Rust "
          "of the same round, median of rounds)\n")
    print("| call | Rust `tokenize_many` | Python, Arrow in/out | ratio | Python, list | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, label in (("ff1", "FF1 SSN (`ssn`)"), ("pseudonym", "pseudonym")):
        r = statistics.median(x[0][kind] for x in rows)
        ar = statistics.median(x[1][f"{kind}_arrow"] for x in rows)
        li = statistics.median(x[1][f"{kind}_list"] for x in rows)
        ratio_a = statistics.median(x[1][f"{kind}_arrow"] / x[0][kind] for x in rows)
        ratio_l = statistics.median(x[1][f"{kind}_list"] / x[0][kind] for x in rows)
        print(f"| {label} | {r:,.0f} | {ar:,.0f} | {ratio_a:.2f} | {li:,.0f} | {ratio_l:.2f} |")


if __name__ == "__main__":
    main()
