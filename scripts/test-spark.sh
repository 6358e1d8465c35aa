#!/usr/bin/env bash
# Runs the Spark example (python/examples/spark_tokenize.py: mapInArrow with a phivault
# handle) on a local Spark. Installs a JRE (Debian's default-jre-headless) when java is
# missing, and pyspark into the project's virtualenv. Not part of the README's test command:
# pyspark and a JVM add minutes to every CI run; run it before changing the handle or Arrow
# paths. Needs the wheel scripts/test-python.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${PHIVAULT_VENV:-$PWD/.venv}
if ! command -v java >/dev/null 2>&1; then
  apt-get install -y -q default-jre-headless >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "scripts/test-spark.sh: run scripts/test-python.sh first (no $venv)" >&2
  exit 1
fi
"$venv/bin/python" -m pip --disable-pip-version-check -q install pyspark
cd /
"$venv/bin/python" "$OLDPWD/python/examples/spark_tokenize.py"
