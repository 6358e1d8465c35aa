"""The Dask pipeline over a PostgreSQL vault (issue 22): workers open the shared store
themselves, every kind works (vaulted tokens too), and their entries join the one audit chain.

Needs a server: scripts/test-postgres.sh starts a throwaway TLS cluster, exports
PHIVAULT_PG_URL and runs this file. Without it the tests are skipped (and say why)."""

from __future__ import annotations

import os
import re

import pytest

import phivault

URL = os.environ.get("PHIVAULT_PG_URL")
pytestmark = pytest.mark.skipif(
    not URL, reason="needs PostgreSQL: run scripts/test-postgres.sh (it starts one)"
)


@pytest.fixture()
def pg_vault(tmp_path, monkeypatch):
    # The handle refuses a URL with a password (it would be pickled): the password goes to a
    # password file that the workers read, as libpq's PGPASSFILE.
    m = re.match(r"postgres://([^:@/]+):([^@/]+)@([^:/]+):(\d+)/([^?]+)(\?.*)?$", URL or "")
    assert m, "unexpected PHIVAULT_PG_URL form"
    user, pw, host, port, db, query = m.groups()
    # A fresh database per test (the server is shared with the Rust tests).
    import subprocess

    fresh = "pvpy_" + os.urandom(6).hex()
    env = {**os.environ, "PGPASSWORD": pw}
    subprocess.run(
        ["psql", "-q", "-h", host, "-p", port, "-U", user, "-d", db, "-c",
         f"CREATE DATABASE {fresh}"],
        check=True, env=env, capture_output=True,
    )
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{host}:{port}:*:{user}:{pw}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    monkeypatch.setenv("PHIVAULT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    url = f"postgres://{user}@{host}:{port}/{fresh}{query or ''}"
    kf = tmp_path / "root.key"
    kf.write_bytes(os.urandom(32))
    v = phivault.Vault.create(url, key_file=str(kf))
    yield v, url, pw
    v.close()


def test_handle_of_a_password_url_is_refused(pg_vault, tmp_path):
    _, url, pw = pg_vault
    user = url.split("://", 1)[1].split("@", 1)[0]
    with_pw = url.replace(f"://{user}@", f"://{user}:{pw}@")
    with phivault.Vault.open(with_pw, key_file=str(tmp_path / "root.key")) as v:
        with pytest.raises(phivault.InvalidInput, match="password"):
            v.handle()


def test_dask_over_postgres_tokenizes_every_kind_and_logs_to_the_chain(pg_vault):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    import phivault.dask as pvdd

    v, _, pw = pg_vault
    v.define_field("acct", "vaulted")
    n = 2000
    pdf = pd.DataFrame({
        "ssn": [f"9{i % 100:02d}-{i % 89 + 10:02d}-{i:04d}" for i in range(n)],
        "acct": [f"4000{i:012d}" for i in range(n)],
        "k": range(n),
    })
    h = v.handle()
    assert h.job_id is None and pw.encode() not in __import__("pickle").dumps(h)
    before = v.audit_verify()["entries"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster):
        ddf = dd.from_pandas(pdf, npartitions=4)
        out = pvdd.tokenize_columns(ddf, {"ssn": "ssn", "acct": "acct"}, h).compute().sort_values("k")
        assert out["ssn"].tolist() == v.tokenize_many(pdf["ssn"].tolist(), "ssn")
        # Vaulted tokens are consistent across processes: the index lives in the shared store.
        assert out["acct"].tolist() == v.tokenize_many(pdf["acct"].tolist(), "acct")
        back = pvdd.detokenize_columns(
            dd.from_pandas(out, npartitions=4), {"acct": "acct"}, h
        ).compute().sort_values("k")
        assert back["acct"].tolist() == pdf["acct"].tolist()
    report = v.audit_verify()
    assert report["ok"] and report["entries"] > before
