#!/usr/bin/env bash
# The C API's tests (run by scripts/test-all.sh, or alone):
#   1. build libphivault (.so and .a, release) and check that the checked-in header
#      ffi/include/phivault.h is exactly what the pinned cbindgen generates (unit test
#      header_is_current, with the other Rust unit tests of the ffi crate);
#   2. compile the C tests (ffi/tests/*.c) and the example with -Wall -Wextra -Werror, via the
#      pkg-config file;
#   3. run the tests under AddressSanitizer + UBSan, linked against the static library, and
#      under valgrind (--leak-check=full --error-exitcode=1);
#   4. run the example, plain and under valgrind.
# Needs gcc, pkg-config and valgrind; installs them with apt-get when missing and root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LIB=$TARGET/release
step() { printf '\n--> %s\n' "$*"; }

missing=()
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test-c: missing ${missing[*]} (install them, or run as root with apt-get)" >&2
    exit 1
  fi
fi

step "build libphivault (release)"
cargo build --release -p phivault-ffi
test -f "$LIB/libphivault.so" && test -f "$LIB/libphivault.a"

if [ -n "${PV_WORKSPACE_TESTED:-}" ]; then
  step "header drift check and ffi unit tests: ran in cargo test --workspace (test-all.sh)"
else
  step "header drift check and ffi unit tests"
  cargo test -p phivault-ffi
fi

WORK=$(mktemp -d -t pv-c.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# pkg-config file for the build tree.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
mkdir -p "$WORK/pkgconfig"
sed -e "s|@PREFIX@|$ROOT|" -e "s|@LIBDIR@|$LIB|" -e "s|@INCLUDEDIR@|$ROOT/ffi/include|" \
  -e "s|@VERSION@|$version|" ffi/phivault.pc.in >"$WORK/pkgconfig/phivault.pc"
export PKG_CONFIG_PATH=$WORK/pkgconfig
CFLAGS="-std=c11 -g -O1 -Wall -Wextra -Werror -Wpedantic $(pkg-config --cflags phivault) -I ffi/tests"
LIBS_SHARED="$(pkg-config --libs phivault) -lpthread -ldl -lm"
LIBS_STATIC="$LIB/libphivault.a -lpthread -ldl -lm"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Only definite leaks fail: sled's global I/O thread pool keeps its threads (and their
# thread-local storage, "possibly lost") until the process exits, by design.
VALGRIND=(valgrind -q --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite
  --show-leak-kinds=definite --suppressions="$ROOT/ffi/tests/valgrind.supp")

tests=()
for src in ffi/tests/*.c; do
  name=$(basename "$src" .c)
  tests+=("$name")
  step "compile $name (shared + sanitizers, static + sanitizers, shared plain)"
  # shellcheck disable=SC2086
  gcc $CFLAGS $SAN "$src" $LIBS_SHARED -o "$WORK/$name.asan"
  # shellcheck disable=SC2086
  gcc $CFLAGS $SAN "$src" $LIBS_STATIC -o "$WORK/$name.static"
  # shellcheck disable=SC2086
  gcc $CFLAGS "$src" $LIBS_SHARED -o "$WORK/$name"
done

for name in "${tests[@]}"; do
  step "$name under AddressSanitizer + UBSan (shared library)"
  rm -rf "$WORK/scratch" && mkdir "$WORK/scratch"
  LD_LIBRARY_PATH=$LIB "$WORK/$name.asan" "$WORK/scratch"
  step "$name under AddressSanitizer + UBSan (static library)"
  rm -rf "$WORK/scratch" && mkdir "$WORK/scratch"
  "$WORK/$name.static" "$WORK/scratch"
  step "$name under valgrind"
  rm -rf "$WORK/scratch" && mkdir "$WORK/scratch"
  LD_LIBRARY_PATH=$LIB "${VALGRIND[@]}" "$WORK/$name" "$WORK/scratch"
done

step "example: build with the documented command, run twice (create, then reopen)"
# shellcheck disable=SC2086
gcc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags phivault) ffi/examples/clinic.c \
  $LIBS_SHARED -o "$WORK/clinic"
mkdir "$WORK/example"
(cd "$WORK/example" && LD_LIBRARY_PATH=$LIB "$WORK/clinic" && LD_LIBRARY_PATH=$LIB "$WORK/clinic")
step "example under valgrind (fresh vault, no suppressions)"
rm -rf "$WORK/example" && mkdir "$WORK/example"
(cd "$WORK/example" && LD_LIBRARY_PATH=$LIB valgrind -q --leak-check=full --error-exitcode=1 \
  --errors-for-leak-kinds=definite --show-leak-kinds=definite "$WORK/clinic")

step "C API: all tests passed"
