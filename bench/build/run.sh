#!/bin/bash
# run.sh — `berth build` against `docker build` and `podman build`, in one
# run: cold build, fully cached rebuild, and rebuild after editing one
# source file, on a 3-step busybox Dockerfile (FROM, COPY, RUN).
#
#   bench/build/run.sh            (root; make build && make fixtures first)
#
# Environment:
#   BERTH   berth CLI (default bin/berth; berth-runtime beside it)
#   RUNS    hyperfine runs per measurement (default 15)
#   TOOLS   engines to measure (default "berth podman docker")
#
# Isolation as in bench/run/run.sh: a private mount namespace with tmpfs
# over /var/lib/containers and /run/libpod (podman 4.3 writes there even
# with --root/--runroot); podman on cgroupfs, runc and private storage;
# dockerd (Debian's) on its own socket, data root and exec root. Every
# engine gets the same busybox fixture image.
#
# Cold means "base image present, no build cache" (--no-cache on every
# engine). Docker here has no buildx plugin, so `docker build` is the
# classic builder (DOCKER_BUILDKIT=0); the issue's BuildKit figures for
# docker (cold 650-910 ms, cached 70-175 ms) are quoted for reference.
set -euo pipefail

NEEDS="hyperfine jq skopeo unshare"
. "$(dirname "$(readlink -f "$0")")/../lib/prologue.sh"

RUNS=${RUNS:-15}
TOOLS=${TOOLS:-berth podman docker}
BERTH=${BERTH:-$REPO/bin/berth}
FIXTURE=$REPO/.cache/fixtures/images/busybox
[ -x "$BERTH" ] || die "$BERTH not found (make build)"
[ -f "$FIXTURE/index.json" ] || die "busybox fixture missing (make fixtures)"
"$BERTH" build --help >/dev/null 2>&1 || die "$BERTH has no build command"

WORK=$(mktemp -d /tmp/bench-build.XXXXXX)
tmpfs_over /var/lib/containers /run/libpod
DOCKER_PID=
cleanup() {
	set +e
	if [ -n "$DOCKER_PID" ]; then kill "$DOCKER_PID"; wait "$DOCKER_PID" 2>/dev/null; fi
	findmnt -rn -o TARGET | grep "^$WORK" | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

busybox_archives "$FIXTURE" "$WORK"

CTX=$WORK/ctx
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<'DOCKERFILE'
FROM busybox
COPY app.txt /app/app.txt
RUN wc -c /app/app.txt > /app/size
DOCKERFILE
echo "version 0" >"$CTX/app.txt"

declare -A BUILD
B="$BERTH --root $WORK/berth/root --state $WORK/berth/state"
if [[ " $TOOLS " == *" berth "* ]]; then
	$B load -q -i "$WORK/busybox-oci.tar" >/dev/null
	$B tag "$($B images -q | head -1)" busybox
	BUILD[berth]="$B build -q -t bench $CTX"
fi
P="podman --root $WORK/podman/root --runroot /run/libpod/r --tmpdir $WORK/podman/tmp --storage-driver overlay --cgroup-manager cgroupfs --runtime runc --events-backend none"
if [[ " $TOOLS " == *" podman "* ]]; then
	mkdir -p "$WORK/podman/tmp"
	$P load -q -i "$WORK/busybox-docker.tar" >/dev/null
	BUILD[podman]="$P build -q --layers -t bench $CTX"
	if ! err=$(${BUILD[podman]} 2>&1); then
		# As in bench/run: podman's default rlimits need CAP_SYS_RESOURCE.
		BUILD[podman]="$P build -q --layers --ulimit nofile=$(ulimit -Sn):$(ulimit -Hn) --ulimit nproc=$(ulimit -Su):$(ulimit -Hu) -t bench $CTX"
		if ! err2=$(${BUILD[podman]} 2>&1); then
			echo "bench: podman cannot build here, left out: $err / $err2" >&2
			TOOLS=${TOOLS/podman/}
		fi
	fi
fi
D="docker -H unix://$WORK/docker.sock"
if [[ " $TOOLS " == *" docker "* ]]; then
	start_dockerd --bridge none --iptables=false --ip6tables=false --ip-masq=false
	$D load -q -i "$WORK/busybox-docker.tar" >/dev/null
	BUILD[docker]="env DOCKER_BUILDKIT=0 $D build -q -t bench $CTX"
	if ! err=$(${BUILD[docker]} 2>&1); then
		echo "bench: docker cannot build here, left out: $err" >&2
		TOOLS=${TOOLS/docker/}
	fi
fi

# measure NAME PREPARE CMDSUFFIX: hyperfine over every tool; prints medians.
declare -A MED
measure() {
	local what=$1 prepare=$2 extra=$3 args=() t
	for t in $TOOLS; do
		local cmd=${BUILD[$t]}
		[ -n "$extra" ] && cmd=${cmd/ build / build $extra }
		args+=(-n "$t" "$cmd")
	done
	echo "== $what (hyperfine, $RUNS runs)"
	local prep=()
	[ -n "$prepare" ] && prep=(--prepare "$prepare")
	hyperfine -N --warmup 2 --runs "$RUNS" "${prep[@]}" --export-json "$WORK/$what.json" "${args[@]}" >/dev/null
	for t in $TOOLS; do
		MED[$what.$t]=$(jq -r --arg n "$t" '.results[] | select(.command==$n) | .median * 1000' "$WORK/$what.json")
		printf '  %-7s median %8.1f ms\n' "$t" "${MED[$what.$t]}"
	done
	if [ -n "${MED[$what.berth]:-}" ]; then
		for t in $TOOLS; do
			[ "$t" = berth ] && continue
			printf '  %s / berth: %.1fx\n' "$t" "$(jq -n "${MED[$what.$t]} / ${MED[$what.berth]}")"
		done
	fi
}

measure cold "" "--no-cache"
# Prime every cache with the current content, then measure the no-op.
for t in $TOOLS; do ${BUILD[$t]} >/dev/null; done
measure cached "" ""
# An edit: new content in the copied file before each run (COPY and RUN
# rebuild; FROM stays cached).
measure edited "bash -c 'date +%s%N > $CTX/app.txt'" ""

if [ -n "${MED[cached.berth]:-}" ]; then
	best_cached= best_cold_ok=yes
	for t in $TOOLS; do
		[ "$t" = berth ] && continue
		if [ -z "$best_cached" ] || jq -e -n "${MED[cached.$t]} < $best_cached" >/dev/null; then best_cached=${MED[cached.$t]}; fi
		jq -e -n "${MED[cold.berth]} <= ${MED[cold.$t]}" >/dev/null || best_cold_ok=no
	done
	if [ -n "$best_cached" ]; then
		printf '== targets\n  cached: berth vs the faster peer %.1fx (target >= 3x)\n' "$(jq -n "$best_cached / ${MED[cached.berth]}")"
		echo "  cold: berth not slower than either peer: $best_cold_ok"
	fi
fi
