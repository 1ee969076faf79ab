#!/bin/bash
# run.sh — container start-to-exit latency, idle overhead per container and
# `ps` at scale: berth against podman and docker, in one run.
#
#   bench/run/run.sh            (root; make build && make fixtures first)
#
# Environment:
#   BERTH       berth CLI (default bin/berth; berth-runtime and berth-monitor beside it)
#   RUNS        timed runs per command (default 30)
#   ROUNDS      hyperfine invocations the runs are spread over (default RUNS/3)
#   IDLE        idle containers per engine for the RSS measurement (default 10)
#   PS_COUNT    containers for the `berth ps` measurement (default 500)
#   TOOLS       engines to measure (default "berth podman docker")
#   STAGES      BERTH_TIMING runs for berth's per-stage breakdown (default 20; 0: none)
#
# Isolation: the whole benchmark runs in a private mount namespace
# (`unshare -m`) with tmpfs over /var/lib/containers and /run/libpod,
# because podman 4.3 writes there even with --root/--runroot; podman uses
# cgroupfs, runc and private storage; dockerd (Debian's) is started here on
# its own socket, data root and exec root, and busybox is loaded into it
# with `docker load`. Every engine runs the same busybox fixture image.
# Each engine's image store is on the work directory's disk and its
# runtime state on that tmpfs, where a normal host has /run: podman's
# --runroot, dockerd's --exec-root and berth's --state (DESIGN.md: the
# state directory is /run/berth).
#
# Podman's rlimits: podman 4.3 gives every container RLIMIT_NOFILE and
# RLIMIT_NPROC above what this process holds (its own raised limits), and
# raising a hard limit needs CAP_SYS_RESOURCE, which this VM's root lacks
# (runc: "error setting rlimit type 7: operation not permitted"). A private
# containers.conf (CONTAINERS_CONF) sets default_ulimits to 1024:1024 for
# both, which any process may set; no engine's `true` cares.
set -euo pipefail

NEEDS="hyperfine jq skopeo unshare"
. "$(dirname "$(readlink -f "$0")")/../lib/prologue.sh"

RUNS=${RUNS:-30}
STAGES=${STAGES:-20}
IDLE=${IDLE:-10}
PS_COUNT=${PS_COUNT:-500}
TOOLS=${TOOLS:-berth podman docker}
BERTH=${BERTH:-$REPO/bin/berth}
FIXTURE=$REPO/.cache/fixtures/images/busybox
[ -x "$BERTH" ] || die "$BERTH not found (make build)"
[ -x "$(dirname "$BERTH")/berth-monitor" ] || die "berth-monitor not beside $BERTH (make build)"
[ -f "$FIXTURE/index.json" ] || die "busybox fixture missing (make fixtures)"

WORK=$(mktemp -d /tmp/bench-run.XXXXXX)
tmpfs_over /var/lib/containers /run/libpod
DOCKER_PID=
cleanup() {
	set +e
	if [ -n "${B:-}" ]; then $B ps -aq --no-trunc | xargs -r -n 50 $B rm -f >/dev/null 2>&1; fi
	if [ -n "${P:-}" ]; then $P rm -af -t 0 >/dev/null 2>&1; fi
	if [ -n "$DOCKER_PID" ]; then
		$D ps -aq | xargs -r $D rm -f >/dev/null 2>&1
		kill "$DOCKER_PID"; wait "$DOCKER_PID" 2>/dev/null
	fi
	# Whatever is still mounted below the work directory.
	findmnt -rn -o TARGET | grep -e "^$WORK" -e "^/run/libpod/berth" | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# The image, once as an OCI layout tar (berth) and once as a docker-archive.
busybox_archives "$FIXTURE" "$WORK"

declare -A CMD
B="$BERTH --root $WORK/berth/root --state /run/libpod/berth"
if [[ " $TOOLS " == *" berth "* ]]; then
	$B load -q -i "$WORK/busybox-oci.tar" >/dev/null
	$B tag "$($B images -q | head -1)" busybox
	NET=
	$B run --help 2>&1 | grep -q -- '--network' && NET="--network none"
	CMD[berth]="$B run --rm $NET busybox true"
fi
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' >"$WORK/containers.conf"
export CONTAINERS_CONF=$WORK/containers.conf
P="podman --root $WORK/podman/root --runroot /run/libpod/r --tmpdir $WORK/podman/tmp --storage-driver overlay --cgroup-manager cgroupfs --runtime runc --events-backend none"
if [[ " $TOOLS " == *" podman "* ]]; then
	mkdir -p "$WORK/podman/tmp"
	$P load -q -i "$WORK/busybox-docker.tar" >/dev/null
	CMD[podman]="$P run --rm --network none busybox true"
	if ! err=$(${CMD[podman]} 2>&1); then
		echo "bench: podman cannot run a container here, left out: $err" >&2
		TOOLS=${TOOLS/podman/}
	fi
fi
D="docker -H unix://$WORK/docker.sock"
if [[ " $TOOLS " == *" docker "* ]]; then
	start_dockerd --bridge none --iptables=false --ip6tables=false --ip-masq=false
	$D load -q -i "$WORK/busybox-docker.tar" >/dev/null
	CMD[docker]="$D run --rm --network none busybox true"
	if ! err=$(${CMD[docker]} 2>&1); then
		echo "bench: docker cannot run a container here, left out: $err" >&2
		TOOLS=${TOOLS/docker/}
	fi
fi

# The runs are spread over $ROUNDS hyperfine invocations that each time all
# engines in turn: on a shared machine, load from elsewhere then falls on
# every engine alike instead of on whichever ran while it lasted. The
# medians pool the runs of all rounds.
ROUNDS=${ROUNDS:-$(((RUNS + 2) / 3))}
per=$(((RUNS + ROUNDS - 1) / ROUNDS))
echo "== run --rm busybox true (hyperfine, $ROUNDS rounds x $per runs, 1 warmup each)"
args=()
for t in $TOOLS; do args+=(-n "$t" "${CMD[$t]}"); done
for r in $(seq "$ROUNDS"); do
	hyperfine -N --warmup 1 --runs "$per" --export-json "$WORK/run-$r.json" "${args[@]}" >/dev/null
done
declare -A MED
for t in $TOOLS; do
	MED[$t]=$(jq -s -r --arg n "$t" '[.[].results[] | select(.command == $n) | .times[]] | sort
		| (if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end) * 1000' \
		"$WORK"/run-*.json)
	printf '  %-7s median %8.1f ms\n' "$t" "${MED[$t]}"
done
if [ -n "${MED[berth]:-}" ]; then
	best=
	for t in podman docker; do
		[ -n "${MED[$t]:-}" ] || continue
		printf '  %s / berth: %.1fx\n' "$t" "$(jq -n "${MED[$t]} / ${MED[berth]}")"
		if [ -z "$best" ] || jq -e -n "${MED[$t]} < $best" >/dev/null; then best=${MED[$t]}; fi
	done
	[ -n "$best" ] && printf '  berth vs the faster peer: %.1fx (target >= 5x)\n' "$(jq -n "$best / ${MED[berth]}")"
fi

if [[ " $TOOLS " == *" berth "* ]] && [ "$STAGES" -gt 0 ] && command -v python3 >/dev/null; then
	# BERTH_TIMING=1 makes the CLI, berth-monitor and berth-runtime print a
	# line per stage with the monotonic clock; per stage, the median time
	# since the previous line (of any process) over $STAGES runs.
	echo "== berth run --rm stages (BERTH_TIMING, median of $STAGES runs; ms since the previous mark)"
	mkdir -p "$WORK/stages"
	for i in $(seq "$STAGES"); do BERTH_TIMING=1 ${CMD[berth]} 2>"$WORK/stages/$i" >/dev/null; done
	python3 "$REPO/bench/lib/stages.py" "$WORK/stages"
fi

# rss PATTERN: total VmRSS (kB) of processes whose argv[0] basename matches.
rss() {
	local total=0 p
	for p in /proc/[0-9]*; do
		local exe
		exe=$( (tr "\0" " " <"$p/cmdline") 2>/dev/null | awk "{print \$1}") || continue
		[[ "$(basename "$exe" 2>/dev/null)" =~ $1 ]] || continue
		local kb
		kb=$(awk '/^VmRSS:/ {print $2}' "$p/status" 2>/dev/null || echo 0)
		total=$((total + ${kb:-0}))
	done
	echo $total
}

echo "== idle containers: host RSS per container beyond the workload ($IDLE x sleep)"
for t in $TOOLS; do
	case $t in
	berth) start="$B run -d $NET busybox sleep 1000"; pat='^berth-monitor$' ;;
	podman) start="$P run -d --network none busybox sleep 1000"; pat='^conmon$' ;;
	docker) start="$D run -d --network none busybox sleep 1000"; pat='^containerd-shim' ;;
	esac
	before=$(rss "$pat")
	for _ in $(seq "$IDLE"); do $start >/dev/null; done
	sleep 2
	after=$(rss "$pat")
	printf '  %-7s %6.2f MB per container (%s)\n' "$t" "$(jq -n "($after - $before) / $IDLE / 1024")" "${pat//[\^\$]/}"
	case $t in
	berth) $B ps -q --no-trunc | xargs -r $B rm -f >/dev/null ;;
	podman) $P rm -af -t 0 >/dev/null ;;
	docker) $D ps -q | xargs -r $D rm -f >/dev/null ;;
	esac
done

if [[ " $TOOLS " == *" berth "* ]]; then
	echo "== berth ps -a with $PS_COUNT containers (target < 100 ms)"
	seq "$PS_COUNT" | xargs -P 16 -I{} $B create busybox true >/dev/null
	for _ in $(seq 10); do $B run -d $NET busybox sleep 1000 >/dev/null; done
	n=$($B ps -aq | wc -l)
	hyperfine -N --warmup 3 --runs 20 --export-json "$WORK/ps.json" "$B ps -a" >/dev/null
	printf '  berth ps -a (%d containers, 10 running): median %.1f ms\n' "$n" "$(jq '.results[0].median * 1000' "$WORK/ps.json")"
	if [[ " $TOOLS " == *" docker "* ]]; then
		seq 50 | xargs -P 8 -I{} $D create busybox true >/dev/null
		hyperfine -N --warmup 3 --runs 20 --export-json "$WORK/dps.json" "$D ps -a" >/dev/null
		printf '  docker ps -a (50 containers): median %.1f ms\n' "$(jq '.results[0].median * 1000' "$WORK/dps.json")"
	fi
fi
