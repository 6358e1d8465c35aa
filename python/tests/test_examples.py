"""The examples run and check their own results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_pseudonymize_cohort_example() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "pseudonymize_cohort.py"), "--rows", "300"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "joined on pseudonyms" in out.stdout
    assert "MRN-1" not in out.stdout  # no identifier is printed
