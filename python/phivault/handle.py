"""Handles that travel: open one vault in many worker processes (Dask, Spark, multiprocessing).

``Vault.handle()`` returns a :class:`VaultHandle`. It pickles to a few plain strings: the
vault's location, where a worker finds the root key (a key file's path, or the *name* of an
environment variable), the job id of a directory vault, the principal and purpose. Never key
bytes, never a passphrase.

``handle.open()`` in a worker opens the vault once per process and returns an object with the
batch calls (``tokenize_many``, ``detokenize_many``, ``pseudonym_many``, ``encrypt_many``,
``decrypt_many``; Arrow in, Arrow out), a ``Session`` acting as the handle's principal:

* a **directory vault** (sled admits one process): the job snapshot the owner wrote at
  ``handle()`` time, opened read-only with the root key. The stateless kinds work in any number
  of processes (FF1, pseudonyms, date shifts of known subjects, envelopes); vaulted and new
  consistent tokens need a write and are refused (``StorageError``: use the PostgreSQL store).
  Each batch's audit entry is spooled before the batch returns; the owner merges the spools
  with ``vault.end_job(handle.job_id)``.
* a **PostgreSQL vault**: opened by each worker (its own connection pool), every kind works,
  and each call's entry is written to the shared audit chain before the call returns.

A worker without access to the root key gets a clear error (``KeyUnavailable`` naming the
environment variable or key file, or ``WrongRootKey``), never a half-open vault.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from phivault.exceptions import KeyUnavailable

__all__ = ["VaultHandle"]

_OPEN: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class VaultHandle:
    """Where a vault is and how a worker opens it (see the module documentation).

    Picklable; carries no secret. Make one with ``Vault.handle()``."""

    location: str
    #: One of ``{"key_file": path}``, ``{"key_env": NAME}``, ``{"passphrase_env": NAME}``.
    root: dict[str, str] = field(default_factory=dict)
    #: The job of a directory vault (``None`` for PostgreSQL).
    job_id: Optional[str] = None
    expires_unix: Optional[int] = None
    principal: Optional[str] = None
    purpose: Optional[str] = None
    backend: str = "ring"
    threads: int = 1

    def __post_init__(self) -> None:
        if len(self.root) != 1 or next(iter(self.root)) not in (
            "key_file",
            "key_env",
            "passphrase_env",
        ):
            raise ValueError("root must name exactly one of key_file, key_env, passphrase_env")

    def _key(self) -> tuple[Any, ...]:
        return (
            os.getpid(),
            self.location,
            tuple(sorted(self.root.items())),
            self.job_id,
            self.principal,
            self.purpose,
            self.backend,
            self.threads,
        )

    def _root_kwargs(self) -> dict[str, Any]:
        (kind, value), = self.root.items()
        if kind == "key_file":
            if not os.path.exists(value):
                raise KeyUnavailable(
                    f"this worker has no root key: key file {value!r} does not exist here"
                )
            return {"key_file": value}
        secret = os.environ.get(value)
        if not secret:
            raise KeyUnavailable(
                f"this worker has no root key: environment variable {value} is not set"
            )
        if kind == "key_env":
            return {"key": secret.strip().encode("ascii", "strict")}
        return {"passphrase": secret}

    def open(self) -> Any:
        """The vault's batch calls in this process, opened on first use and cached (one open
        per worker process, not per task)."""
        key = self._key()
        with _LOCK:
            got = _OPEN.get(key)
            if got is not None:
                return got
            from phivault._phivault import _open_job, _open_worker

            root = self._root_kwargs()
            if self.job_id is not None:
                got = _open_job(
                    self.location, self.job_id, backend=self.backend, threads=self.threads, **root
                )
            else:
                got = _open_worker(
                    self.location, principal=self.principal, purpose=self.purpose,
                    backend=self.backend, threads=self.threads, **root,
                )
            _OPEN[key] = got
            return got

    def __repr__(self) -> str:
        where = f"job={self.job_id}" if self.job_id else "postgres"
        return f"<phivault.VaultHandle {where} principal={self.principal or 'owner'}>"
