"""phivault.pandas: column helpers over the batch API."""

from __future__ import annotations

import pytest

import phivault

pd = pytest.importorskip("pandas")
import phivault.pandas as pvpd  # noqa: E402


def frames() -> tuple["pd.DataFrame", "pd.DataFrame"]:
    patients = pd.DataFrame({"ssn": ["111-22-3333", "222-33-4444", None], "age": [40, 51, 62]})
    labs = pd.DataFrame({"ssn": ["222-33-4444", "111-22-3333", "111-22-3333"], "hba1c": [9.2, 6.1, 6.4]})
    return patients, labs


def test_deterministic_columns_still_join(vault: phivault.Vault) -> None:
    patients, labs = frames()
    p = pvpd.encrypt_columns(patients, ["ssn"], vault, deterministic=True)
    l = pvpd.encrypt_columns(labs, "ssn", vault, deterministic=True)
    assert patients["ssn"][0] == "111-22-3333"  # a copy by default
    assert p["ssn"][2] is None
    assert all(v.startswith("pv1:") for v in l["ssn"])
    joined = p.merge(l, on="ssn")
    assert sorted(joined["age"]) == [40, 40, 51]
    back = pvpd.decrypt_columns(joined, ["ssn"], vault)
    assert set(back["ssn"]) == {"111-22-3333", "222-33-4444"}


def test_inplace_progress_and_context(vault: phivault.Vault) -> None:
    patients, _ = frames()
    seen: list[tuple[str, int, int]] = []
    out = pvpd.encrypt_columns(
        patients, ["ssn"], vault, inplace=True, chunk_size=2, progress=lambda *a: seen.append(a)
    )
    assert out is patients and patients["ssn"][0].startswith("pv1:")
    assert seen == [("ssn", 2, 3), ("ssn", 3, 3)]
    with pytest.raises(phivault.AuthenticationError):
        pvpd.decrypt_columns(patients, ["ssn"], vault, context={"column": "other"})
    raw = pvpd.decrypt_columns(patients, ["ssn"], vault, encoding=None)
    assert raw["ssn"][0] == b"111-22-3333"


def test_bad_columns(vault: phivault.Vault) -> None:
    patients, _ = frames()
    with pytest.raises(KeyError):
        pvpd.encrypt_columns(patients, ["nope"], vault)
    with pytest.raises(ValueError):
        pvpd.encrypt_columns(patients, ["ssn"], vault, chunk_size=0)


def test_tokenize_columns_needs_tokenization(vault: phivault.Vault) -> None:
    patients, labs = frames()
    if not hasattr(vault, "tokenize_many"):
        with pytest.raises(NotImplementedError):
            pvpd.tokenize_columns(patients, ["ssn"], vault)
        return
    p = pvpd.tokenize_columns(patients, {"ssn": "ssn"}, vault)
    l = pvpd.tokenize_columns(labs, ["ssn"], vault)
    assert sorted(p.merge(l, on="ssn")["age"]) == [40, 40, 51]
    back = pvpd.detokenize_columns(p, ["ssn"], vault)["ssn"].tolist()
    assert back == ["111-22-3333", "222-33-4444", None]


def test_pseudonymize_columns(vault: phivault.Vault) -> None:
    if not hasattr(vault, "tokenize_many"):
        pytest.skip("tokenization not bound in this build")
    patients, labs = frames()
    p = pvpd.pseudonymize_columns(patients, "ssn", vault)
    l = pvpd.pseudonymize_columns(labs, ["ssn"], vault)
    assert p["ssn"][0].startswith("psn_") and p["ssn"][2] is None
    assert sorted(p.merge(l, on="ssn")["age"]) == [40, 40, 51]
