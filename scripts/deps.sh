#!/usr/bin/env bash
# Installs the Debian 12 packages Surety needs, only those missing.
#   scripts/deps.sh          build + run (make run)
#   scripts/deps.sh test     + test tools (make test)
#   scripts/deps.sh bench    + benchmark peers (make bench)
# Package services (nginx, haproxy, prometheus) are never started by the
# install: a temporary policy-rc.d refuses every start, so nothing binds ports
# behind the operator's back.
set -euo pipefail

build=(meson ninja-build pkg-config gcc libc6-dev libfyaml-dev libssl-dev libjansson-dev curl
       libmodsecurity-dev modsecurity-crs libnftables-dev libcurl4-openssl-dev)
test=(clang libclang-rt-14-dev libcmocka-dev python3-pytest prometheus wrk openssl nftables iproute2)
bench=(haproxy nginx-light libnginx-mod-http-modsecurity wrk)

want=("${build[@]}")
case "${1:-}" in
    test) want+=("${test[@]}") ;;
    bench) want+=("${test[@]}" "${bench[@]}") ;;
    "") ;;
    *) echo "usage: $0 [test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ $had_policy -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
