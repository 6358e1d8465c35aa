"""Sessions, policy and audit: default deny, granted views, audit chain."""

from __future__ import annotations

import pytest

import phivault

POLICY = """
[[principal]]
name = "analyst"
roles = ["research"]

[[rule]]
roles = ["research"]
purposes = ["research"]
actions = ["tokenize", "detokenize"]
fields = ["ssn"]
view = "masked"
"""


def test_session_is_default_deny_and_views_are_limited(vault: phivault.Vault) -> None:
    tok = vault.tokenize("900-12-3456", "ssn")
    vault.set_policy(POLICY)
    assert "analyst" in vault.policy()
    analyst = vault.session("analyst", "research")
    assert analyst.principal == "analyst" and analyst.purpose == "research"
    assert analyst.detokenize(tok, "ssn", view="masked") == "***-**-3456"
    assert analyst.tokenize_many(["900-12-3456", None], "ssn") == [tok, None]
    with pytest.raises(phivault.AccessDenied):
        analyst.detokenize(tok, "ssn")  # plaintext view not granted
    with pytest.raises(phivault.AccessDenied):
        analyst.get("notes", "1")
    with pytest.raises(phivault.AccessDenied):
        vault.session("analyst", "billing").tokenize("900-12-3456", "ssn")
    with pytest.raises(phivault.AccessDenied):
        vault.session("mallory", "research").encrypt(b"x")
    with pytest.raises(phivault.InvalidInput):
        vault.set_policy("this is not toml [[")


def test_audit_chain_verifies(vault: phivault.Vault) -> None:
    vault.put("notes", "1", b"x")
    vault.tokenize("900-12-3456", "ssn")
    report = vault.audit_verify()
    assert report["ok"] is True and report["entries"] >= 2 and report["first_bad"] is None
    seq, mac = vault.audit_head()
    assert seq == report["head_seq"] and mac == report["head_mac"]
    # An anchor recorded elsewhere: the log must extend it (the check is core's).
    assert vault.audit_verify(expect_head=f"{seq}:{mac}")["ok"] is True
    forged = f"{seq}:{'0' * 64}"
    report = vault.audit_verify(expect_head=forged)
    assert report["ok"] is False and "does not extend" in report["problem"]
    with pytest.raises(phivault.InvalidInput):
        vault.audit_verify(expect_head="not-an-anchor")


def test_a_principal_named_owner_gets_no_rights(vault: phivault.Vault) -> None:
    # The owner is the holder of the root key (the plain Vault methods), never a name.
    with pytest.raises(phivault.AccessDenied):
        vault.session("owner", "administration").get("notes", "1")


def test_session_after_close(vault: phivault.Vault) -> None:
    vault.set_policy(
        '[[principal]]\nname = "clerk"\nroles = ["records"]\n'
        '[[rule]]\nroles = ["records"]\nactions = ["put", "get"]\ncollections = ["notes"]\n'
    )
    s = vault.session("clerk", "administration")
    s.put("notes", "1", b"x")
    assert s.get("notes", "1") == b"x"
    vault.close()
    with pytest.raises(phivault.VaultClosed):
        s.get("notes", "1")
    with pytest.raises(phivault.VaultClosed):
        vault.session("clerk", "administration")
