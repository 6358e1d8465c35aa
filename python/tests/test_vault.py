"""Vault life cycle, root keys, records, keys and status."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import phivault

FIXTURE = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
CHEAP_ARGON2 = (8 * 1024, 1, 1)


def test_create_open_and_persist(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "v"
    with phivault.Vault.create(path, key=key) as v:
        v.put("notes", "MRN-1", b"chest pain")
        ct = v.encrypt(b"x", {"r": "1"})
        vid = v.vault_id
        assert v.path == path
    with phivault.Vault.open(str(path), key=key) as v:
        assert v.vault_id == vid
        assert v.get("notes", "MRN-1") == b"chest pain"
        assert v.decrypt(ct, {"r": "1"}) == b"x"
    # the key may also be given as 64 hex digits, or as a key file
    with phivault.Vault.open(path, key=key.hex().encode()) as v:
        assert v.vault_id == vid
    (tmp_path / "root.key").write_bytes(key)
    with phivault.Vault.open(path, key_file=tmp_path / "root.key") as v:
        assert v.vault_id == vid


def test_passphrase_vault(tmp_path: Path) -> None:
    path = tmp_path / "v"
    with phivault.Vault.create(path, passphrase="correct horse", argon2=CHEAP_ARGON2) as v:
        assert v.status()["root_kind"] == "passphrase"
    with pytest.raises(phivault.WrongRootKey):
        phivault.Vault.open(path, passphrase="wrong horse")
    with pytest.raises(phivault.WrongRootKey):
        phivault.Vault.open(path, key=os.urandom(32))
    phivault.Vault.open(path, passphrase="correct horse").close()


def test_wrong_key_changes_nothing(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "v"
    phivault.Vault.create(path, key=key).close()
    before = sorted((p.name, p.stat().st_size) for p in path.rglob("*") if p.is_file())
    with pytest.raises(phivault.WrongRootKey):
        phivault.Vault.open(path, key=os.urandom(32))
    after = sorted((p.name, p.stat().st_size) for p in path.rglob("*") if p.is_file())
    assert before == after


def test_exists_missing_locked(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "v"
    with pytest.raises(phivault.VaultNotFound):
        phivault.Vault.open(path, key=key)
    v = phivault.Vault.create(path, key=key)
    with pytest.raises(phivault.VaultExists):
        phivault.Vault.create(path, key=key)
    with pytest.raises(phivault.VaultLocked):
        phivault.Vault.open(path, key=key)
    v.close()
    phivault.Vault.open(path, key=key).close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"key": b"k" * 32, "passphrase": "p"},
        {"key": b"short"},
        {"key": b"k" * 32, "argon2": CHEAP_ARGON2},
        {"passphrase": ""},
        {"passphrase": "p", "argon2": (1, 1, 1)},
        {"key": b"k" * 32, "durability": "sometimes"},
        {"key": b"k" * 32, "backend": "openssl"},
    ],
)
def test_bad_create_arguments(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(phivault.InvalidInput) as e:
        phivault.Vault.create(tmp_path / "v", **kwargs)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("kwargs", [{"key": "k" * 32}, {"passphrase": b"p"}, {"key": 5}])
def test_bad_create_types(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        phivault.Vault.create(tmp_path / "v", **kwargs)


CLOSED_CALLS: list[Callable[[phivault.Vault], object]] = [
    lambda v: v.encrypt(b"x"),
    lambda v: v.encrypt_text(b"x"),
    lambda v: v.decrypt(b"x"),
    lambda v: v.encrypt_many([b"x"]),
    lambda v: v.decrypt_many([b"x"]),
    lambda v: v.put("c", "i", b"x"),
    lambda v: v.put_many("c", {"i": b"x"}),
    lambda v: v.get("c", "i"),
    lambda v: v.delete("c", "i"),
    lambda v: v.forget_subject("s"),
    lambda v: v.rotate(),
    lambda v: v.create_keyring("k"),
    lambda v: v.keyrings(),
    lambda v: v.status(),
    lambda v: v.vault_id,
    lambda v: v.path,
]


@pytest.mark.parametrize("call", CLOSED_CALLS)
def test_closed_vault_raises_vault_closed(vault: phivault.Vault, call: Callable[..., Any]) -> None:
    vault.close()
    assert vault.closed
    with pytest.raises(phivault.VaultClosed):
        call(vault)


def test_close_is_idempotent_and_context_manager_closes(tmp_path: Path, key: bytes) -> None:
    with phivault.Vault.create(tmp_path / "v", key=key) as v:
        assert not v.closed
        assert "closed" not in repr(v)
    assert v.closed and "closed" in repr(v)
    v.close()
    with pytest.raises(RuntimeError):
        with phivault.Vault.open(tmp_path / "v", key=key) as v2:
            raise RuntimeError("boom")  # exceptions propagate out of the with block
    assert v2.closed


ids = st.text(min_size=1, max_size=60)


@FIXTURE
@given(items=st.dictionaries(ids, st.binary(max_size=200), min_size=1, max_size=8))
def test_records_round_trip(vault: phivault.Vault, items: dict[str, bytes]) -> None:
    for i, d in items.items():
        vault.put("notes", i, d)
    for i, d in items.items():
        assert vault.get("notes", i) == d
        assert vault.get("other", i) is None
    first = next(iter(items))
    assert vault.delete("notes", first) is True
    assert vault.get("notes", first) is None
    assert vault.delete("notes", first) is False


def test_put_many_and_subjects(vault: phivault.Vault) -> None:
    vault.put_many("labs", {"MRN-1": b"a", "MRN-2": "b"}, subject="p1")
    vault.put_many("labs", [("MRN-3", b"c")])
    assert [vault.get("labs", f"MRN-{i}") for i in (1, 2, 3)] == [b"a", b"b", b"c"]
    assert vault.status()["records"] == 3
    assert vault.status()["subject_records"] == 2
    assert vault.forget_subject("p1") is True
    assert vault.forget_subject("nobody") is False
    with pytest.raises(phivault.SubjectForgotten):
        vault.get("labs", "MRN-1")
    assert vault.get("labs", "MRN-3") == b"c"
    with pytest.raises(TypeError):
        vault.put_many("labs", [("MRN-4",)])
    with pytest.raises(phivault.InvalidInput):
        vault.put_many("labs", [None])


@pytest.mark.parametrize(
    "collection,id", [("", "x"), ("bad name", "x"), ("c" * 65, "x"), ("ok", ""), ("ok", "i" * 1025)]
)
def test_bad_record_names(vault: phivault.Vault, collection: str, id: str) -> None:
    with pytest.raises(phivault.InvalidInput):
        vault.put(collection, id, b"x")
    with pytest.raises(phivault.InvalidInput):
        vault.get(collection, id)


def test_record_id_types(vault: phivault.Vault) -> None:
    with pytest.raises(TypeError):
        vault.put("c", 4711, b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vault.get("c", b"4711")  # type: ignore[arg-type]


def test_rotate_keyrings_status(vault: phivault.Vault) -> None:
    old = vault.encrypt_text(b"x", {"r": "1"})
    vault.put("c", "1", b"v1")
    assert vault.rotate() == 2
    new = vault.encrypt_text(b"x", {"r": "1"})
    assert old.startswith("pv1:default:1:") and new.startswith("pv1:default:2:")
    assert vault.decrypt(old, {"r": "1"}) == vault.decrypt(new, {"r": "1"}) == b"x"
    info = vault.create_keyring("labs")
    assert info["name"] == "labs" and info["active_version"] == 1
    assert vault.encrypt_text(b"x", keyring="labs").startswith("pv1:labs:1:")
    with pytest.raises(phivault.KeyringExists):
        vault.create_keyring("labs")
    with pytest.raises(phivault.UnknownKeyring):
        vault.rotate("nope")
    rings = {k["name"]: k for k in vault.keyrings()}
    assert {"default", "labs"} <= set(rings)
    states = [v["state"] for v in rings["default"]["versions"]]
    assert states == ["decrypt-only", "active"]
    st_ = vault.status()
    default = next(k for k in st_["keyrings"] if k["name"] == "default")
    assert [v["records"] for v in default["versions"]] == [1, 0]
    assert st_["records"] == 1 and len(st_["vault_id"]) == 32
