"""Polars helpers: tokenize, pseudonymize and detokenize Series and DataFrame columns through
Arrow, with no Python object per value.

Needs polars (and pyarrow, which polars uses for ``to_arrow``). Every call hands a column to one
batch call of a :class:`~phivault.Vault`, a ``Session``, or the object ``handle.open()`` returns
(one policy decision and audit entry per column batch); nulls stay null.

Example::

    import polars as pl, phivault, phivault.polars as pvpl
    out = pvpl.tokenize_frame(df, {"ssn": "ssn", "mrn": "mrn"}, vault)
    lazy = df.lazy().with_columns(pl.col("ssn").map_batches(pvpl.tokenizer(vault, "ssn"),
                                                          return_dtype=pl.String))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "tokenize_series",
    "detokenize_series",
    "pseudonymize_series",
    "tokenize_frame",
    "detokenize_frame",
    "tokenizer",
    "detokenizer",
]


def _pl() -> Any:
    try:
        import polars
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("phivault.polars needs polars: pip install polars") from e
    return polars


def _series(name: str, arrow: Any) -> "pl.Series":
    pl = _pl()
    s = pl.from_arrow(arrow)
    return s.alias(name) if isinstance(s, pl.Series) else pl.Series(name, s)


def tokenize_series(
    s: "pl.Series", field: str, vault: Any, *, errors: str = "raise", report: Any = None
) -> "pl.Series":
    """Tokens of ``s`` as field ``field`` (same name and length, nulls kept)."""
    return _series(s.name, vault.tokenize_many(s.to_arrow(), field, errors=errors, report=report))


def detokenize_series(
    s: "pl.Series",
    field: str,
    vault: Any,
    *,
    view: str = "plaintext",
    errors: str = "raise",
    report: Any = None,
) -> "pl.Series":
    """The values behind the tokens of ``s`` (shown as ``view``)."""
    return _series(
        s.name,
        vault.detokenize_many(s.to_arrow(), field, view=view, errors=errors, report=report),
    )


def pseudonymize_series(
    s: "pl.Series", vault: Any, *, field: str = "pseudonym", errors: str = "raise"
) -> "pl.Series":
    """One-way pseudonyms (``psn_...``) of ``s``: equal values, equal pseudonyms."""
    return tokenize_series(s, field, vault, errors=errors)


def tokenize_frame(
    df: "pl.DataFrame", columns: Mapping[str, str], vault: Any, *, errors: str = "raise"
) -> "pl.DataFrame":
    """``df`` with each column of ``columns`` (name → field) replaced by its tokens."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"no such column(s): {missing}")
    return df.with_columns(
        [tokenize_series(df.get_column(c), f, vault, errors=errors) for c, f in columns.items()]
    )


def detokenize_frame(
    df: "pl.DataFrame",
    columns: Mapping[str, str],
    vault: Any,
    *,
    view: str = "plaintext",
    errors: str = "raise",
) -> "pl.DataFrame":
    """Reverse :func:`tokenize_frame`."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"no such column(s): {missing}")
    return df.with_columns(
        [
            detokenize_series(df.get_column(c), f, vault, view=view, errors=errors)
            for c, f in columns.items()
        ]
    )


def tokenizer(vault: Any, field: str, *, errors: str = "raise") -> Callable[["pl.Series"], "pl.Series"]:
    """A function for ``pl.col(...).map_batches(...)`` (lazy frames, streaming engine)."""
    return lambda s: tokenize_series(s, field, vault, errors=errors)


def detokenizer(
    vault: Any, field: str, *, view: str = "plaintext", errors: str = "raise"
) -> Callable[["pl.Series"], "pl.Series"]:
    """The reverse of :func:`tokenizer`, for ``map_batches``."""
    return lambda s: detokenize_series(s, field, vault, view=view, errors=errors)
