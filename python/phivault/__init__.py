"""phivault: an embeddable, encrypted vault for protected health information (PHI).

The Python face of the Rust ``phivault`` crate. Every rule lives in the Rust core; this package
converts arguments, releases the GIL around real work, and raises the exceptions of
:mod:`phivault.exceptions`.

Example::

    import os, phivault
    with phivault.Vault.create("./vault", key=os.urandom(32)) as v:
        ct = v.encrypt(b"HbA1c 9.2%", context={"record": "4711", "field": "note"})
        assert v.decrypt(ct, context={"record": "4711", "field": "note"}) == b"HbA1c 9.2%"

Security notes:

* The ``context`` is authenticated, not encrypted, and it is *ordered*: a dict is used in
  insertion order, so build it the same way to decrypt (``{"a": "1", "b": "2"}`` and
  ``{"b": "2", "a": "1"}`` are different contexts).
* Decrypted values are ordinary ``bytes`` objects: Python cannot wipe them. Keep them short-lived.
* Keep the root key out of source code and logs: read it from a key file (``key_file=``) or a
  secret store.
"""

from __future__ import annotations

from phivault.exceptions import (
    AccessDenied,
    AuditError,
    AuthenticationError,
    CorruptVault,
    InternalError,
    InvalidInput,
    InvalidToken,
    KeyDestroyed,
    Conflict,
    KeyInUse,
    KeyringExists,
    KeyRetired,
    KeyUnavailable,
    StorageError,
    SubjectForgotten,
    SubjectRequired,
    UnknownField,
    UnknownKeyring,
    UnsupportedVersion,
    VaultClosed,
    VaultError,
    VaultExists,
    VaultLocked,
    VaultNotFound,
    WrongRootKey,
)
from phivault._phivault import DETACH_THRESHOLD, BatchReport, Session, Vault, __version__
from phivault.handle import VaultHandle

__all__ = [
    "Vault",
    "Session",
    "BatchReport",
    "VaultHandle",
    "DETACH_THRESHOLD",
    "__version__",
    "VaultError",
    "AuthenticationError",
    "InvalidToken",
    "WrongRootKey",
    "AccessDenied",
    "VaultLocked",
    "VaultClosed",
    "VaultNotFound",
    "VaultExists",
    "KeyUnavailable",
    "KeyRetired",
    "KeyDestroyed",
    "SubjectForgotten",
    "UnknownKeyring",
    "KeyringExists",
    "KeyInUse",
    "Conflict",
    "InvalidInput",
    "SubjectRequired",
    "UnknownField",
    "UnsupportedVersion",
    "CorruptVault",
    "AuditError",
    "StorageError",
    "InternalError",
]
