#!/usr/bin/env bash
# The arm64 (NEON) kernels, checked on an x86-64 machine: cross-compiled with Debian's
# gcc-aarch64-linux-gnu and run under qemu-user, whose default CPU (max) has the dot-product
# extension; QEMU_CPU=cortex-a53 (no dot product) checks the baseline NEON level too.
# Needs: apt-get install gcc-aarch64-linux-gnu qemu-user
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../Sources/CSluiceKernels
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -Werror -static -I"$src/include" "$src/kernels.c" "$here/check.c" -lm -o "$out/check"
# The package builds C with clang: it must accept the arm64 code too (compile only: the
# toolchain's clang has no arm64 C library to link against here).
clang=$(command -v clang || true)
if [ -n "$clang" ]; then
  "$clang" --target=aarch64-linux-gnu -O2 -Wall -Wextra -Werror -isystem /usr/aarch64-linux-gnu/include \
    -I"$src/include" -c "$src/kernels.c" -o "$out/kernels-clang.o"
  echo "== clang --target=aarch64-linux-gnu: compiles"
fi
echo "== qemu-aarch64 -cpu max"
qemu-aarch64 -cpu max "$out/check"
echo "== qemu-aarch64 -cpu cortex-a53"
qemu-aarch64 -cpu cortex-a53 "$out/check"
echo "== native ($(uname -m))"
cc -O2 -Wall -Wextra -Werror -I"$src/include" "$src/kernels.c" "$here/check.c" -lm -o "$out/native"
"$out/native"
