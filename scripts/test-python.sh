#!/usr/bin/env bash
# Builds the Python package (python/) into a wheel, installs it into its own virtualenv (.venv/
# at the repository root, or $PHIVAULT_VENV) and runs its pytest suite. Run by scripts/test-all.sh.
# Needs python3 (>= 3.9) with venv, a Rust toolchain and the Python package index.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${PHIVAULT_VENV:-$root/.venv}
target=${CARGO_TARGET_DIR:-$root/target}
start=$(date +%s)
say() { printf -- '--> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

if [ ! -x "$venv/bin/python" ]; then
  say "creating virtualenv $venv"
  python3 -m venv "$venv"
fi
py=$venv/bin/python
pip() { "$py" -m pip --disable-pip-version-check -q "$@"; }

say "installing build and test tools"
pip install "maturin>=1.8,<2" "pytest>=7" "hypothesis>=6"
# Optional: batch inputs from numpy/pyarrow and the phivault.pandas helpers. Their tests skip
# when these cannot be installed.
pip install numpy pandas pyarrow || echo "numpy/pandas/pyarrow unavailable: their tests will skip"
# The research pipelines (issue 22): Arrow, Polars and a dask.distributed cluster. Required.
# dask's own `distributed` extra pins distributed to dask's version, so a dask release whose
# distributed is not published yet resolves to the newest matching pair (unpinned, pip once
# paired dask 2026.11.0 with distributed 2021.4.1, which cannot import it).
pip install pyarrow polars "dask[dataframe,distributed]"
# FHIR de-identification (issue 20): the output is validated as R4 by fhir.resources. Required.
pip install "fhir.resources>=7,<9"

say "building the abi3 wheel"
wheels=$target/wheels/python
rm -rf "$wheels"
"$venv/bin/maturin" build --release --quiet -m python/Cargo.toml --out "$wheels"
pip install --force-reinstall --no-deps "$wheels"/phivault-*.whl

say "pytest"
# Run from python/ with the `pytest` entry point (not `python -m pytest`), so the working
# directory is not on sys.path and the tests import the installed wheel, not the source tree.
cd python
"$venv/bin/pytest" -q -p no:cacheprovider tests
say "python tests passed"
