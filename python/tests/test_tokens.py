"""Tokenization: consistency, reversibility, batches, pseudonyms, date shift, bad tokens."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import phivault

FIXTURE = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
SSNS = ["%03d-%02d-%04d" % (100 + i % 800, 10 + i % 90, i % 10000) for i in range(2000)]
ssn = st.builds(lambda a, b, c: f"{a:03d}-{b:02d}-{c:04d}", st.integers(0, 999), st.integers(0, 99), st.integers(0, 9999))
mrn = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=4, max_size=12)


@FIXTURE
@given(value=ssn)
def test_ssn_is_format_preserving_and_reversible(vault: phivault.Vault, value: str) -> None:
    tok = vault.tokenize(value, "ssn")
    assert len(tok) == len(value) and tok[3] == "-" and tok[6] == "-"
    assert tok == vault.tokenize(value, "ssn")
    assert vault.detokenize(tok, "ssn") == value
    assert vault.detokenize(tok, "ssn", view="masked") == "***-**-" + value[-4:]
    assert vault.detokenize(tok, "ssn", view="redacted") != value


@FIXTURE
@given(value=mrn)
def test_vaulted_tokens_round_trip(vault: phivault.Vault, value: str) -> None:
    tok = vault.tokenize(value, "mrn")
    assert tok == vault.tokenize(value, "mrn")
    assert vault.detokenize(tok, "mrn") == value


def test_batches_match_single_calls_and_keep_none(vault: phivault.Vault) -> None:
    toks = vault.tokenize_many(SSNS, "ssn")
    assert toks != SSNS and len(toks) == len(SSNS)
    assert toks[:5] == [vault.tokenize(s, "ssn") for s in SSNS[:5]]
    assert vault.tokenize_many(tuple(SSNS), "ssn") == toks
    assert vault.detokenize_many(toks, "ssn") == SSNS
    assert vault.tokenize_many(["123-45-6789", None], "ssn")[1] is None
    np = pytest.importorskip("numpy")
    assert vault.tokenize_many(np.array(SSNS[:10], dtype=object), "ssn") == toks[:10]
    pa = pytest.importorskip("pyarrow")
    assert vault.tokenize_many(pa.array(SSNS[:10]), "ssn").to_pylist() == toks[:10]


def test_pseudonyms_are_one_way(vault: phivault.Vault) -> None:
    p = vault.pseudonym("MRN0012345")
    assert p.startswith("psn_") and p == vault.tokenize("MRN0012345", "pseudonym")
    assert vault.verify_pseudonym("MRN0012345", p)
    assert not vault.verify_pseudonym("MRN0012346", p)
    with pytest.raises(phivault.InvalidInput):
        vault.detokenize(p, "pseudonym")


def test_date_shift_per_subject(vault: phivault.Vault) -> None:
    d = datetime.date(1980, 5, 17)
    shifted = vault.shift_date(d, subject="patient-1")
    assert isinstance(shifted, datetime.date) and shifted != d
    assert abs((shifted - d).days) <= 365
    assert vault.shift_date("1980-05-17", subject="patient-1") == shifted.isoformat()
    assert vault.unshift_date(shifted, subject="patient-1") == d
    with pytest.raises(phivault.SubjectRequired):
        vault.tokenize("1980-05-17", "dob")


def test_bad_tokens_and_fields(vault: phivault.Vault) -> None:
    with pytest.raises(phivault.InvalidToken) as e:
        vault.detokenize("ZZZZZZZZZZ", "mrn")
    assert isinstance(e.value, phivault.AuthenticationError)
    assert "ZZZZ" not in str(e.value)
    with pytest.raises(phivault.UnknownField):
        vault.tokenize("x", "no_such_field")
    with pytest.raises(phivault.InvalidInput):
        vault.tokenize("", "mrn")
    with pytest.raises(TypeError):
        vault.tokenize(123, "ssn")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vault.tokenize_many("123-45-6789", "ssn")
    with pytest.raises(TypeError):
        vault.tokenize_many([b"123-45-6789"], "ssn")
    with pytest.raises(phivault.InvalidInput):
        vault.detokenize("123-45-6789", "ssn", view="sideways")


def test_define_field(vault: phivault.Vault) -> None:
    vault.define_field("account_no", "ff1", alphabet="digits", mask_keep_last=2)
    tok = vault.tokenize("00123456", "account_no")
    assert tok.isdigit() and len(tok) == 8
    assert vault.detokenize(tok, "account_no", view="masked") == "******56"
    names = {f["name"]: f for f in vault.fields()}
    assert names["account_no"]["kind"] == "ff1" and "ssn" in names
    assert vault.define_fields_toml('[[field]]\nname = "zip3"\nkind = "vaulted"\n') == 1
    with pytest.raises(phivault.InvalidInput):
        vault.define_field("bad", "nonsense")


def test_closed_vault_tokenize(vault: phivault.Vault) -> None:
    vault.close()
    with pytest.raises(phivault.VaultClosed):
        vault.tokenize_many(["1"], "ssn")
