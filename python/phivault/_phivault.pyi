"""Type stubs for the native part of phivault (``phivault._phivault``)."""

from __future__ import annotations

import datetime
import os
import pathlib
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, BinaryIO, Literal, Optional, Tuple, TypeVar, Union, overload

from typing_extensions import Self, TypeAlias

__version__: str
#: Inputs at least this many bytes long are processed with the GIL released.
DETACH_THRESHOLD: int

#: Bytes-like input; ``str`` is encoded as UTF-8.
Data: TypeAlias = Union[bytes, bytearray, memoryview, str]
#: An encryption context: a mapping ``{str: str}`` (insertion order matters) or ``(str, str)``
#: pairs; ``None`` is the empty context.
ContextArg: TypeAlias = Optional[Union[Mapping[str, str], Iterable[Tuple[str, str]]]]
#: Any batch: list, tuple, iterable, numpy object array, or an Arrow array / chunked array
#: (any object with ``__arrow_c_array__`` / ``__arrow_c_stream__``: pyarrow, polars, arro3).
Batch: TypeAlias = Iterable[Any]
#: ``"raise"``: the first bad row raises (with ``.row``); ``"null"``: bad rows become null.
Errors: TypeAlias = Literal["raise", "null"]

class BatchReport:
    """Which rows of a batch failed (filled by calls made with ``errors="null"``)."""

    rows: int
    failed: int
    indexes: list[int]
    reasons: list[str]
    def __init__(self) -> None: ...

def _open_job(
    path: StrPath,
    job_id: str,
    *,
    passphrase: Optional[str] = None,
    key: Optional[bytes] = None,
    key_file: Optional[StrPath] = None,
    backend: str = "ring",
    threads: int = 1,
) -> Session:
    """Open a directory vault's job snapshot in a worker (use ``VaultHandle.open``)."""

def _open_worker(
    location: StrPath,
    *,
    principal: Optional[str] = None,
    purpose: Optional[str] = None,
    passphrase: Optional[str] = None,
    key: Optional[bytes] = None,
    key_file: Optional[StrPath] = None,
    backend: str = "ring",
    threads: int = 1,
) -> Session:
    """Open a PostgreSQL vault in a worker (use ``VaultHandle.open``)."""
View: TypeAlias = Literal["plaintext", "masked", "redacted"]
_D = TypeVar("_D", str, datetime.date)
StrPath: TypeAlias = Union[str, "os.PathLike[str]"]

class Vault:
    """An open phivault vault. Thread-safe; long and batch calls release the GIL."""

    @staticmethod
    def create(
        path: StrPath,
        *,
        passphrase: Optional[str] = None,
        key: Optional[Union[bytes, bytearray, memoryview]] = None,
        key_file: Optional[StrPath] = None,
        argon2: Optional[Tuple[int, int, int]] = None,
        durability: Literal["immediate", "deferred"] = "immediate",
        backend: Literal["ring", "rustcrypto", "aws-lc"] = "ring",
        threads: int = 1,
    ) -> Vault:
        """Create a vault in directory ``path``. Give exactly one root key: ``passphrase``
        (Argon2id; ``argon2=(memory_kib, passes, lanes)`` sets its cost), ``key`` (32 raw bytes
        or 64 hex digits) or ``key_file``. ``threads``: how many threads the batch calls
        (``tokenize_many``, ``detokenize_many``, ``put_many``, rewrap) may use; 1 = the
        calling thread only, 0 = one per core. Results do not depend on it.

        Raises VaultExists, InvalidInput, StorageError."""

    @staticmethod
    def open(
        path: StrPath,
        *,
        passphrase: Optional[str] = None,
        key: Optional[Union[bytes, bytearray, memoryview]] = None,
        key_file: Optional[StrPath] = None,
        durability: Literal["immediate", "deferred"] = "immediate",
        backend: Literal["ring", "rustcrypto", "aws-lc"] = "ring",
        threads: int = 1,
    ) -> Vault:
        """Open the vault in directory ``path``. ``threads`` as for ``create``.

        Raises VaultNotFound, WrongRootKey, VaultLocked, CorruptVault, StorageError."""

    def close(self) -> None:
        """Close the vault and release its lock. Idempotent; later calls raise VaultClosed."""

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    @property
    def vault_id(self) -> str:
        """The vault's random id, in hex (not secret)."""

    @property
    def path(self) -> Optional[pathlib.Path]:
        """The vault's directory."""

    # envelopes
    def encrypt(
        self,
        data: Data,
        context: ContextArg = None,
        *,
        keyring: Optional[str] = None,
        deterministic: bool = False,
        subject: Optional[str] = None,
    ) -> bytes:
        """Encrypt ``data`` bound to ``context``; return the binary envelope. ``deterministic``
        (AES-SIV) reveals equality; ``subject`` ties the value to a data subject."""

    def encrypt_text(
        self,
        data: Data,
        context: ContextArg = None,
        *,
        keyring: Optional[str] = None,
        deterministic: bool = False,
        subject: Optional[str] = None,
    ) -> str:
        """Like ``encrypt``, returning the text form ``pv1:<keyring>:<version>:<base64url>``."""

    def decrypt(self, envelope: Union[bytes, bytearray, memoryview, str], context: ContextArg = None) -> bytes:
        """Decrypt a binary or text envelope made under exactly this ``context``.

        Raises AuthenticationError (tampered, wrong context or key), KeyRetired, KeyDestroyed,
        SubjectForgotten, UnknownKeyring, UnsupportedVersion."""

    @overload
    def encrypt_many(
        self,
        values: Batch,
        context: ContextArg = None,
        *,
        keyring: Optional[str] = None,
        deterministic: bool = False,
        text: Literal[False] = False,
    ) -> list[Optional[bytes]]: ...
    @overload
    def encrypt_many(
        self,
        values: Batch,
        context: ContextArg = None,
        *,
        keyring: Optional[str] = None,
        deterministic: bool = False,
        text: Literal[True],
    ) -> list[Optional[str]]:
        """Encrypt many values under one ``context`` (GIL released): a fresh data key per
        value, one audit entry for the batch, the vault's ``threads``; ``None`` stays
        ``None``."""
    def decrypt_many(self, envelopes: Batch, context: ContextArg = None) -> list[Optional[bytes]]:
        """Decrypt many envelopes made under one ``context`` (GIL released, one audit entry
        per keyring, the vault's ``threads``); ``None`` stays ``None``. Any failure raises and
        returns nothing."""

    # large files (streaming, constant memory)
    def encrypt_file(
        self, src: StrPath, dst: StrPath, context: ContextArg = None, *, subject: Optional[str] = None
    ) -> int:
        """Encrypt the file ``src`` into the stream file ``dst`` (segmented AES-256-GCM, the
        format of ``phivault encrypt-file``) bound to ``context``, with constant memory and the
        GIL released. ``dst`` is written beside itself and renamed into place when complete;
        ``subject`` ties the file to a data subject. Returns the plaintext length.

        Raises StorageError (I/O), UnknownKeyring, SubjectForgotten, InvalidInput."""

    def decrypt_file(self, src: StrPath, dst: StrPath, context: ContextArg = None) -> int:
        """Decrypt the stream file ``src`` into ``dst`` with the GIL released. ``dst`` appears
        only once the whole stream has authenticated: a damaged, truncated or reordered file
        leaves no output. Returns the plaintext length.

        Raises AuthenticationError (tampered, truncated, wrong context or key), KeyRetired,
        KeyDestroyed, SubjectForgotten, UnknownKeyring, UnsupportedVersion, StorageError."""

    def encrypt_stream(
        self,
        reader: BinaryIO,
        writer: BinaryIO,
        context: ContextArg = None,
        *,
        subject: Optional[str] = None,
    ) -> int:
        """Encrypt everything ``reader.read(n)`` returns into ``writer.write(b)`` (binary
        file-like objects, called in 1 MiB chunks; the GIL is held only during those calls).
        Neither object is flushed or closed. Returns the plaintext length. An exception raised
        by ``read`` or ``write`` propagates unchanged."""

    def decrypt_stream(self, reader: BinaryIO, writer: BinaryIO, context: ContextArg = None) -> int:
        """Decrypt the stream ``reader`` yields into ``writer``. Each segment is authenticated
        before it is written, but a stream cut short is detected only at its end: on
        AuthenticationError, discard what ``writer`` received (or use ``decrypt_file``, which
        never leaves partial output). Returns the plaintext length."""

    # records
    def put(
        self,
        collection: str,
        id: str,
        data: Data,
        *,
        subject: Optional[str] = None,
        keyring: Optional[str] = None,
    ) -> None:
        """Store ``data`` as record ``id`` of ``collection`` (ids are stored as keyed hashes)."""

    def put_many(
        self,
        collection: str,
        items: Union[Mapping[str, Data], Iterable[Tuple[str, Data]]],
        *,
        subject: Optional[str] = None,
        keyring: Optional[str] = None,
    ) -> None:
        """Store many records in one atomic, durable write."""

    def get(self, collection: str, id: str) -> Optional[bytes]:
        """The record, or ``None`` when there is none."""

    def delete(self, collection: str, id: str) -> bool:
        """Delete a record; return whether it existed."""

    def forget_subject(self, subject: str) -> bool:
        """Destroy a data subject's key: its data becomes unrecoverable (SubjectForgotten)."""

    # keys
    def rotate(self, keyring: str = "default") -> int:
        """Activate a new key version of ``keyring`` at once; return its number."""

    def create_keyring(self, name: str) -> dict[str, Any]:
        """Create a keyring with one active key version; return its description."""

    def keyrings(self) -> list[dict[str, Any]]:
        """Every keyring: ``name``, ``active_version``, ``min_decryption_version``,
        ``versions`` (``version``, ``state``, ``created_unix``)."""

    def status(self) -> dict[str, Any]:
        """Summary: ``vault_id``, ``format_version``, ``root_kind``, ``backend``, ``records``,
        ``subject_records``, ``keyrings`` (with per-version record counts)."""

    # key lifecycle
    def rotate_if_older_than(self, keyring: str, max_age_seconds: float) -> Optional[int]:
        """Rotate ``keyring`` only if its active version is older than ``max_age_seconds``;
        return the new version or ``None``."""

    def set_min_decryption_version(self, keyring: str, version: int) -> None:
        """Retire (reversibly) every key version of ``keyring`` below ``version``."""

    def destroy_key_version(self, keyring: str, version: int, *, force: bool = False) -> dict[str, int]:
        """Destroy a key version for good; raises KeyInUse while data depends on it unless
        ``force``. Returns ``{"records": n, "subject_keys": n}`` that depended on it."""

    def rewrap(
        self,
        *,
        keyring: Optional[str] = None,
        batch: int = 1000,
        progress: Optional[Callable[[int, int], object]] = None,
    ) -> dict[str, Any]:
        """Move stored records and subject keys to the active key version without
        re-encrypting payloads; ``progress(scanned, rewrapped)`` after each batch. Returns the
        report: scanned, rewrapped, up_to_date, subject_records, raced, unreadable,
        subject_keys_rewrapped, resumed."""

    @overload
    def rewrap_envelope(self, envelope: str) -> str: ...
    @overload
    def rewrap_envelope(self, envelope: Union[bytes, bytearray, memoryview]) -> bytes: ...
    def rewrap_envelopes(self, envelopes: Batch) -> list[Optional[Union[bytes, str]]]:
        """``rewrap_envelope`` over a batch (GIL released); ``None`` stays ``None``."""

    @overload
    def reencrypt(self, envelope: str, context: ContextArg = None) -> str: ...
    @overload
    def reencrypt(self, envelope: Union[bytes, bytearray, memoryview], context: ContextArg = None) -> bytes: ...
    def reencrypt_record(self, collection: str, id: str) -> bool:
        """Re-encrypt one stored record with a fresh data key; return whether it existed."""

    def rotate_root(
        self,
        *,
        passphrase: Optional[str] = None,
        key: Optional[Union[bytes, bytearray, memoryview]] = None,
        key_file: Optional[StrPath] = None,
        argon2: Optional[Tuple[int, int, int]] = None,
    ) -> None:
        """Change the root key by rewrapping the vault master key only."""

    def usage(self) -> dict[str, Any]:
        """What depends on each key version: records, subject_records, forgotten_records,
        by_version (keyring, version, records, subject_keys)."""

    def erasures(self) -> list[dict[str, Any]]:
        """Erasures recorded by ``forget_subject``: time_unix, subject_key_id (a keyed hash)."""

    # de-identification of FHIR and JSON documents (docs/fhir.md)
    def deidentify(self, doc: Any, schema: str = "safe-harbor") -> Any:
        """De-identify one FHIR resource, Bundle or (``$`` paths) JSON document and return the
        new ``dict``. ``schema``: a preset (``"safe-harbor"``, ``"shifted-dates"``), a schema
        stored with ``define_schema``, or TOML/JSON text. Errors never contain values.

        Raises InvalidInput (schema or document), AccessDenied, UnknownField."""

    def reidentify(self, doc: Any, schema: str = "safe-harbor", *, view: str = "plaintext") -> Any:
        """Give back what ``deidentify`` made reversible: tokens (shown as ``view``) and, in
        the plaintext view, encrypted elements. Pseudonyms and references stay one-way."""

    def deidentify_file(
        self, input: StrPath, output: StrPath, schema: str = "safe-harbor", *,
        errors: str = "fail", batch_lines: int = 4096
    ) -> dict[str, Any]:
        """De-identify NDJSON (one resource per line) into ``output``, renamed into place when
        complete (GIL released, on the vault's threads). ``errors="skip"`` leaves malformed
        lines out and lists their numbers. Returns the report: documents, resources,
        bad_lines, bad_line_numbers, rules (per rule: path, action, elements, failed)."""

    def reidentify_file(
        self, input: StrPath, output: StrPath, schema: str = "safe-harbor", *,
        view: str = "plaintext", errors: str = "fail", batch_lines: int = 4096
    ) -> dict[str, Any]:
        """The reverse of ``deidentify_file``."""

    def define_schema(self, name: str, text: str) -> None:
        """Store a de-identification schema (TOML or JSON text) under ``name``, sealed."""

    def schemas(self) -> list[str]:
        """The schema names: presets, then stored ones."""

    # tokenization
    def tokenize(self, value: str, field: str, *, subject: Optional[str] = None) -> str:
        """Tokenize ``value`` as ``field`` (a preset: ssn, phone, account, license, device_id,
        mrn, email, name, zip, dob, pseudonym; or a defined field). Consistent: joins work.
        Fields tied to data subjects need ``subject``.

        Raises UnknownField, SubjectRequired, InvalidInput."""

    def tokenize_many(
        self, values: Batch, field: str, *, errors: Errors = "raise", report: Optional[BatchReport] = None
    ) -> Any:
        """Tokenize a batch of one field (GIL released). Arrow in: an Arrow array of the same
        length and chunking out, nulls kept; otherwise a list, ``None`` staying ``None``."""

    def pseudonym_many(
        self, values: Batch, field: str = "pseudonym", *, errors: Errors = "raise",
        report: Optional[BatchReport] = None
    ) -> Any:
        """One-way pseudonyms of a batch (``tokenize_many`` of a pseudonym field)."""

    def handle(
        self,
        *,
        key_file: Optional[StrPath] = None,
        key_env: Optional[str] = None,
        passphrase_env: Optional[str] = None,
        principal: Optional[str] = None,
        purpose: Optional[str] = None,
        ttl_seconds: int = 86400,
        threads: int = 1,
    ) -> Any:
        """A picklable ``phivault.VaultHandle`` that opens this vault in worker processes; it
        carries no key material."""

    def audit_entries(self, *, since_ms: int = 0, principal: Optional[str] = None) -> list[dict[str, Any]]:
        """Audit entries (names and keyed hashes, never values), oldest first."""

    def merge_job_audit(self, job_id: str) -> dict[str, int]:
        """Merge the audit entries a job's workers spooled into this vault's log."""

    def end_job(self, job_id: str) -> dict[str, int]:
        """End a job (its snapshot is deleted) and merge its workers' audit entries."""

    def detokenize(
        self, token: str, field: str, *, subject: Optional[str] = None, view: View = "plaintext"
    ) -> str:
        """The value behind ``token``, shown as ``view``. Raises InvalidToken."""

    def detokenize_many(
        self, tokens: Batch, field: str, *, view: View = "plaintext", errors: Errors = "raise",
        report: Optional[BatchReport] = None
    ) -> Any:
        """Detokenize a batch of one field (GIL released): Arrow in, Arrow out, or a list."""

    def pseudonym(self, value: str, field: str = "pseudonym") -> str:
        """The one-way pseudonym (``psn_...``) of ``value``."""

    def verify_pseudonym(self, value: str, candidate: str, field: str = "pseudonym") -> bool:
        """Whether ``candidate`` is the pseudonym of ``value`` (constant time)."""

    def shift_date(self, date: _D, subject: str, field: str = "dob") -> _D:
        """Shift a date (``"YYYY-MM-DD"`` or ``datetime.date``) by the subject's secret,
        consistent offset; returns the same type."""

    def unshift_date(self, date: _D, subject: str, field: str = "dob") -> _D:
        """Reverse ``shift_date`` for the same subject."""

    def define_field(
        self,
        name: str,
        kind: Literal["vaulted", "ff1", "pseudonym", "date-shift"],
        *,
        alphabet: Optional[str] = None,
        consistent: Optional[bool] = None,
        opaque: Optional[bool] = None,
        prefix: Optional[str] = None,
        mask_keep_last: Optional[int] = None,
        mask_keep_first: Optional[int] = None,
        subject: Optional[bool] = None,
        keyring: Optional[str] = None,
        key_version: Optional[int] = None,
        project: Optional[str] = None,
        window_days: Optional[int] = None,
    ) -> None:
        """Define (or redefine) a tokenization field, stored sealed in the vault."""

    def define_fields_toml(self, text: str) -> int:
        """Define every ``[[field]]`` of a TOML schema; return how many."""

    def fields(self) -> list[dict[str, Any]]:
        """Every usable field (presets and defined ones) with its settings."""

    # policy and audit
    def session(self, principal: str, purpose: str, *, break_glass: Optional[str] = None) -> Session:
        """A Session acting as ``principal`` for ``purpose``: every call is checked against the
        policy (default deny: AccessDenied) and audited."""

    def policy(self) -> str:
        """The stored access policy, as TOML."""

    def set_policy(self, toml: str) -> None:
        """Replace the access policy (``[[principal]]`` and ``[[rule]]`` tables); owner only."""

    def audit_verify(self, *, expect_head: str | None = None) -> dict[str, Any]:
        """Verify the audit hash chain: ok, entries, first_bad, problem, head_seq, head_mac."""
    def verify(self) -> dict[str, Any]:
        """Check the whole store: ok, entries, problem_count, audit_entries, store_commit,
        anchor_commit, spaces (per-space counts), problems (space, keyed-hash key, what)."""

    def audit_head(self) -> Tuple[int, str]:
        """The audit head anchor ``(sequence number, MAC hex)`` to record outside the vault."""

class Session:
    """A vault used as one principal for one purpose; every call is policy-checked and audited.
    Raises VaultClosed once its Vault is closed."""

    @property
    def principal(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    def encrypt(
        self,
        data: Data,
        context: ContextArg = None,
        *,
        keyring: Optional[str] = None,
        deterministic: bool = False,
        subject: Optional[str] = None,
    ) -> bytes: ...
    def encrypt_text(
        self, data: Data, context: ContextArg = None, *, keyring: Optional[str] = None, deterministic: bool = False
    ) -> str: ...
    def decrypt(self, envelope: Union[bytes, bytearray, memoryview, str], context: ContextArg = None) -> bytes: ...
    def put(self, collection: str, id: str, data: Data, *, subject: Optional[str] = None) -> None: ...
    def get(self, collection: str, id: str) -> Optional[bytes]: ...
    def delete(self, collection: str, id: str) -> bool: ...
    def tokenize(self, value: str, field: str, *, subject: Optional[str] = None) -> str: ...
    def deidentify(self, doc: Any, schema: str = "safe-harbor") -> Any:
        """``Vault.deidentify`` as this caller."""

    def reidentify(self, doc: Any, schema: str = "safe-harbor", *, view: str = "plaintext") -> Any:
        """``Vault.reidentify`` as this caller (needs detokenize/decrypt rights)."""

    def deidentify_file(
        self, input: StrPath, output: StrPath, schema: str = "safe-harbor", *,
        errors: str = "fail", batch_lines: int = 4096
    ) -> dict[str, Any]:
        """``Vault.deidentify_file`` as this caller."""

    def reidentify_file(
        self, input: StrPath, output: StrPath, schema: str = "safe-harbor", *,
        view: str = "plaintext", errors: str = "fail", batch_lines: int = 4096
    ) -> dict[str, Any]:
        """``Vault.reidentify_file`` as this caller."""

    def tokenize_many(
        self, values: Batch, field: str, *, errors: Errors = "raise", report: Optional[BatchReport] = None
    ) -> Any: ...
    def pseudonym_many(
        self, values: Batch, field: str = "pseudonym", *, errors: Errors = "raise",
        report: Optional[BatchReport] = None
    ) -> Any: ...
    def encrypt_many(
        self, values: Batch, context: ContextArg = None, *, keyring: Optional[str] = None,
        deterministic: bool = False, text: bool = False
    ) -> Any: ...
    def decrypt_many(self, envelopes: Batch, context: ContextArg = None) -> Any: ...
    def detokenize(
        self, token: str, field: str, *, subject: Optional[str] = None, view: View = "plaintext"
    ) -> str: ...
    def detokenize_many(
        self, tokens: Batch, field: str, *, view: View = "plaintext", errors: Errors = "raise",
        report: Optional[BatchReport] = None
    ) -> Any: ...
