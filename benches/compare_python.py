#!/usr/bin/env python3
"""Issue 7's comparison: the same three workloads with phivault's Python package and with what
a Python user would pick instead, with ratios.

Workloads (N = 100k unless --n is given):
  0. issue 19's per-call pair: one call per 64-byte record, a fresh data key per record, the
     record id as context: encrypt N records, then decrypt them (goals: phivault >= 1.5x and
     >= 1.2x the hand-made `cryptography` envelope);
  1. envelope-encrypt N 64-byte fields bound to a context, a fresh data key per field;
  2. N SSNs (9 digits) format-preserving;
  3. N consistent tokens (same value -> same token).

Peers:
  - `cryptography` AESGCM: a hand-made envelope (fresh DEK per field, DEK wrapped by a KEK with
    AES-GCM, context as AAD), and raw AESGCM under one key (the limit, no envelope);
  - Google `tink`: KmsEnvelopeAead with a local AES256_GCM KEK (DEK per message);
  - `aws-encryption-sdk` with a raw AES wrapping key (RawMasterKey; its keyrings need the
    separate material-providers library), encryption context as AAD;
  - `ff3` (FF3-1) and `pyffx` (FFX over HMAC-SHA1, not a NIST mode) for format-preserving;
  - stdlib `hmac` (HMAC-SHA256) for consistent one-way tokens, and a hand-made vaulted token
    store in sqlite3 (HMAC index -> random token, value under AESGCM, one commit per batch).

phivault runs in the project's virtualenv (built by scripts/test-python.sh), the peers in
benches/.venv: this script re-invokes itself there with --phivault-worker and reads JSON back.

    benches/.venv/bin/python benches/compare_python.py [--n N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CTX = {"record": "4711", "field": "note"}


def timed(fn, n):
    """Runs fn() once and returns items per second for n items."""
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def best(fn, n, repeat=2):
    return max(timed(fn, n) for _ in range(repeat))


def fields(n):
    return [(b"%08d" % i) * 8 for i in range(n)]  # 64 bytes each


def record_ids(n):
    return ["rec-%07d" % i for i in range(n)]


def ssns(n, base=0):
    return ["%09d" % ((base + i) * 7919 % 1_000_000_000) for i in range(n)]


# ---------------------------------------------------------------------------- phivault ---


def phivault_worker(n):
    import phivault

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        v = phivault.Vault.create(os.path.join(tmp, "v"), key=secrets.token_bytes(32))
        data = fields(n)
        ids = record_ids(n)
        out["encrypt_call"] = best(
            lambda: [v.encrypt(d, {"record": r}) for d, r in zip(data, ids)], n
        )
        sealed = [v.encrypt(d, {"record": r}) for d, r in zip(data, ids)]
        out["decrypt_call"] = best(
            lambda: [v.decrypt(c, {"record": r}) for c, r in zip(sealed, ids)], n
        )
        out["encrypt_loop"] = best(lambda: [v.encrypt(d, CTX) for d in data], n)
        if hasattr(v, "encrypt_many"):
            out["encrypt_many"] = best(lambda: v.encrypt_many(data, CTX), n)
        values = ssns(n)
        out["ff1_loop"] = best(lambda: [v.tokenize(s, "ssn") for s in values], n)
        out["ff1_many"] = best(lambda: v.tokenize_many(values, "ssn"), n)
        ids = ["patient-%d" % i for i in range(n)]
        out["pseudonym_loop"] = best(lambda: [v.pseudonym(s) for s in ids], n)
        out["pseudonym_many"] = best(lambda: v.tokenize_many(ids, "pseudonym"), n)
        # Vaulted consistent tokens, new values each run, durable (one sync per batch).
        runs = []
        for r in range(2):
            mrns = ["M%09d" % (r * n + i) for i in range(n)]
            runs.append(timed(lambda: v.tokenize_many(mrns, "mrn"), n))
        out["vaulted_many"] = max(runs)
        v.close()
    print(json.dumps(out))


def run_phivault(n):
    py = os.environ.get("PHIVAULT_PYTHON", os.path.join(ROOT, ".venv", "bin", "python"))
    try:
        res = subprocess.run(
            [py, os.path.abspath(__file__), "--phivault-worker", "--n", str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, "stderr", "") or str(e)
        print(f"phivault worker failed ({py}): {err.strip()[-400:]}", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------- peers ---


def peer_cryptography(n, res):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = fields(n)
    aad = json.dumps(CTX, sort_keys=True).encode()
    kek = AESGCM(AESGCM.generate_key(256))

    def envelope():
        out = []
        for d in data:
            dek = os.urandom(32)
            n1, n2 = os.urandom(12), os.urandom(12)
            ct = AESGCM(dek).encrypt(n1, d, aad)
            wrapped = kek.encrypt(n2, dek, aad)
            out.append(n2 + wrapped + n1 + ct)
        return out

    res["cryptography AESGCM, hand-made envelope (DEK per field)"] = ("encrypt", best(envelope, n))

    # Issue 19's per-call pair: the record id as AAD, a fresh DEK per record.
    ids = record_ids(n)

    def seal_records():
        out = []
        for d, r in zip(data, ids):
            aad = r.encode()
            dek = os.urandom(32)
            n1, n2 = os.urandom(12), os.urandom(12)
            ct = AESGCM(dek).encrypt(n1, d, aad)
            wrapped = kek.encrypt(n2, dek, aad)
            out.append(n2 + wrapped + n1 + ct)
        return out

    sealed = seal_records()

    def open_records():
        out = []
        for blob, r in zip(sealed, ids):
            aad = r.encode()
            dek = kek.decrypt(blob[:12], blob[12:60], aad)
            out.append(AESGCM(dek).decrypt(blob[60:72], blob[72:], aad))
        return out

    assert open_records()[0] == data[0]
    name = "cryptography AESGCM, hand-made envelope (DEK per record, id as AAD)"
    res[name + " encrypt"] = ("encrypt_call", best(seal_records, n))
    res[name + " decrypt"] = ("decrypt_call", best(open_records, n))
    one = AESGCM(AESGCM.generate_key(256))

    def raw():
        return [one.encrypt(os.urandom(12), d, aad) for d in data]

    res["cryptography AESGCM, one key, no envelope (limit)"] = ("encrypt", best(raw, n))


def peer_tink(n, res):
    import tink
    from tink import aead

    aead.register()
    kek = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
    env = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, kek)
    data = fields(n)
    aad = json.dumps(CTX, sort_keys=True).encode()
    res["tink KmsEnvelopeAead, local AES256_GCM KEK"] = (
        "encrypt",
        best(lambda: [env.encrypt(d, aad) for d in data], n),
    )


def peer_aws(n, res):
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

    key = os.urandom(32)

    class LocalKeys(RawMasterKeyProvider):
        provider_id = "local"

        def _get_raw_key(self, key_id):
            return WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=key,
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            )

    provider = LocalKeys()
    provider.add_master_key(b"kek")
    client = aws_encryption_sdk.EncryptionSDKClient()
    # The SDK is slow per message: measure a fiftieth of N and report items/s.
    m = max(1000, n // 50)
    data = fields(m)

    def run():
        return [
            client.encrypt(source=d, key_provider=provider, encryption_context=CTX)[0]
            for d in data
        ]

    res["aws-encryption-sdk, raw AES wrapping key"] = ("encrypt", best(run, m, repeat=1))


def peer_ff3(n, res):
    from ff3 import FF3Cipher

    c = FF3Cipher(secrets.token_hex(32), secrets.token_hex(7))
    values = ssns(n)
    res["ff3 (FF3-1, AES-256)"] = ("fpe", best(lambda: [c.encrypt(s) for s in values], n))


def peer_pyffx(n, res):
    import pyffx

    e = pyffx.Integer(secrets.token_bytes(32), length=9)
    values = [int(s) for s in ssns(n)]
    res["pyffx (FFX, HMAC-SHA1 rounds)"] = ("fpe", best(lambda: [e.encrypt(x) for x in values], n))


def peer_hmac(n, res):
    import hashlib
    import hmac

    key = secrets.token_bytes(32)
    ids = ["patient-%d" % i for i in range(n)]
    res["stdlib hmac SHA-256 (one-way)"] = (
        "pseudonym",
        best(lambda: [hmac.new(key, s.encode(), hashlib.sha256).hexdigest()[:26] for s in ids], n),
    )


def peer_sqlite_vault(n, res):
    import hashlib
    import hmac
    import sqlite3

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = secrets.token_bytes(32)
    aes = AESGCM(AESGCM.generate_key(256))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(os.path.join(tmp, "t.db"))
        db.execute("pragma journal_mode=wal")
        db.execute("pragma synchronous=full")
        db.execute("create table idx (h blob primary key, token text unique, value blob)")
        for r in range(2):
            values = ["M%09d" % (r * n + i) for i in range(n)]

            def run():
                out = []
                for v in values:
                    h = hmac.new(key, v.encode(), hashlib.sha256).digest()
                    row = db.execute("select token from idx where h = ?", (h,)).fetchone()
                    if row:
                        out.append(row[0])
                        continue
                    tok = "".join(secrets.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in v)
                    nonce = os.urandom(12)
                    ct = nonce + aes.encrypt(nonce, v.encode(), tok.encode())
                    db.execute("insert into idx values (?, ?, ?)", (h, tok, ct))
                    out.append(tok)
                db.commit()
                return out

            runs.append(timed(run, n))
        db.close()
    res["hand-made vault: sqlite3 (WAL, synchronous=full) + HMAC index + AESGCM"] = (
        "vaulted",
        max(runs),
    )


PEERS = [
    ("cryptography", peer_cryptography),
    ("tink", peer_tink),
    ("aws-encryption-sdk", peer_aws),
    ("ff3", peer_ff3),
    ("pyffx", peer_pyffx),
    ("hmac", peer_hmac),
    ("sqlite3+cryptography", peer_sqlite_vault),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--json", help="write the results here as JSON")
    ap.add_argument("--phivault-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phivault_worker:
        return phivault_worker(args.n)

    n = args.n
    pv = run_phivault(n)
    peers, missing = {}, {}
    for name, fn in PEERS:
        try:
            fn(n, peers)
        except ImportError as e:
            missing[name] = f"not installed: {e}"
        except Exception as e:  # a peer that fails is reported, not fatal
            missing[name] = f"failed: {type(e).__name__}: {e}"

    # phivault again after the peers, best of both runs: the machine's state is not held
    # against whichever side ran first.
    again = run_phivault(n)
    if pv and again:
        pv = {k: max(v, again.get(k) or 0) for k, v in pv.items()}
    ours = {
        "encrypt_call": ("phivault encrypt, one call per record", (pv or {}).get("encrypt_call")),
        "decrypt_call": ("phivault decrypt, one call per record", (pv or {}).get("decrypt_call")),
        "encrypt": ("phivault encrypt (loop)", (pv or {}).get("encrypt_loop")),
        "fpe": ("phivault tokenize_many ssn (FF1)", (pv or {}).get("ff1_many")),
        "pseudonym": ("phivault tokenize_many pseudonym", (pv or {}).get("pseudonym_many")),
        "vaulted": ("phivault tokenize_many mrn (vaulted, durable)", (pv or {}).get("vaulted_many")),
    }
    rows = []
    print(f"N = {n}; items/s; ratio = phivault / peer (> 1: phivault faster)")
    for kind, title in [
        ("encrypt_call", "per call: encrypt 64 B records, record id as context (goal ≥ 1.5×)"),
        ("decrypt_call", "per call: decrypt 64 B records, record id as context (goal ≥ 1.2×)"),
        ("encrypt", "envelope-encrypt 64 B fields"),
        ("fpe", "format-preserving 9-digit SSNs"),
        ("pseudonym", "consistent one-way tokens"),
        ("vaulted", "consistent vaulted (reversible) tokens, new values"),
    ]:
        our_name, our = ours[kind]
        print(f"\n{title}\n  {our_name:70s} {our or 0:>12,.0f}/s")
        for name, (k, rate) in peers.items():
            if k != kind:
                continue
            ratio = (our / rate) if our else None
            print(f"  {name:70s} {rate:>12,.0f}/s  ratio {ratio:.2f}" if ratio else f"  {name:70s} {rate:>12,.0f}/s")
            rows.append({"workload": title, "peer": name, "peer_per_s": rate,
                         "phivault": our_name, "phivault_per_s": our, "ratio": ratio})
    if pv:
        print("\nphivault, all figures:", json.dumps(pv))
    for name, why in missing.items():
        print(f"\n{name}: {why}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": n, "phivault": pv, "rows": rows, "missing": missing}, f, indent=1)


if __name__ == "__main__":
    main()
