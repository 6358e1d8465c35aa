"""Store integrity from Python: `Vault.verify()`, and a damaged or rolled-back store refused
on open (`CorruptVault`), never read as empty."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import phivault


def test_verify_reports_counts_and_no_phi(vault: phivault.Vault) -> None:
    vault.put("notes", "MRN-1", b"chest pain canary")
    vault.tokenize("900-12-3456", "ssn")
    report = vault.verify()
    assert report["ok"] is True and report["problem_count"] == 0
    spaces = {s["space"]: s for s in report["spaces"]}
    assert spaces["record"]["entries"] == 1 and spaces["record"]["bad"] == 0
    assert report["audit_entries"] >= 2
    assert "canary" not in repr(report) and "MRN-1" not in repr(report)


def test_a_rolled_back_store_is_refused(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "vault"
    v = phivault.Vault.create(path, key=key)
    v.put("notes", "1", b"first")
    v.close()
    shutil.copytree(path / "store", tmp_path / "old-store")
    v = phivault.Vault.open(path, key=key)
    v.put("notes", "2", b"second")
    v.close()
    shutil.rmtree(path / "store")
    shutil.copytree(tmp_path / "old-store", path / "store")
    with pytest.raises(phivault.CorruptVault):
        phivault.Vault.open(path, key=key)


def test_close_reports_success_on_a_healthy_vault(tmp_path: Path, key: bytes) -> None:
    v = phivault.Vault.create(tmp_path / "vault", key=key)
    v.get("notes", "none")  # a read whose audit entry waits for the close
    v.close()  # raises AuditError if that entry could not be written
    assert v.closed
