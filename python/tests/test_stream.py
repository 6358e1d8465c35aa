"""Large files (issue 10): Vault.encrypt_file/decrypt_file by path and
Vault.encrypt_stream/decrypt_stream over binary file-like objects."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

import phivault

SEG = 1 << 16  # default plaintext segment size
TAG = 16
CTX = {"study": "1.2.840.1", "modality": "MR"}


@pytest.fixture
def plain() -> bytes:
    # A few hundred KiB: several segments and a partial last one.
    return os.urandom(5 * SEG + 1234)


def test_file_round_trip(vault: phivault.Vault, tmp_path: Path, plain: bytes) -> None:
    src, enc, dec = tmp_path / "scan.dcm", tmp_path / "scan.pvs", tmp_path / "scan.out"
    src.write_bytes(plain)
    assert vault.encrypt_file(src, enc, CTX) == len(plain)
    ct = enc.read_bytes()
    assert ct[:3] == b"PVS" and plain[:64] not in ct
    assert len(ct) > len(plain) + 6 * TAG
    # str paths work as well as os.PathLike
    assert vault.decrypt_file(str(enc), str(dec), CTX) == len(plain)
    assert dec.read_bytes() == plain
    assert not (tmp_path / "scan.out.partial").exists()


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1])
def test_file_sizes_around_segment(vault: phivault.Vault, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "in").write_bytes(data)
    vault.encrypt_file(tmp_path / "in", tmp_path / "enc")
    assert vault.decrypt_file(tmp_path / "enc", tmp_path / "out") == size
    assert (tmp_path / "out").read_bytes() == data


def test_file_truncated_or_wrong_context_leaves_no_output(
    vault: phivault.Vault, tmp_path: Path, plain: bytes
) -> None:
    src, enc, cut, dec = (tmp_path / n for n in ("in", "enc", "cut", "out"))
    src.write_bytes(plain)
    vault.encrypt_file(src, enc, CTX)
    ct = enc.read_bytes()
    last = len(plain) % SEG + TAG
    for n in (len(ct) - last, len(ct) - 1, len(ct) - last - (SEG + TAG)):
        cut.write_bytes(ct[:n])  # the first cut ends exactly at a segment boundary
        with pytest.raises(phivault.AuthenticationError):
            vault.decrypt_file(cut, dec, CTX)
        assert not dec.exists() and not (tmp_path / "out.partial").exists()
    with pytest.raises(phivault.AuthenticationError):
        vault.decrypt_file(enc, dec, {"study": "1.2.840.2", "modality": "MR"})
    with pytest.raises(phivault.AuthenticationError):
        vault.decrypt_file(enc, dec)  # no context at all
    assert not dec.exists()


def test_file_subject_and_errors(vault: phivault.Vault, tmp_path: Path) -> None:
    src, enc, dec = tmp_path / "in", tmp_path / "enc", tmp_path / "out"
    src.write_bytes(b"genome" * 1000)
    vault.encrypt_file(src, enc, CTX, subject="patient-7")
    vault.decrypt_file(enc, dec, CTX)
    assert dec.read_bytes() == b"genome" * 1000
    vault.forget_subject("patient-7")
    dec.unlink()
    with pytest.raises(phivault.SubjectForgotten):
        vault.decrypt_file(enc, dec, CTX)
    assert not dec.exists()
    with pytest.raises(phivault.StorageError):
        vault.encrypt_file(tmp_path / "missing", enc)
    with pytest.raises(TypeError):
        vault.encrypt_file(123, enc)  # type: ignore[arg-type]


def test_stream_round_trip_bytesio(vault: phivault.Vault, plain: bytes) -> None:
    sealed = io.BytesIO()
    assert vault.encrypt_stream(io.BytesIO(plain), sealed, CTX) == len(plain)
    out = io.BytesIO()
    assert vault.decrypt_stream(io.BytesIO(sealed.getvalue()), out, CTX) == len(plain)
    assert out.getvalue() == plain


def test_stream_and_file_formats_are_the_same(
    vault: phivault.Vault, tmp_path: Path, plain: bytes
) -> None:
    sealed = io.BytesIO()
    vault.encrypt_stream(io.BytesIO(plain), sealed, CTX, subject="p-1")
    (tmp_path / "enc").write_bytes(sealed.getvalue())
    vault.decrypt_file(tmp_path / "enc", tmp_path / "out", CTX)
    assert (tmp_path / "out").read_bytes() == plain
    vault.encrypt_file(tmp_path / "out", tmp_path / "enc2", CTX)
    out = io.BytesIO()
    with open(tmp_path / "enc2", "rb") as f:
        vault.decrypt_stream(f, out, CTX)
    assert out.getvalue() == plain


def test_stream_truncated_and_wrong_context(vault: phivault.Vault, plain: bytes) -> None:
    sealed = io.BytesIO()
    vault.encrypt_stream(io.BytesIO(plain), sealed, CTX)
    ct = sealed.getvalue()
    last = len(plain) % SEG + TAG
    for n in (len(ct) - last, len(ct) - 1, 10):
        with pytest.raises(phivault.AuthenticationError):
            vault.decrypt_stream(io.BytesIO(ct[:n]), io.BytesIO(), CTX)
    with pytest.raises(phivault.AuthenticationError):
        vault.decrypt_stream(io.BytesIO(ct + b"\0"), io.BytesIO(), CTX)
    with pytest.raises(phivault.AuthenticationError):
        vault.decrypt_stream(io.BytesIO(ct), io.BytesIO(), {"study": "other"})


class Chunky(io.RawIOBase):
    """A raw reader that returns at most 1000 bytes per read and counts its calls."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.calls = data, 0, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.calls += 1
        chunk = self.data[self.pos : self.pos + min(n, 1000)]
        self.pos += len(chunk)
        return chunk


class Failing(io.RawIOBase):
    def read(self, n: int = -1) -> bytes:
        raise OSError("disk on fire")

    def write(self, b: bytes) -> int:  # type: ignore[override]
        raise OSError("disk full")


def test_stream_short_reads_chunks_and_exceptions(vault: phivault.Vault, plain: bytes) -> None:
    sealed = io.BytesIO()
    vault.encrypt_stream(Chunky(plain), sealed, CTX)
    out = io.BytesIO()
    vault.decrypt_stream(io.BytesIO(sealed.getvalue()), out, CTX)
    assert out.getvalue() == plain

    class Recorder(io.BytesIO):
        sizes: list[int] = []

        def read(self, n: int | None = -1) -> bytes:  # type: ignore[override]
            self.sizes.append(n if n is not None else -1)
            return super().read(n)

    r = Recorder(plain)
    vault.encrypt_stream(r, io.BytesIO(), CTX)
    assert max(r.sizes) == 1 << 20

    # The reader's / writer's own exception propagates, not a phivault error.
    with pytest.raises(OSError, match="disk on fire"):
        vault.encrypt_stream(Failing(), io.BytesIO(), CTX)
    with pytest.raises(OSError, match="disk on fire"):
        vault.decrypt_stream(Failing(), io.BytesIO(), CTX)
    with pytest.raises(OSError, match="disk full"):
        vault.encrypt_stream(io.BytesIO(plain), Failing(), CTX)
    with pytest.raises(TypeError):
        vault.encrypt_stream(io.StringIO("text"), io.BytesIO(), CTX)


def test_closed_vault(tmp_path: Path, key: bytes) -> None:
    v = phivault.Vault.create(tmp_path / "v", key=key)
    v.close()
    with pytest.raises(phivault.VaultClosed):
        v.encrypt_stream(io.BytesIO(b"x"), io.BytesIO())
    with pytest.raises(phivault.VaultClosed):
        v.decrypt_file(tmp_path / "a", tmp_path / "b")
