"""Envelopes: round-trips (hypothesis), context binding, tampering, wrong keys, bad types."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import phivault

FIXTURE = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

texts = st.text(min_size=1, max_size=20)
contexts = st.dictionaries(texts, st.text(max_size=40), max_size=5)
payloads = st.one_of(st.binary(max_size=300), st.binary(min_size=2048, max_size=5000))


@FIXTURE
@given(data=payloads, ctx=contexts)
def test_binary_round_trip(vault: phivault.Vault, data: bytes, ctx: dict[str, str]) -> None:
    ct = vault.encrypt(data, ctx)
    assert isinstance(ct, bytes)
    assert data not in ct or len(data) < 4
    assert vault.decrypt(ct, ctx) == data


@FIXTURE
@given(data=st.text(max_size=200), ctx=contexts)
def test_text_round_trip(vault: phivault.Vault, data: str, ctx: dict[str, str]) -> None:
    ct = vault.encrypt_text(data, context=ctx)
    assert ct.startswith("pv1:default:1:")
    assert vault.decrypt(ct, context=ctx) == data.encode()
    # the text form is also accepted as bytes
    assert vault.decrypt(ct.encode(), context=ctx) == data.encode()


@FIXTURE
@given(data=st.binary(max_size=100))
def test_deterministic_is_equal_and_randomized_is_not(vault: phivault.Vault, data: bytes) -> None:
    ctx = {"field": "ssn"}
    assert vault.encrypt(data, ctx, deterministic=True) == vault.encrypt(
        data, ctx, deterministic=True
    )
    assert vault.encrypt(data, ctx) != vault.encrypt(data, ctx)


def test_bytes_like_inputs_agree(vault: phivault.Vault) -> None:
    for value in (b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4], "abc"):
        assert vault.decrypt(vault.encrypt(value)) == b"abc"


@FIXTURE
@given(ctx=contexts, other=contexts)
def test_other_context_fails(
    vault: phivault.Vault, ctx: dict[str, str], other: dict[str, str]
) -> None:
    ct = vault.encrypt(b"HbA1c 9.2", ctx)
    if list(ctx.items()) == list(other.items()):
        assert vault.decrypt(ct, other) == b"HbA1c 9.2"
    else:
        with pytest.raises(phivault.AuthenticationError):
            vault.decrypt(ct, other)


def test_context_order_matters_and_pairs_are_accepted(vault: phivault.Vault) -> None:
    ct = vault.encrypt(b"x", {"a": "1", "b": "2"})
    assert vault.decrypt(ct, [("a", "1"), ("b", "2")]) == b"x"
    with pytest.raises(phivault.AuthenticationError):
        vault.decrypt(ct, {"b": "2", "a": "1"})


@FIXTURE
@given(data=st.data())
def test_any_single_bit_flip_is_rejected(vault: phivault.Vault, data: st.DataObject) -> None:
    ctx = {"record": "1"}
    ct = vault.encrypt(b"HbA1c 9.2", ctx)
    i = data.draw(st.integers(0, len(ct) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    bad = bytearray(ct)
    bad[i] ^= 1 << bit
    with pytest.raises(phivault.VaultError):
        vault.decrypt(bytes(bad), ctx)


@FIXTURE
@given(cut=st.integers(0, 200))
def test_truncation_is_rejected(vault: phivault.Vault, cut: int) -> None:
    ct = vault.encrypt(b"HbA1c 9.2")
    cut = min(cut, len(ct) - 1)
    with pytest.raises(phivault.VaultError):
        vault.decrypt(ct[:cut])


@FIXTURE
@given(junk=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(lambda t: "pv1:" + t)))
def test_garbage_raises_vault_error_never_panics(vault: phivault.Vault, junk: object) -> None:
    with pytest.raises(phivault.VaultError):
        vault.decrypt(junk)  # type: ignore[arg-type]


def test_ciphertext_from_another_vault_fails(vault: phivault.Vault, tmp_path: Path) -> None:
    ct = vault.encrypt(b"secret", {"record": "1"})
    with phivault.Vault.create(tmp_path / "other", key=os.urandom(32)) as other:
        with pytest.raises(phivault.AuthenticationError):
            other.decrypt(ct, {"record": "1"})


@pytest.mark.parametrize("bad", [1, 1.5, None, [b"a"], {"a": "b"}, object()])
def test_wrong_data_types_raise_type_error(vault: phivault.Vault, bad: object) -> None:
    with pytest.raises(TypeError):
        vault.encrypt(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vault.decrypt(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ctx", ["record=1", b"ab", {"a": 1}, {1: "a"}, [("a",)], [("a", "b", "c")], 5, [1]]
)
def test_wrong_context_types_raise_type_error(vault: phivault.Vault, ctx: object) -> None:
    with pytest.raises(TypeError):
        vault.encrypt(b"x", ctx)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ctx",
    [{"": "x"}, {"k" * 256: "x"}, {"k": "v" * 65_536}, [("a", "1"), ("a", "2")],
     {f"k{i}": "v" for i in range(65)}],
)
def test_context_limits_raise_invalid_input(vault: phivault.Vault, ctx: object) -> None:
    with pytest.raises(phivault.InvalidInput) as e:
        vault.encrypt(b"x", ctx)  # type: ignore[arg-type]
    assert isinstance(e.value, ValueError)
    assert "v" * 100 not in str(e.value)


def test_unknown_keyring(vault: phivault.Vault) -> None:
    with pytest.raises(phivault.UnknownKeyring):
        vault.encrypt(b"x", keyring="nope")
    with pytest.raises(phivault.InvalidInput):
        vault.encrypt(b"x", keyring="bad name!")


def test_errors_do_not_echo_plaintext(vault: phivault.Vault) -> None:
    secret = "900-12-3456"
    ct = vault.encrypt(secret, {"ssn": secret})
    with pytest.raises(phivault.VaultError) as e:
        vault.decrypt(ct, {"ssn": "900-12-3457"})
    assert secret not in str(e.value) and secret not in repr(e.value)


def test_subject_encryption_is_shredded(vault: phivault.Vault) -> None:
    ct = vault.encrypt(b"dx", {"r": "1"}, subject="patient-1")
    keep = vault.encrypt(b"other", {"r": "2"}, subject="patient-2")
    assert vault.decrypt(ct, {"r": "1"}) == b"dx"
    with pytest.raises(phivault.InvalidInput):
        vault.encrypt(b"dx", subject="patient-1", deterministic=True)
    assert vault.forget_subject("patient-1") is True
    with pytest.raises(phivault.SubjectForgotten) as e:
        vault.decrypt(ct, {"r": "1"})
    assert isinstance(e.value, phivault.KeyDestroyed)
    assert vault.decrypt(keep, {"r": "2"}) == b"other"
