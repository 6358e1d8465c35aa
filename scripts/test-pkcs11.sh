#!/usr/bin/env bash
# The PKCS#11 root of trust against SoftHSM2 (issue 11), in the library and in the CLI: installs
# softhsm2 when it is missing and this runs as root, initialises a token in a temporary
# directory (SOFTHSM2_CONF), runs the HSM tests, removes the token. Without SoftHSM2 the tests
# are skipped, loudly. The workspace build has the `pkcs11` feature (the CLI enables it), so
# `--workspace` here reuses what `cargo test --workspace` built.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
find_module() { ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -n1 || true; }
MODULE=$(find_module)
if [ -z "$MODULE" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y softhsm2 || { apt-get update && apt-get install -y softhsm2; }) >/dev/null 2>&1 || true
  MODULE=$(find_module)
fi
if [ -z "$MODULE" ] || ! command -v softhsm2-util >/dev/null; then
  echo "*** SKIPPED: SoftHSM2 is not installed and could not be: the PKCS#11 root is NOT tested ***"
  cargo test --workspace --test pkcs11_root --test pkcs11_cli
  exit 0
fi
TMP=$(mktemp -d -t pvhsm.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$TMP/tokens" >"$TMP/softhsm2.conf"
export SOFTHSM2_CONF=$TMP/softhsm2.conf
# Test-only PINs of a throwaway token.
softhsm2-util --init-token --free --label phivault-test --pin 1234 --so-pin 5678 >/dev/null
export PHIVAULT_PKCS11_MODULE=$MODULE PHIVAULT_PKCS11_TOKEN=phivault-test PHIVAULT_PKCS11_PIN=1234
# The tests are #[ignore]d for runs without a token; here they run.
cargo test --workspace --test pkcs11_root --test pkcs11_cli -- --include-ignored
