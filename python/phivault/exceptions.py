"""The exceptions of phivault: one hierarchy under :class:`VaultError`.

Every failure phivault reports is a :class:`VaultError` (wrong argument *types* are the usual
:class:`TypeError`). Messages never contain secret or PHI input: they name the operation, the
keyring or the argument, never a value.

Hierarchy::

    VaultError
    ├── AuthenticationError        tampered data, wrong context, wrong key (one opaque error)
    │   └── InvalidToken           a token that does not detokenize
    ├── WrongRootKey               the passphrase or key does not unlock this vault
    ├── AccessDenied               the policy refuses this principal/purpose
    ├── VaultLocked                another process (or handle) holds the vault open
    ├── VaultClosed                the Vault object was closed
    ├── VaultNotFound              no vault at the path
    ├── VaultExists                create() on a path that holds a vault
    ├── KeyUnavailable             the key for this data cannot be used
    │   ├── KeyRetired             below the keyring's minimum decryption version (reversible)
    │   └── KeyDestroyed           key material wiped: the data is gone for good
    │       └── SubjectForgotten   the data subject was forgotten (crypto-shredded)
    ├── UnknownKeyring             no keyring (or key version) by that name
    ├── KeyringExists              create_keyring() on an existing name
    ├── KeyInUse                   destroy_key_version() while data still needs the key
    ├── Conflict                   a concurrent change got in the way; retry
    ├── UnknownField               no tokenization field (or preset) by that name
    ├── InvalidInput (ValueError)  an argument value is not acceptable
    │   └── SubjectRequired        the field is tied to data subjects: give subject=
    ├── UnsupportedVersion         data written by a newer/unknown format version
    ├── CorruptVault               vault metadata damaged or edited outside phivault
    ├── AuditError                 the audit log does not verify
    ├── StorageError (OSError)     the store or file system failed
    └── InternalError              a bug in phivault (please report it)
"""

from __future__ import annotations

__all__ = [
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
    "UnknownField",
    "InvalidInput",
    "SubjectRequired",
    "UnsupportedVersion",
    "CorruptVault",
    "AuditError",
    "StorageError",
    "InternalError",
]


class VaultError(Exception):
    """Base class of every error phivault raises."""


class AuthenticationError(VaultError):
    """A ciphertext, envelope or token failed authentication.

    It was damaged, tampered with or truncated, or it does not belong to this context, key or
    vault. phivault deliberately does not say which check failed.
    """


class InvalidToken(AuthenticationError):
    """A token is malformed, was not made by this vault, or was tampered with."""


class WrongRootKey(VaultError):
    """The passphrase or key does not unlock this vault (or is of another kind than the one
    the vault was created with)."""


class AccessDenied(VaultError):
    """The vault's policy does not allow this principal to do this for this purpose."""


class VaultLocked(VaultError):
    """Another process, or another open ``Vault`` in this process, holds the vault."""


class VaultClosed(VaultError):
    """The ``Vault`` was closed (``close()`` or the end of a ``with`` block)."""


class VaultNotFound(VaultError):
    """``Vault.open`` found no vault at the path."""


class VaultExists(VaultError):
    """``Vault.create`` was given a path that already holds a vault."""


class KeyUnavailable(VaultError):
    """The key that protects this data cannot be used."""


class KeyRetired(KeyUnavailable):
    """The key version is retired (below the keyring's minimum decryption version).

    Reversible: lowering the minimum decryption version makes the data readable again.
    """


class KeyDestroyed(KeyUnavailable):
    """The key version was destroyed: data under it can never be decrypted again."""


class SubjectForgotten(KeyDestroyed):
    """The data belongs to a data subject whose key was destroyed by ``forget_subject``."""


class UnknownKeyring(VaultError):
    """No keyring by that name, or the keyring has no such key version."""


class KeyringExists(VaultError):
    """A keyring with that name exists already."""


class KeyInUse(VaultError):
    """A key version still protects records or subject keys: rewrap first, or pass
    ``force=True`` to destroy it anyway (making that data unrecoverable)."""


class Conflict(VaultError):
    """A concurrent change got in the way; nothing was changed and the call can be retried."""


class InvalidInput(VaultError, ValueError):
    """An argument value is not acceptable. The message names the argument, never its value."""


class SubjectRequired(InvalidInput):
    """The tokenization field is tied to data subjects: the call must give ``subject=``."""


class UnknownField(VaultError):
    """No tokenization field (and no preset) has that name."""


class UnsupportedVersion(VaultError):
    """The data was written by a newer or unknown format version."""


class CorruptVault(VaultError):
    """Vault metadata failed authentication or could not be decoded: the store was damaged or
    edited outside phivault."""


class AuditError(VaultError):
    """The audit log failed verification: an entry was changed, removed or reordered."""


class StorageError(VaultError, OSError):
    """The embedded store or the file system failed."""


class InternalError(VaultError):
    """phivault hit a bug (a Rust panic was caught). Please report it."""
