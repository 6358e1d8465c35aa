"""Pseudonymize a synthetic research cohort and join two tables on the pseudonyms.

Generates patients and lab results (all synthetic), replaces the identifiers (MRN, SSN) in both
tables by consistent pseudonyms from one vault, joins the tables on the pseudonymous MRN, and
shows that no identifier is left in what an analyst would receive.

Run:  python python/examples/pseudonymize_cohort.py [--rows N] [--vault DIR]

It uses ``Vault.tokenize_many`` (consistent tokens) when this build has it, and otherwise
deterministic encryption (``encrypt_many(deterministic=True)``), which is just as consistent
within one key version. pandas is used when installed; plain Python otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from typing import Any, Callable

import phivault


def synthetic_cohort(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` synthetic patients and 0-3 lab results each. No real person is in here."""
    rng = random.Random(seed)
    first = ["Ada", "Ben", "Chloe", "Dev", "Eve", "Farid", "Gia", "Hugo", "Ines", "Jon"]
    last = ["Novak", "Okafor", "Silva", "Tanaka", "Umar", "Varga", "Weber", "Xu", "Young"]
    patients, labs = [], []
    for i in range(n):
        mrn = f"MRN-{100000 + i}"
        patients.append(
            {
                "mrn": mrn,
                "ssn": f"9{rng.randrange(10, 99)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}",
                "name": f"{rng.choice(first)} {rng.choice(last)}",
                "age": rng.randrange(18, 90),
                "diabetic": rng.random() < 0.3,
            }
        )
        for _ in range(rng.randrange(0, 4)):
            labs.append({"mrn": mrn, "test": "HbA1c", "value": round(rng.uniform(4.5, 11.0), 1)})
    rng.shuffle(labs)
    return patients, labs


def pseudonymizer(vault: phivault.Vault) -> tuple[str, Callable[[list[str], str], list[str]]]:
    """The best consistent pseudonym function this build offers."""
    if hasattr(vault, "tokenize_many"):
        return "tokenize_many", lambda values, field: vault.tokenize_many(values, field)  # type: ignore[attr-defined]

    def deterministic(values: list[str], field: str) -> list[str]:
        return vault.encrypt_many(values, {"field": field}, deterministic=True, text=True)  # type: ignore[return-value]

    return "deterministic encryption", deterministic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000, help="number of synthetic patients")
    ap.add_argument("--vault", help="vault directory (default: a temporary one)")
    args = ap.parse_args()

    patients, labs = synthetic_cohort(args.rows)
    print(f"cohort: {len(patients)} patients, {len(labs)} lab results (synthetic)")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.vault or os.path.join(tmp, "vault")
        # In production the root key comes from a key file or a secret store, never the code.
        with phivault.Vault.create(path, key=os.urandom(32)) as vault:
            how, pseudo = pseudonymizer(vault)
            t = time.perf_counter()
            p_mrn = pseudo([p["mrn"] for p in patients], "mrn")
            p_ssn = pseudo([p["ssn"] for p in patients], "ssn")
            l_mrn = pseudo([r["mrn"] for r in labs], "mrn")  # the other table, separately
            took = time.perf_counter() - t
            n = len(p_mrn) + len(p_ssn) + len(l_mrn)
            print(f"pseudonymized {n} identifiers with {how} in {took:.2f}s ({n / took:,.0f}/s)")

            # What the analyst receives: no MRN, SSN or name.
            research_patients = [
                {"pid": m, "ssn": s, "age": p["age"], "diabetic": p["diabetic"]}
                for m, s, p in zip(p_mrn, p_ssn, patients)
            ]
            research_labs = [{"pid": m, "test": r["test"], "value": r["value"]} for m, r in zip(l_mrn, labs)]

            joined = join(research_patients, research_labs)
            print(f"joined on pseudonyms: {len(joined)} rows (expected {len(labs)})")
            assert len(joined) == len(labs), "every lab result finds its patient"
            leaked = {p["mrn"] for p in patients} & {str(v) for row in joined for v in row.values()}
            assert not leaked, "no MRN survives in the research tables"
            show(joined[:5])

            # The vault owner (not the analyst) can still re-identify a row when the protocol
            # allows it.
            first = joined[0]["pid"]
            if how == "tokenize_many":
                mrn = vault.detokenize(first, "mrn")  # type: ignore[attr-defined]
            else:
                mrn = vault.decrypt(first, {"field": "mrn"}).decode()
            assert mrn in {p["mrn"] for p in patients}
            print(f"re-identified one row for an authorised follow-up: {mrn[:4]}…")


def join(patients: list[dict[str, Any]], labs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inner join on ``pid``: with pandas when installed, by hand otherwise."""
    try:
        import pandas as pd
    except ImportError:
        by_pid = {p["pid"]: p for p in patients}
        return [{**by_pid[r["pid"]], **r} for r in labs if r["pid"] in by_pid]
    df = pd.DataFrame(patients).merge(pd.DataFrame(labs), on="pid")
    return df.to_dict("records")  # type: ignore[no-any-return]


def show(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        pid = str(r["pid"])
        print(f"  pid={pid[:24]}…  age={r['age']:>2}  diabetic={str(r['diabetic']):5}  {r['test']}={r['value']}")


if __name__ == "__main__":
    main()
