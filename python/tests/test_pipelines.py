"""Research pipelines: Arrow in / Arrow out, per-row errors, Polars frames, picklable handles
and a dask.distributed cluster of worker processes over a directory vault (issue 22).

The PostgreSQL form of the Dask test is in test_pipelines_postgres.py (run by
scripts/test-postgres.sh, which starts the server)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import pytest

import phivault

pa = pytest.importorskip("pyarrow", reason="pyarrow is installed by scripts/test-python.sh")

SSNS = [f"9{i % 100:02d}-{i % 89 + 10:02d}-{i:04d}" for i in range(2000)]


@pytest.fixture()
def keyed(tmp_path):
    key = os.urandom(32)
    kf = tmp_path / "root.key"
    kf.write_bytes(key)
    v = phivault.Vault.create(str(tmp_path / "v"), key_file=str(kf))
    yield v, key, kf
    v.close()


def test_arrow_round_trip_keeps_length_nulls_chunks_and_type(keyed):
    v, _, _ = keyed
    want = v.tokenize_many(SSNS[:3], "ssn")
    arr = pa.array([SSNS[0], None, SSNS[1], None, SSNS[2]])
    out = v.tokenize_many(arr, "ssn")
    assert isinstance(out, pa.Array)
    assert out.type == pa.string() and len(out) == 5 and out.null_count == 2
    assert out.to_pylist() == [want[0], None, want[1], None, want[2]]
    assert v.detokenize_many(out, "ssn").to_pylist() == arr.to_pylist()
    # Chunked in, chunked out, cut the same way; large strings stay large.
    ch = pa.chunked_array([SSNS[:700], [None] * 3, SSNS[700:1000]], type=pa.large_string())
    t = v.tokenize_many(ch, "ssn")
    assert isinstance(t, pa.ChunkedArray)
    assert [len(c) for c in t.chunks] == [700, 3, 300]
    assert t.type == pa.large_string() and t.null_count == 3
    assert t.to_pylist()[:3] == v.tokenize_many(SSNS[:3], "ssn")
    assert v.detokenize_many(t, "ssn").to_pylist() == ch.to_pylist()
    # String views (polars' own layout) are read too.
    sv = pa.array(SSNS[:4], type=pa.string_view())
    assert v.tokenize_many(sv, "ssn").to_pylist() == v.tokenize_many(SSNS[:4], "ssn")
    # Pseudonyms and envelopes through Arrow.
    assert v.pseudonym_many(pa.array(["a", None])).to_pylist() == [v.pseudonym("a"), None]
    env = v.encrypt_many(pa.array([b"x", None, b"yz"]), {"c": "1"})
    assert env.type == pa.binary() and env.null_count == 1
    assert v.decrypt_many(env, {"c": "1"}).to_pylist() == [b"x", None, b"yz"]
    text = v.encrypt_many(pa.array(["x"]), {"c": "1"}, text=True)
    assert text.type == pa.string() and text[0].as_py().startswith("pv1:")
    # An empty array and an all-null one.
    assert len(v.tokenize_many(pa.array([], type=pa.string()), "ssn")) == 0
    assert v.tokenize_many(pa.array([None, None], type=pa.string()), "ssn").null_count == 2
    # Lists stay lists.
    assert isinstance(v.tokenize_many(SSNS[:2], "ssn"), list)


def test_non_string_arrow_input_is_a_type_error(keyed):
    v, _, _ = keyed
    with pytest.raises(TypeError, match="Arrow string array"):
        v.tokenize_many(pa.array([1, 2, 3]), "ssn")


def test_errors_raise_names_the_row_never_the_value(keyed):
    v, _, _ = keyed
    secret = "12-CANARY-3"
    with pytest.raises(phivault.InvalidInput) as e:
        v.tokenize_many(pa.array([SSNS[0], None, secret]), "ssn")
    assert e.value.row == 2
    assert "row 2" in str(e.value) and "CANARY" not in str(e.value)
    with pytest.raises(phivault.InvalidToken) as e:
        v.detokenize_many(["123-45-6789", "not a token CANARY"], "ssn")
    assert e.value.row == 1 and "CANARY" not in str(e.value)


def test_errors_null_reports_rows_and_reasons(keyed):
    v, _, _ = keyed
    rep = phivault.BatchReport()
    out = v.tokenize_many(
        pa.chunked_array([[SSNS[0], "CANARY"], [None, "", SSNS[1]]]), "ssn", errors="null", report=rep
    )
    assert out.to_pylist() == [*v.tokenize_many([SSNS[0]], "ssn"), None, None, None,
                               *v.tokenize_many([SSNS[1]], "ssn")]
    assert (rep.rows, rep.failed, rep.indexes) == (5, 2, [1, 3])
    assert len(rep.reasons) == 2 and not any("CANARY" in r for r in rep.reasons)
    rep2 = phivault.BatchReport()
    back = v.detokenize_many(["x", out[0].as_py()], "ssn", errors="null", report=rep2)
    assert back == [None, SSNS[0]] and rep2.indexes == [0]
    with pytest.raises(phivault.InvalidInput):
        v.tokenize_many(SSNS[:1], "ssn", errors="ignore")


def test_polars_frames_round_trip():
    pl = pytest.importorskip("polars", reason="polars is installed by scripts/test-python.sh")
    import phivault.polars as pvpl

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        v = phivault.Vault.create(os.path.join(d, "v"), key=os.urandom(32))
        df = pl.DataFrame({"ssn": [SSNS[0], None, SSNS[1]], "mrn": ["MRN0001", "MRN0002", None],
                           "n": [1, 2, 3]})
        v.define_field("mrn", "ff1", alphabet="alphanumeric")
        out = pvpl.tokenize_frame(df, {"ssn": "ssn", "mrn": "mrn"}, v)
        assert out.columns == df.columns and out["n"].to_list() == [1, 2, 3]
        assert out["ssn"].to_list() == [*v.tokenize_many([SSNS[0]], "ssn"), None,
                                         *v.tokenize_many([SSNS[1]], "ssn")]
        assert out["mrn"].null_count() == 1 and out["mrn"][0] != "MRN0001"
        back = pvpl.detokenize_frame(out, {"ssn": "ssn", "mrn": "mrn"}, v)
        assert back.equals(df)
        lazy = df.lazy().with_columns(
            pl.col("ssn").map_batches(pvpl.tokenizer(v, "ssn"), return_dtype=pl.String)
        ).collect()
        assert lazy["ssn"].to_list() == out["ssn"].to_list()
        with pytest.raises(KeyError):
            pvpl.tokenize_frame(df, {"nope": "ssn"}, v)
        v.close()


def _run_worker(code: str, env: dict[str, str] | None = None):
    # Run outside the source tree, so the worker imports the installed package.
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env=env, cwd="/",
    )


def test_a_pickled_handle_carries_no_key_and_opens_in_another_process(keyed, tmp_path):
    v, key, kf = keyed
    want = v.tokenize_many(SSNS[:5], "ssn")
    h = v.handle()
    blob = pickle.dumps(h)
    for needle in (key, key.hex().encode(), key.hex().upper().encode()):
        assert needle not in blob
    assert h.root == {"key_file": str(kf)} and h.job_id
    (tmp_path / "h.pkl").write_bytes(blob)
    r = _run_worker(f"""
        import pickle, phivault
        h = pickle.load(open({str(tmp_path / 'h.pkl')!r}, 'rb'))
        w = h.open()
        assert h.open() is w  # once per process
        print(",".join(w.tokenize_many({SSNS[:5]!r}, 'ssn')))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().split(",") == want
    rep = v.end_job(h.job_id)
    assert rep["entries"] >= 1 and rep["torn"] == 0
    assert v.audit_verify()["ok"]


def test_a_worker_without_the_root_key_fails_clearly(keyed, tmp_path):
    v, key, _ = keyed
    h = v.handle(key_env="PV_TEST_ROOT_KEY", principal="etl", purpose="research")
    blob = pickle.dumps(h)
    assert key not in blob and key.hex().encode() not in blob
    (tmp_path / "h.pkl").write_bytes(blob)
    code = f"""
        import pickle, phivault
        h = pickle.load(open({str(tmp_path / 'h.pkl')!r}, 'rb'))
        try:
            h.open()
        except phivault.VaultError as e:
            print(type(e).__name__ + ": " + str(e))
    """
    env = {k: val for k, val in os.environ.items() if k != "PV_TEST_ROOT_KEY"}
    r = _run_worker(code, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("KeyUnavailable") and "PV_TEST_ROOT_KEY" in r.stdout
    r = _run_worker(code, env={**env, "PV_TEST_ROOT_KEY": os.urandom(32).hex()})
    assert r.stdout.startswith("WrongRootKey"), r.stdout + r.stderr[-500:]
    # With the key, the worker acts as the sealed caller: the empty policy denies it.
    r = _run_worker(code.replace("h.open()", "h.open().tokenize_many(['900-12-3456'], 'ssn')"),
                    env={**env, "PV_TEST_ROOT_KEY": key.hex()})
    assert r.stdout.startswith("AccessDenied"), r.stdout + r.stderr[-500:]
    rep = v.end_job(h.job_id)
    assert rep["entries"] >= 1
    denied = [e for e in v.audit_entries(principal="etl") if e["outcome"] == "denied"]
    assert denied, "the worker's denial reached the vault's audit log"
    # After the end of the job, its handle opens nothing.
    r = _run_worker(code, env={**env, "PV_TEST_ROOT_KEY": key.hex()})
    assert r.stdout.startswith("InvalidInput") and "ended" in r.stdout


def test_a_vault_opened_with_key_bytes_needs_to_say_where_workers_find_it(tmp_path):
    with phivault.Vault.create(str(tmp_path / "v"), key=os.urandom(32)) as v:
        with pytest.raises(phivault.InvalidInput, match="key_file=, key_env= or passphrase_env="):
            v.handle()
        with pytest.raises(phivault.InvalidInput):
            v.handle(key_file="a", key_env="B")


def test_vaulted_tokens_in_a_worker_are_refused_clearly(keyed, tmp_path):
    v, _, _ = keyed
    v.define_field("acct", "vaulted")
    h = v.handle()
    (tmp_path / "h.pkl").write_bytes(pickle.dumps(h))
    r = _run_worker(f"""
        import pickle, phivault
        w = pickle.load(open({str(tmp_path / 'h.pkl')!r}, 'rb')).open()
        try:
            w.tokenize_many(['4000123412341234'], 'acct')
        except phivault.StorageError as e:
            print('refused:', e)
    """)
    assert "refused:" in r.stdout and "PostgreSQL" in r.stdout, r.stdout + r.stderr[-500:]
    v.end_job(h.job_id)


def test_dask_cluster_of_two_processes_gives_the_single_process_tokens(keyed, tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe", reason="dask is installed by scripts/test-python.sh")
    distributed = pytest.importorskip("distributed")
    import phivault.dask as pvdd

    v, _, _ = keyed
    monkeypatch.chdir(tmp_path)  # worker processes import the installed package
    n = 4000
    pdf = pd.DataFrame({
        "ssn": [SSNS[i % len(SSNS)] if i % 97 else None for i in range(n)],
        "name": [f"Patient {i}" for i in range(n)],
        "k": range(n),
    })
    want_ssn = v.tokenize_many([None if x is None else x for x in pdf["ssn"].astype(object).where(pdf["ssn"].notna(), None)], "ssn")
    want_psn = v.tokenize_many(pdf["name"].tolist(), "pseudonym")
    h = v.handle(principal=None, threads=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        ddf = dd.from_pandas(pdf, npartitions=8)
        out = pvdd.tokenize_columns(ddf, {"ssn": "ssn", "name": "pseudonym"}, h)
        got = out.compute().sort_values("k")
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        assert [None if pd.isna(x) else x for x in got["ssn"]] == want_ssn
        assert got["name"].tolist() == want_psn
        back = pvdd.detokenize_columns(out[["ssn", "k"]], {"ssn": "ssn"}, h).compute().sort_values("k")
        assert [None if pd.isna(x) else x for x in back["ssn"]] == [
            None if pd.isna(x) else x for x in pdf["ssn"]]
    rep = v.end_job(h.job_id)
    # One audit entry per partition batch (3 columns × 8 partitions), from 2 worker processes.
    assert rep["spools"] == 2 and rep["entries"] >= 1 and rep["torn"] == 0
    calls = sum(e["calls"] for e in v.audit_entries() if e["action"] in ("tokenize", "detokenize"))
    assert calls >= 24
    assert v.audit_verify()["ok"]


def test_dates_shift_per_row_subject_through_arrow(keyed):
    v, _, _ = keyed
    dates = pa.array(["1970-01-01", None, "1980-05-05", "1970-01-01"])
    subjects = pa.array(["p1", "p1", "p2", None])
    rep = phivault.BatchReport()
    out = v.shift_date(dates, pa.array(["p1", "p1", "p2", "p2"]))
    assert isinstance(out, pa.Array) and out.null_count == 1
    with pytest.raises(phivault.SubjectRequired) as e:
        v.tokenize_many(dates, "dob", subjects=subjects)
    assert e.value.row == 3
    out = v.tokenize_many(dates, "dob", subjects=subjects, errors="null", report=rep)
    assert out.to_pylist() == [v.shift_date("1970-01-01", "p1"), None,
                               v.shift_date("1980-05-05", "p2"), None]
    assert rep.indexes == [3]
    back = v.unshift_date(out, pa.array(["p1", "p1", "p2", "p1"]))
    assert back.to_pylist() == ["1970-01-01", None, "1980-05-05", None]
    # One subject for every row.
    assert v.tokenize_many(["1970-01-01"], "dob", subjects="p1") == [v.shift_date("1970-01-01", "p1")]
    with pytest.raises(phivault.InvalidInput):
        v.tokenize_many(["1970-01-01"], "dob", subjects=["p1", "p2"])
