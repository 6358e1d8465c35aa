#!/usr/bin/env python3
"""Issue 22's pipeline benchmark: a synthetic Parquet file (SSN, MRN, name, date of birth,
patient id) tokenized end to end with Dask — read Parquet, tokenize four columns through a
phivault handle, write Parquet — on a LocalCluster of 1 and of 2 worker processes, in one run;
with the peak RSS of each worker (flat in the number of rows?) and, side by side, what a user
does today: `pandas.Series.apply` with the `ff3` package (FF3-1) and stdlib `hmac`.

Columns and kinds: ssn → FF1 (`ssn` preset), mrn → FF1 over alphanumerics (a defined field),
name → pseudonym (HMAC), dob → date shift per patient (the patient ids' subject keys are made
by the owner before the job; workers open a directory vault's job snapshot).

    .venv/bin/python benches/pipelines_dask.py --rows 10000000 [--apply-rows 200000]

Needs the wheel (scripts/test-python.sh), dask, distributed, pyarrow, and `ff3` for the
apply baseline (benches/.venv has it; without it that row is skipped and says so).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

PATIENTS = 20_000
ROW_GROUP = 250_000


def make_file(path: str, rows: int) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    with pq.ParquetWriter(path, pa.schema([("ssn", pa.string()), ("mrn", pa.string()),
                                           ("name", pa.string()), ("dob", pa.string()),
                                           ("pid", pa.string())])) as w:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            a = rng.integers(100, 900, n)
            b = rng.integers(10, 99, n)
            c = rng.integers(0, 10_000, n)
            ssn = np.char.add(np.char.add(np.char.add(np.char.add(
                a.astype(str), "-"), np.char.zfill(b.astype(str), 2)), "-"),
                np.char.zfill(c.astype(str), 4))
            mrn = np.char.add("MRN", np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8))
            name = np.char.add("Patient ", rng.integers(0, 10**7, n).astype(str))
            y = rng.integers(1930, 2020, n)
            m = rng.integers(1, 13, n)
            d = rng.integers(1, 29, n)
            dob = np.char.add(np.char.add(np.char.add(np.char.add(
                y.astype(str), "-"), np.char.zfill(m.astype(str), 2)), "-"),
                np.char.zfill(d.astype(str), 2))
            pid = np.char.add("P", rng.integers(0, PATIENTS, n).astype(str))
            w.write_table(pa.table({"ssn": ssn.tolist(), "mrn": mrn.tolist(),
                                    "name": name.tolist(), "dob": dob.tolist(),
                                    "pid": pid.tolist()}))


def tokenize_partition(pdf, handle):
    import pandas as pd

    w = handle.open()
    out = pd.DataFrame(index=pdf.index)
    pid = pa.array(pdf["pid"], from_pandas=True)
    mapper = {pa.string(): pd.StringDtype("pyarrow")}.get
    for col, field, subjects in (("ssn", "ssn", None), ("mrn", "mrn", None),
                                 ("name", "pseudonym", None), ("dob", "dob", pid)):
        res = w.tokenize_many(pa.array(pdf[col], from_pandas=True), field, subjects=subjects)
        s = res.to_pandas(types_mapper=mapper)
        s.index = pdf.index
        out[col] = s
    out["pid"] = pdf["pid"]
    return out


def vaulted_partition(pdf, handle, tag):
    import pandas as pd
    import pyarrow.compute as pc

    w = handle.open()
    # A tag per run: every value is new to the vault (fresh tokens each run, as at first load).
    mrn = pa.array(pdf["mrn"], from_pandas=True).cast(pa.string())
    vals = pc.binary_join_element_wise(tag, mrn, "-")
    res = w.tokenize_many(vals, "acct")
    out = res.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    out.index = pdf.index
    return pd.DataFrame({"acct": out})


def run_pg(src: str, url: str, key_file: str, rows: int) -> dict:
    """The vaulted column through PostgreSQL: new vaulted tokens for `rows` MRNs, 1 then 2
    worker processes, each opening the shared store."""
    import dask.dataframe as dd
    import pandas as pd
    import phivault
    from distributed import Client, LocalCluster

    v = phivault.Vault.create(url, key_file=key_file)
    v.define_field("acct", "vaulted", alphabet="alphanumeric")
    h = v.handle()
    out = {"rows": rows}
    meta = pd.DataFrame({"acct": pd.Series([], dtype=pd.StringDtype("pyarrow"))})
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as c:
            c.run(lambda: h.open() is not None)
            t = time.perf_counter()
            parts = -(-rows // ROW_GROUP)
            ddf = dd.read_parquet(src, split_row_groups=True, columns=["mrn"]).partitions[:parts]
            n = len(ddf.map_partitions(vaulted_partition, h, f"run{workers}", meta=meta))
            el = time.perf_counter() - t
        out[f"workers_{workers}"] = {"seconds": el, "rows_per_s": n / el}
        print(f"PostgreSQL vaulted, {workers} worker(s): {el:.1f} s, {n / el:,.0f} new tokens/s",
              flush=True)
    out["speedup_2_vs_1"] = out["workers_1"]["seconds"] / out["workers_2"]["seconds"]
    out["audit_ok"] = v.audit_verify()["ok"]
    v.close()
    return out


def worker_rss_kib() -> int:
    """The worker process's peak RSS (VmHWM). Not `getrusage().ru_maxrss`: on Linux that keeps
    the peak of the process from before its exec, i.e. the client's RSS at spawn time."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_dask(src: str, dst: str, handle, workers: int) -> tuple[float, list[int]]:
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as c:
        c.run(lambda: handle.open() is not None)  # open the job once per worker, untimed
        t = time.perf_counter()
        ddf = dd.read_parquet(src, split_row_groups=True)
        meta = pd.DataFrame({k: pd.Series([], dtype=pd.StringDtype("pyarrow"))
                             for k in ("ssn", "mrn", "name", "dob", "pid")})
        ddf.map_partitions(tokenize_partition, handle, meta=meta).to_parquet(
            dst, write_index=False)
        el = time.perf_counter() - t
        rss = sorted(c.run(worker_rss_kib).values())
    return el, rss


def apply_baseline(src: str, rows: int) -> dict[str, float]:
    import pandas as pd

    pdf = pq.read_table(src).slice(0, rows).to_pandas()
    key = os.urandom(32)
    out = {}
    t = time.perf_counter()
    pdf["name"].apply(lambda s: hmac.new(key, s.encode(), hashlib.sha256).hexdigest())
    out["hmac_apply"] = rows / (time.perf_counter() - t)
    try:
        from ff3 import FF3Cipher
    except ImportError:
        out["ff3_apply"] = None
        return out
    c = FF3Cipher(os.urandom(32).hex(), os.urandom(7).hex())
    t = time.perf_counter()
    pdf["ssn"].apply(lambda s: c.encrypt(s.replace("-", "")))
    out["ff3_apply"] = rows / (time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--apply-rows", type=int, default=200_000)
    ap.add_argument("--json")
    ap.add_argument("--keep", help="directory for the Parquet files (default: temporary)")
    ap.add_argument("--postgres", metavar="URL",
                    help="also the vaulted column through this PostgreSQL vault URL (no password "
                         "in it: PGPASSFILE); a fresh database")
    ap.add_argument("--pg-rows", type=int, default=1_000_000)
    ap.add_argument("--pg-only", action="store_true", help="only the PostgreSQL part")
    a = ap.parse_args()
    import phivault

    d = a.keep or tempfile.mkdtemp(prefix="pvpipe.")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, f"in-{a.rows}.parquet")
    if not os.path.exists(src):
        t = time.perf_counter()
        make_file(src, a.rows)
        print(f"made {src} ({os.path.getsize(src) / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s",
              flush=True)
    kf = os.path.join(d, "root.key")
    with open(kf, "wb") as f:
        f.write(os.urandom(32))
    vdir = os.path.join(d, "vault")
    shutil.rmtree(vdir, ignore_errors=True)
    v = phivault.Vault.create(vdir, key_file=kf)
    v.define_field("mrn", "ff1", alphabet="alphanumeric")
    pids = [f"P{i}" for i in range(PATIENTS)]
    v.tokenize_many(["2000-01-01"] * PATIENTS, "dob", subjects=pids)  # subject keys, by the owner
    res = {"rows": a.rows}
    if a.pg_only:
        v.close()
        print(json.dumps(run_pg(src, a.postgres, kf, a.pg_rows), indent=1))
        return
    h = v.handle()
    for workers in (1, 2):
        dst = os.path.join(d, f"out-{workers}")
        shutil.rmtree(dst, ignore_errors=True)
        el, rss = run_dask(src, dst, h, workers)
        res[f"workers_{workers}"] = {"seconds": el, "rows_per_s": a.rows / el, "rss_kib": rss}
        print(f"{workers} worker(s): {el:.1f} s, {a.rows / el:,.0f} rows/s, worker peak RSS "
              f"{[r // 1024 for r in rss]} MiB", flush=True)
        shutil.rmtree(dst, ignore_errors=True)
    res["speedup_2_vs_1"] = res["workers_1"]["seconds"] / res["workers_2"]["seconds"]
    rep = v.end_job(h.job_id)
    res["audit"] = rep
    res["apply"] = apply_baseline(src, a.apply_rows)
    if a.postgres:
        res["postgres_vaulted"] = run_pg(src, a.postgres, kf, a.pg_rows)
    v.close()
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
