#!/usr/bin/env bash
# Installs the Debian packages fedrx needs to build, test and run. Idempotent:
# installs only what is missing, and runs apt-get update only then.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git curl
  libzmq3-dev cppzmq-dev libsodium-dev
  libflatbuffers-dev flatbuffers-compiler
  libhiredis-dev redis-server
  prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  librdkit-dev libboost-dev libeigen3-dev
  libreadstat-dev nlohmann-json3-dev libpugixml-dev libinchi-dev libyaml-cpp-dev
  r-base-core r-cran-pwr
  iproute2
  clang libclang-rt-14-dev
  python3 python3-zmq python3-flatbuffers
  chromium libxml2-dev
  prometheus prometheus-redis-exporter
)
# The manifest tests validate with Node.js packages (tests/k8s); the machine's
# own Node.js is used when there is one, Debian's otherwise.
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
