#!/usr/bin/env bash
# Installs the Debian 12 packages berth needs, only when some are missing.
#   scripts/deps.sh        build dependencies (make run)
#   scripts/deps.sh test   build + test dependencies (make test)
#   scripts/deps.sh bench  build + benchmark dependencies (make bench)
#   scripts/deps.sh fuzz   build + libFuzzer dependencies (make fuzz; make test runs a short pass)
set -euo pipefail

build=(gcc make pkg-config libmicrohttpd-dev libssl-dev libjansson-dev libsqlite3-dev
       libyaml-dev libcurl4-openssl-dev libcrypt-dev)
test=(python3 curl skopeo umoci podman containerd jq openssl docker-registry valgrind)
bench=(docker-registry wrk curl python3 skopeo umoci podman openssl iperf3 nginx-light)
# clang's -fsanitize=fuzzer links libclang_rt.fuzzer from Debian's compiler-rt package.
fuzz=(clang libclang-rt-14-dev)

want=("${build[@]}")
case "${1:-}" in
test) want+=("${test[@]}" "${fuzz[@]}") ;;
bench) want+=("${bench[@]}") ;;
fuzz) want+=("${fuzz[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0

if [ "$(id -u)" != 0 ]; then
	echo "berth: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "berth: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx's default site (port 80, every interface) when nginx is installed; the
# bench runs its own nginx on 127.0.0.1 only, so the system one is stopped and disabled.
if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
	if [ -d /run/systemd/system ]; then
		systemctl disable --now nginx >/dev/null 2>&1 || true
	else
		service nginx stop >/dev/null 2>&1 || true
	fi
fi
# Debian enables and starts containerd's system service when systemd runs (it ships no init.d
# script, so without systemd nothing starts); the client tests start their own containerd on a
# private socket, so the system one is stopped and disabled.
if [[ " ${missing[*]} " == *" containerd "* ]] && [ -d /run/systemd/system ]; then
	systemctl disable --now containerd >/dev/null 2>&1 || true
fi
