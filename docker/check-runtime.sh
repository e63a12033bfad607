#!/usr/bin/env bash
# What can be checked of docker/Dockerfile without a Docker engine:
#   1. the release binary built as the build stage builds it (--static-swift-stdlib);
#   2. `ldd`: it links only libc/libm/libstdc++/libgcc, libsqlite3 and libhiredis;
#   3. a plain Debian bookworm (debootstrap --variant=minbase), with exactly the runtime stage's
#      package list installed, runs it copied alone: PING on the protocol port, /health and the
#      dashboard on the HTTP port, a semantic lookup (the compiled-in embedder and lexicon).
# Needs root (debootstrap, chroot) and the network to Debian's mirror. The chroot is kept in
# $SLUICE_RUNTIME_ROOT (default /tmp/sluice-runtime-root) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${SLUICE_RUNTIME_ROOT:-/tmp/sluice-runtime-root}"
runtime_packages=(libsqlite3-0 libhiredis0.14 ca-certificates tini)   # = the Dockerfile's runtime stage

echo "==> release build, static Swift runtime"
swift build -c release --static-swift-stdlib --product sluice
bin="$(swift build -c release --show-bin-path)/sluice"

echo "==> ldd $bin"
ldd "$bin"
unexpected=$(ldd "$bin" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux|libc\.|libm\.|libstdc\+\+|libgcc_s|libsqlite3|libhiredis|libdl\.|libpthread\.|librt\.|libutil\.)' || true)
if [ -n "$unexpected" ]; then echo "unexpected libraries: $unexpected"; exit 1; fi

if [ ! -x "$root/bin/sh" ]; then
  echo "==> debootstrap bookworm (minbase) into $root"
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
fi
echo "==> apt-get install ${runtime_packages[*]} (in the chroot)"
chroot "$root" /bin/sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${runtime_packages[*]} >/dev/null"
install -m 0755 "$bin" "$root/usr/bin/sluice"
# A container has /proc (the Swift runtime reads the command line from /proc/self/cmdline).
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "==> sluice serve in the chroot on $port / $http"
chroot "$root" /usr/bin/tini -s -- /usr/bin/sluice serve --port "$port" --http-port "$http" --data-dir /var/tmp/sluice-data \
  > "$root/var/tmp/sluice.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; umount "$root/proc" 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
test "$(redis-cli -p "$port" ping)" = PONG
redis-cli -p "$port" SEM.SET faq "How do I reset my password?" "Use the link." >/dev/null
test "$(redis-cli -p "$port" SEM.GET faq "How can I reset my password?" | head -1)" = "Use the link."
curl -fsS "http://127.0.0.1:$http/health"; echo
curl -fsS "http://127.0.0.1:$http/" | grep -q "<title>Sluice</title>"
kill -TERM $pid; wait $pid || true
cat "$root/var/tmp/sluice.log"
echo "==> ok: the binary runs on a plain Debian bookworm with only: ${runtime_packages[*]}"
