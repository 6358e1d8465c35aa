"""Shared fixtures: a fresh vault with a random 32-byte root key per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import phivault


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def vault(tmp_path: Path, key: bytes) -> Iterator[phivault.Vault]:
    v = phivault.Vault.create(tmp_path / "vault", key=key)
    yield v
    v.close()
