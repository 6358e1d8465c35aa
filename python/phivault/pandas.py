"""DataFrame helpers: protect or reveal named columns of a pandas DataFrame.

Needs the optional extra: ``pip install "phivault[pandas]"`` (pandas and pyarrow).

Every helper works column by column in chunks, hands each chunk to one batch call of the
:class:`~phivault.Vault` (which releases the GIL), keeps missing values missing, and returns the
DataFrame: a copy by default, or ``df`` itself with ``inplace=True``. ``progress=True`` shows a
tqdm bar when tqdm is installed (a line on stderr otherwise); a callable receives
``(column, done, total)``.

The default context of a column is ``{"column": <name>}``, so a value moved to another column
does not decrypt; pass ``context=`` to choose another (the same one is needed to decrypt).

Example::

    import phivault, phivault.pandas as pvpd
    enc = pvpd.encrypt_columns(df, ["ssn"], vault, deterministic=True)  # joinable ciphertext
    back = pvpd.decrypt_columns(enc, ["ssn"], vault)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:
    import pandas as pd

    from phivault._phivault import Vault

__all__ = [
    "encrypt_columns",
    "decrypt_columns",
    "tokenize_columns",
    "detokenize_columns",
    "pseudonymize_columns",
]

#: ``True``/``False`` or a callable ``(column, done, total)``.
Progress = Union[bool, Callable[[str, int, int], None]]
#: A context for every column, or ``None`` for ``{"column": <name>}``.
ContextArg = Optional[Mapping[str, str]]

DEFAULT_CHUNK = 50_000


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            'phivault.pandas needs pandas: pip install "phivault[pandas]"'
        ) from e
    return pandas


class _Progress:
    """Reports progress to tqdm, stderr or a callable."""

    def __init__(self, progress: Progress, column: str, total: int) -> None:
        self.column, self.total, self.done = column, total, 0
        self.callback: Optional[Callable[[str, int, int], None]] = None
        self.bar: Any = None
        if callable(progress):
            self.callback = progress
        elif progress:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=column, unit="row")
            except ImportError:
                self.callback = _stderr_progress

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.column, self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _stderr_progress(column: str, done: int, total: int) -> None:
    sys.stderr.write(f"\r{column}: {done}/{total} rows")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _columns(df: "pd.DataFrame", columns: Union[str, Sequence[str]]) -> list[str]:
    cols = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"no such column(s): {missing}")
    return cols


def _apply(
    df: "pd.DataFrame",
    columns: Union[str, Sequence[str]],
    batch: Callable[[str, list[Any]], list[Any]],
    *,
    inplace: bool,
    chunk_size: int,
    progress: Progress,
) -> "pd.DataFrame":
    pandas = _pandas()
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    cols = _columns(df, columns)
    out = df if inplace else df.copy()
    for col in cols:
        s = out[col]
        values = s.astype(object).where(s.notna(), None).tolist()
        bar = _Progress(progress, str(col), len(values))
        try:
            result: list[Any] = []
            for start in range(0, len(values), chunk_size):
                chunk = values[start : start + chunk_size]
                result.extend(batch(str(col), chunk))
                bar.update(len(chunk))
        finally:
            bar.close()
        out[col] = pandas.Series(result, index=s.index, dtype=object)
    return out


def _ctx(context: ContextArg, column: str) -> Mapping[str, str]:
    return {"column": column} if context is None else context


def encrypt_columns(
    df: "pd.DataFrame",
    columns: Union[str, Sequence[str]],
    vault: "Vault",
    *,
    deterministic: bool = False,
    context: ContextArg = None,
    keyring: Optional[str] = None,
    inplace: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress = False,
) -> "pd.DataFrame":
    """Replace each value of ``columns`` by its text envelope (``pv1:...``).

    With ``deterministic=True`` (AES-SIV) equal values give equal ciphertexts under the same
    context and key version, so joins and group-bys keep working; that reveals equality."""

    def batch(col: str, chunk: list[Any]) -> list[Any]:
        return vault.encrypt_many(
            chunk, _ctx(context, col), keyring=keyring, deterministic=deterministic, text=True
        )

    return _apply(df, columns, batch, inplace=inplace, chunk_size=chunk_size, progress=progress)


def decrypt_columns(
    df: "pd.DataFrame",
    columns: Union[str, Sequence[str]],
    vault: "Vault",
    *,
    context: ContextArg = None,
    encoding: Optional[str] = "utf-8",
    inplace: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress = False,
) -> "pd.DataFrame":
    """Decrypt envelopes in ``columns``; values are decoded with ``encoding`` (``None`` keeps
    ``bytes``). Raises AuthenticationError if any value does not decrypt."""

    def batch(col: str, chunk: list[Any]) -> list[Any]:
        plain = vault.decrypt_many(chunk, _ctx(context, col))
        if encoding is None:
            return plain
        return [None if p is None else p.decode(encoding) for p in plain]

    return _apply(df, columns, batch, inplace=inplace, chunk_size=chunk_size, progress=progress)


def _require(vault: "Vault", method: str) -> Callable[..., Any]:
    fn = getattr(vault, method, None)
    if fn is None:
        raise NotImplementedError(
            f"this phivault build has no Vault.{method} (tokenization is not bound yet)"
        )
    return fn  # type: ignore[no-any-return]


def tokenize_columns(
    df: "pd.DataFrame",
    columns: Union[str, Sequence[str], Mapping[str, str]],
    vault: "Vault",
    *,
    inplace: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress = False,
) -> "pd.DataFrame":
    """Replace values by consistent tokens (``Vault.tokenize_many``): equal values in the same
    field give equal tokens, so tables tokenized separately still join. ``columns`` may map
    column names to token field names; by default the field is the column name."""
    tokenize_many = _require(vault, "tokenize_many")
    fields = _fields(columns)

    def batch(col: str, chunk: list[Any]) -> list[Any]:
        return tokenize_many(chunk, fields[col])

    return _apply(
        df, list(fields), batch, inplace=inplace, chunk_size=chunk_size, progress=progress
    )


def detokenize_columns(
    df: "pd.DataFrame",
    columns: Union[str, Sequence[str], Mapping[str, str]],
    vault: "Vault",
    *,
    inplace: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress = False,
) -> "pd.DataFrame":
    """Reverse :func:`tokenize_columns` (``Vault.detokenize_many``)."""
    detokenize_many = _require(vault, "detokenize_many")
    fields = _fields(columns)

    def batch(col: str, chunk: list[Any]) -> list[Any]:
        return detokenize_many(chunk, fields[col])

    return _apply(
        df, list(fields), batch, inplace=inplace, chunk_size=chunk_size, progress=progress
    )


def pseudonymize_columns(
    df: "pd.DataFrame",
    columns: Union[str, Sequence[str]],
    vault: "Vault",
    *,
    field: str = "pseudonym",
    inplace: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress = False,
) -> "pd.DataFrame":
    """Replace values by one-way pseudonyms (``psn_...``) of pseudonym field ``field``: equal
    values give equal pseudonyms (joins work) and nothing can reverse them."""
    cols = [columns] if isinstance(columns, str) else list(columns)
    return tokenize_columns(
        df, {c: field for c in cols}, vault, inplace=inplace, chunk_size=chunk_size, progress=progress
    )


def _fields(columns: Union[str, Iterable[str], Mapping[str, str]]) -> dict[str, str]:
    if isinstance(columns, str):
        return {columns: columns}
    if isinstance(columns, Mapping):
        return dict(columns)
    return {c: c for c in columns}
