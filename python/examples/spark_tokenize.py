"""Tokenize a Spark DataFrame's identifier columns with ``mapInArrow`` and a phivault handle.

Runnable: ``python examples/spark_tokenize.py`` (needs pyspark and a JRE; scripts/test-spark.sh
installs both and runs it). Spark runs Python workers in separate processes: each opens the
vault once through the pickled handle (which carries the vault's location and the key file's
path, never the key) and tokenizes Arrow record batches in place. The owner process ends the
job afterwards, which merges the workers' audit entries into the vault's chain.
"""

from __future__ import annotations

import os
import sys
import tempfile

import pyarrow as pa
from pyspark.sql import SparkSession

import phivault

COLUMNS = {"ssn": "ssn", "name": "pseudonym"}


def tokenize_batches(handle):
    """The function Spark runs on each partition: Arrow record batches in, out."""

    def run(batches):
        worker = handle.open()  # once per Python worker process
        for b in batches:
            cols = []
            for name in b.schema.names:
                col = b.column(name)
                field = COLUMNS.get(name)
                cols.append(worker.tokenize_many(col, field) if field else col)
            yield pa.RecordBatch.from_arrays(cols, names=b.schema.names)

    return run


def main() -> None:
    # Spark's Python workers run this interpreter (with phivault installed), not `python3`.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory() as d:
        key_file = os.path.join(d, "root.key")
        with open(key_file, "wb") as f:
            f.write(os.urandom(32))
        vault = phivault.Vault.create(os.path.join(d, "vault"), key_file=key_file)
        rows = [(f"9{i % 100:02d}-{i % 89 + 10:02d}-{i:04d}", f"Patient {i}", i) for i in range(5000)]
        spark = (SparkSession.builder.master("local[2]").appName("phivault")
                 .config("spark.ui.enabled", "false").getOrCreate())
        df = spark.createDataFrame(rows, "ssn string, name string, k long")
        handle = vault.handle(principal=None)
        out = df.mapInArrow(tokenize_batches(handle), df.schema).orderBy("k").collect()
        spark.stop()
        want_ssn = vault.tokenize_many([r[0] for r in rows], "ssn")
        want_psn = vault.tokenize_many([r[1] for r in rows], "pseudonym")
        assert [r["ssn"] for r in out] == want_ssn, "Spark workers gave other tokens"
        assert [r["name"] for r in out] == want_psn
        report = vault.end_job(handle.job_id)
        assert report["entries"] >= 1 and vault.audit_verify()["ok"]
        print(f"spark: {len(out)} rows tokenized on Spark workers, identical to the "
              f"single-process tokens; {report['entries']} worker audit entries merged")
        vault.close()


if __name__ == "__main__":
    main()
