#!/bin/sh
# install-deps.sh — install the Debian packages that building, testing and the
# demo need on a fresh Debian 12 machine that has only Go.
#
# Idempotent and quick: dpkg-query decides what is missing, and apt-get (including
# the slow `apt-get update`) runs only when something is. Extra packages can be
# added with BERTH_EXTRA_DEPS="pkg1 pkg2".
set -eu

PACKAGES="
runc crun containerd hyperfine busybox-static debootstrap
iproute2 util-linux procps gcc libc6-dev git ca-certificates make
jq tar gzip file debian-archive-keyring
skopeo umoci podman docker-registry time curl
containernetworking-plugins iptables iperf3 docker.io isal
${BERTH_EXTRA_DEPS:-}
"

missing=""
for p in $PACKAGES; do
	# "install ok installed" is the only state in which the package is usable;
	# "deinstall ok config-files" (removed, config kept) must count as missing.
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps: all present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing:$missing — run as root (or: sudo $0)" >&2
	exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
