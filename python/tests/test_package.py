"""The package surface: exception hierarchy, exports, stub completeness, typing marker."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import phivault
import phivault.exceptions as exc

PKG = Path(phivault.__file__).parent


def test_exception_hierarchy() -> None:
    for name in exc.__all__:
        cls = getattr(phivault, name)
        assert cls is getattr(exc, name)
        assert issubclass(cls, phivault.VaultError)
        assert cls.__doc__
    assert issubclass(phivault.InvalidToken, phivault.AuthenticationError)
    assert issubclass(phivault.SubjectForgotten, phivault.KeyDestroyed)
    assert issubclass(phivault.KeyDestroyed, phivault.KeyUnavailable)
    assert issubclass(phivault.KeyRetired, phivault.KeyUnavailable)
    assert issubclass(phivault.InvalidInput, ValueError)
    assert issubclass(phivault.StorageError, OSError)
    assert not issubclass(phivault.VaultError, ValueError)


def test_native_errors_are_the_python_classes(vault: phivault.Vault) -> None:
    with pytest.raises(phivault.AuthenticationError) as e:
        vault.decrypt(vault.encrypt(b"x", {"a": "1"}), {"a": "2"})
    assert type(e.value) is exc.AuthenticationError


def test_vault_class_is_frozen_and_documented() -> None:
    assert phivault.Vault.__module__ == "phivault"
    assert phivault.Vault.__doc__
    public = [n for n in dir(phivault.Vault) if not n.startswith("_")]
    for name in public:
        assert getattr(phivault.Vault, name).__doc__, name
    with pytest.raises(TypeError):
        phivault.Vault()  # no public constructor: use create/open


def test_stub_lists_exactly_the_runtime_methods() -> None:
    tree = ast.parse((PKG / "_phivault.pyi").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Vault")
    stubbed = {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    runtime = {n for n in dir(phivault.Vault) if not n.startswith("_")} | {"__enter__", "__exit__"}
    assert stubbed == runtime
    assert (PKG / "py.typed").exists()


def test_pandas_module_imports_lazily() -> None:
    import phivault.pandas as pvpd

    for name in pvpd.__all__:
        assert inspect.isfunction(getattr(pvpd, name))
        assert getattr(pvpd, name).__doc__


def test_session_stub_matches_runtime() -> None:
    tree = ast.parse((PKG / "_phivault.pyi").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Session")
    stubbed = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    assert stubbed == {n for n in dir(phivault.Session) if not n.startswith("_")}
    assert phivault.Session.__module__ == "phivault"
