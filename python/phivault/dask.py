"""Dask helpers: tokenize and detokenize columns of a Dask DataFrame on a ``dask.distributed``
cluster, through a picklable :class:`~phivault.handle.VaultHandle`.

Each partition runs ``handle.open()`` in its worker process (opened once per process, cached)
and hands every column to one Arrow batch call: one policy decision and one audit entry per
partition and column, made as the handle's principal and purpose. For a directory vault the
entries are spooled by the workers and merged into the vault's chain by
``vault.end_job(handle.job_id)`` in the owner process; for a PostgreSQL vault each is written
to the shared chain before its batch returns.

Example::

    import dask.dataframe as dd, phivault, phivault.dask as pvdd
    h = vault.handle(principal="etl", purpose="research")
    out = pvdd.tokenize_columns(dd.read_parquet("in/"), {"ssn": "ssn"}, h)
    out.to_parquet("out/")
    vault.end_job(h.job_id)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dask.dataframe as dd

    from phivault.handle import VaultHandle

__all__ = ["tokenize_columns", "detokenize_columns", "pseudonymize_columns"]


def _apply_partition(pdf: Any, columns: Mapping[str, str], handle: "VaultHandle", op: str,
                     kwargs: dict[str, Any]) -> Any:
    import pandas as pd
    import pyarrow as pa

    worker = handle.open()
    call = getattr(worker, op)
    out = pdf.copy()
    for col, field in columns.items():
        arr = pa.array(pdf[col], from_pandas=True, type=pa.large_string())
        res = call(arr, field, **kwargs)
        col_out = res.to_pandas(
            types_mapper={pa.string(): pd.StringDtype("pyarrow"),
                          pa.large_string(): pd.StringDtype("pyarrow")}.get
        )
        col_out.index = pdf.index  # positions, not labels: the partition's own index
        out[col] = col_out
    return out


def _map(ddf: "dd.DataFrame", columns: Mapping[str, str], handle: "VaultHandle", op: str,
         **kwargs: Any) -> "dd.DataFrame":
    import pandas as pd

    missing = [c for c in columns if c not in ddf.columns]
    if missing:
        raise KeyError(f"no such column(s): {missing}")
    meta = ddf._meta.copy()
    for col in columns:
        meta[col] = pd.Series([], dtype=pd.StringDtype("pyarrow"))
    return ddf.map_partitions(_apply_partition, dict(columns), handle, op, kwargs, meta=meta)


def tokenize_columns(ddf: "dd.DataFrame", columns: Mapping[str, str], handle: "VaultHandle", *,
                     errors: str = "raise") -> "dd.DataFrame":
    """``ddf`` with each column of ``columns`` (name → field) replaced by its tokens."""
    return _map(ddf, columns, handle, "tokenize_many", errors=errors)


def detokenize_columns(ddf: "dd.DataFrame", columns: Mapping[str, str], handle: "VaultHandle", *,
                       view: str = "plaintext", errors: str = "raise") -> "dd.DataFrame":
    """Reverse :func:`tokenize_columns`."""
    return _map(ddf, columns, handle, "detokenize_many", view=view, errors=errors)


def pseudonymize_columns(ddf: "dd.DataFrame", columns: list[str], handle: "VaultHandle", *,
                         field: str = "pseudonym") -> "dd.DataFrame":
    """One-way pseudonyms of ``columns``."""
    return tokenize_columns(ddf, {c: field for c in columns}, handle)
