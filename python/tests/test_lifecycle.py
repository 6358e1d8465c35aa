"""Key lifecycle: rewrap, retire, destroy, re-encrypt, root rotation, usage and erasures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import phivault

CTX = {"field": "note"}


def test_rewrap_records_and_destroy(vault: phivault.Vault) -> None:
    vault.put_many("notes", {f"MRN-{i}": f"note {i}" for i in range(25)})
    assert vault.rotate() == 2
    seen: list[tuple[int, int]] = []
    report = vault.rewrap(batch=10, progress=lambda s, r: seen.append((s, r)))
    assert report["rewrapped"] == 25 and report["unreadable"] == 0
    assert seen and seen[-1] == (25, 25)
    by_version = {(u["keyring"], u["version"]): u for u in vault.usage()["by_version"]}
    assert by_version.get(("default", 1), {"records": 0})["records"] == 0
    vault.set_min_decryption_version("default", 2)
    assert vault.destroy_key_version("default", 1) == {"records": 0, "subject_keys": 0}
    assert vault.get("notes", "MRN-7") == b"note 7"
    with pytest.raises(phivault.InvalidInput):
        vault.destroy_key_version("default", 2)  # the active version
    with pytest.raises(phivault.UnknownKeyring):
        vault.destroy_key_version("default", 9)


def test_rewrap_progress_errors_propagate(vault: phivault.Vault) -> None:
    vault.put("notes", "1", b"x")
    vault.rotate()

    def boom(scanned: int, rewrapped: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        vault.rewrap(progress=boom)


def test_key_in_use_retired_and_destroyed(vault: phivault.Vault) -> None:
    vault.put("notes", "1", b"x")
    old = vault.encrypt(b"outside", CTX)
    vault.rotate()
    with pytest.raises(phivault.KeyInUse):
        vault.destroy_key_version("default", 1)
    vault.set_min_decryption_version("default", 2)
    with pytest.raises(phivault.KeyRetired):
        vault.decrypt(old, CTX)
    vault.set_min_decryption_version("default", 1)
    assert vault.decrypt(old, CTX) == b"outside"
    usage = vault.destroy_key_version("default", 1, force=True)
    assert usage["records"] == 1
    with pytest.raises(phivault.KeyDestroyed):
        vault.decrypt(old, CTX)
    with pytest.raises(phivault.KeyDestroyed):
        vault.get("notes", "1")


def test_rewrap_and_reencrypt_envelopes_keep_their_form(vault: phivault.Vault) -> None:
    b = vault.encrypt(b"bin", CTX)
    t = vault.encrypt_text(b"txt", CTX)
    vault.rotate()
    nb, nt = vault.rewrap_envelope(b), vault.rewrap_envelope(t)
    assert isinstance(nb, bytes) and isinstance(nt, str) and nt.startswith("pv1:default:2:")
    assert vault.decrypt(nb, CTX) == b"bin" and vault.decrypt(nt, CTX) == b"txt"

    many = vault.rewrap_envelopes([b, None, t])
    assert many[1] is None and isinstance(many[2], str)
    assert [vault.decrypt(x, CTX) for x in (many[0], many[2])] == [b"bin", b"txt"]
    r = vault.reencrypt(t, CTX)
    assert isinstance(r, str) and r.startswith("pv1:default:2:") and r != nt
    assert vault.decrypt(r, CTX) == b"txt"
    with pytest.raises(phivault.AuthenticationError):
        vault.reencrypt(t, {"field": "other"})
    det = vault.encrypt(b"d", CTX, deterministic=True)
    vault.rotate()
    with pytest.raises(phivault.InvalidInput):
        vault.rewrap_envelope(det)
    # a damaged envelope is never laundered into one that decrypts
    for i in range(len(b)):
        bad = bytearray(b)
        bad[i] ^= 1
        try:
            out = vault.rewrap_envelope(bytes(bad))
        except phivault.VaultError:
            continue
        with pytest.raises(phivault.VaultError):
            vault.decrypt(out, CTX)


def test_reencrypt_record(vault: phivault.Vault) -> None:
    vault.put("notes", "1", b"x")
    assert vault.reencrypt_record("notes", "1") is True
    assert vault.reencrypt_record("notes", "2") is False
    assert vault.get("notes", "1") == b"x"


def test_rotate_if_older_than(vault: phivault.Vault) -> None:
    assert vault.rotate_if_older_than("default", 3600) is None
    assert vault.rotate_if_older_than("default", 0) == 2
    with pytest.raises(phivault.InvalidInput):
        vault.rotate_if_older_than("default", -1)
    with pytest.raises(phivault.InvalidInput):
        vault.rotate_if_older_than("default", float("nan"))


def test_rotate_root(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "v"
    new = os.urandom(32)
    with phivault.Vault.create(path, key=key) as v:
        v.put("notes", "1", b"x")
        v.rotate_root(key=new)
    with pytest.raises(phivault.WrongRootKey):
        phivault.Vault.open(path, key=key)
    with phivault.Vault.open(path, key=new) as v:
        assert v.get("notes", "1") == b"x"
        v.rotate_root(passphrase="new passphrase", argon2=(8 * 1024, 1, 1))
    with phivault.Vault.open(path, passphrase="new passphrase") as v:
        assert v.get("notes", "1") == b"x"


def test_erasures_never_hold_the_subject_id(vault: phivault.Vault) -> None:
    vault.put("notes", "1", b"x", subject="patient-4711")
    vault.forget_subject("patient-4711")
    erasures = vault.erasures()
    # One record per destroyed key: the subject's own id and its `default` key.
    assert len(erasures) == 2
    assert "4711" not in repr(erasures)
    assert vault.status()["forgotten_records"] == 1
