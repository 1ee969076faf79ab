#!/bin/bash
# run.sh — container start-up cost of berth-runtime against crun and runc.
#
#   bench/runtime-startup/run.sh            (or: make bench-runtime)
#
# See README.md next to this script for what is measured and how to read it.
# Exits non-zero only when something fails; a missed target prints MISS.
#
# Environment:
#   RUNTIME      berth-runtime binary (default: bin/berth-runtime)
#   RUNS         timed runs of `run` per runtime (default 50), WARMUP (default 5)
#   SPLIT_RUNS   timed runs per create/start/delete benchmark (default 30)
#   RSS_RUNS     runs under /usr/bin/time for peak RSS (default 10)
#   OUT          where JSON results go (default .cache/bench/runtime-startup/<time>)
#   IGNORE_FAILURES=1  keep going when a runtime fails now and then: timed runs
#                that fail are kept (hyperfine -i) and counted in the summary,
#                untimed set-up steps retry `create` up to 5 times
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SELF="$ROOT/bench/runtime-startup/run.sh"

die() { echo "bench: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Phase 2 (inside `unshare -m`): hide the cgroup2 mount of the hybrid layout so
# that every runtime sees the same v1-only hierarchy (crun refuses hybrid
# setups), then measure. The unmount is private to this mount namespace.
if [ "${1:-}" = "--measure" ]; then
	if mountpoint -q /sys/fs/cgroup/unified; then
		umount /sys/fs/cgroup/unified
	fi
	: "${WORK:?}" "${BUNDLE:?}" "${OUT:?}" "${RUNTIME:?}"
	names=(berth runc crun)
	hf=(hyperfine -N)
	retry=1 # attempts at `create` in the untimed set-up steps
	if [ "${IGNORE_FAILURES:-0}" = 1 ]; then hf+=(-i); retry=5; fi
	declare -A bin=([berth]=$RUNTIME [runc]=$(command -v runc) [crun]=$(command -v crun))
	rt() { echo "${bin[$1]} --root $WORK/root-$1"; } # command prefix per runtime
	id() { echo "bench-$1"; }

	# Leftovers of an interrupted run would make `create` fail.
	for n in "${names[@]}"; do $(rt "$n") delete -f "$(id "$n")" >/dev/null 2>&1 || true; done

	echo "== run: one hyperfine, $RUNS runs each, warmup $WARMUP"
	args=()
	for n in "${names[@]}"; do
		args+=(--command-name "$n" "$(rt "$n") run --bundle $BUNDLE $(id "$n")")
	done
	"${hf[@]}" --warmup "$WARMUP" --runs "$RUNS" --export-json "$OUT/run.json" "${args[@]}" ||
		die "hyperfine run failed: a runtime exited non-zero (hyperfine hides its stderr; the commands are above)"

	# create/start/delete, one hyperfine each for all three runtimes. hyperfine
	# 1.15 (Debian 12) runs --prepare before every timed run but --cleanup only
	# once at the end, so each run's --prepare also removes what the previous
	# run left behind. The untimed helpers are small sh scripts (hyperfine -N
	# splits a command line itself and runs no shell).
	for n in "${names[@]}"; do
		r=$(rt "$n") c=$(id "$n")
		cat >"$WORK/del-$n.sh" <<-EOF
			$r delete -f $c >/dev/null 2>&1 || true
		EOF
		# hyperfine discards a --prepare command's output: keep its stderr.
		cat >"$WORK/created-$n.sh" <<-EOF
			set -e
			exec 2>>$OUT/prepare-errors.log
			. $WORK/del-$n.sh
			n=0
			until $r create --bundle $BUNDLE $c; do
				n=\$((n + 1))
				[ \$n -lt $retry ] || exit 1
				$r delete -f $c >/dev/null 2>&1 || true
			done
		EOF
		# Started, and its `true` has exited: poll state for "stopped".
		cat >"$WORK/stopped-$n.sh" <<-EOF
			set -e
			. $WORK/created-$n.sh
			$r start $c
			i=0
			until $r state $c 2>/dev/null | grep -q '"stopped"'; do
				i=\$((i + 1))
				[ \$i -lt 400 ] || { echo "$c did not stop:" >&2; $r state $c >&2; exit 1; }
				sleep 0.005
			done
		EOF
	done
	cat "$WORK"/del-*.sh >"$WORK/del-all.sh"
	split() { # phase
		local phase=$1 args=() n prep cmd
		for n in "${names[@]}"; do
			case $phase in
			create) prep=del cmd="$(rt "$n") create --bundle $BUNDLE $(id "$n")" ;;
			start) prep=created cmd="$(rt "$n") start $(id "$n")" ;;
			delete) prep=stopped cmd="$(rt "$n") delete $(id "$n")" ;;
			esac
			args+=(--command-name "$n" --prepare "sh $WORK/$prep-$n.sh" "$cmd")
		done
		echo
		echo "== $phase: $SPLIT_RUNS runs each"
		"${hf[@]}" --warmup 3 --runs "$SPLIT_RUNS" --cleanup "sh $WORK/del-all.sh" \
			--export-json "$OUT/$phase.json" "${args[@]}" ||
			die "hyperfine $phase failed; --prepare errors ($OUT/prepare-errors.log):
$(tail -n 20 "$OUT/prepare-errors.log" 2>/dev/null)"
	}
	split create
	split start
	split delete

	echo
	echo "== peak RSS (/usr/bin/time %M, KiB), $RSS_RUNS runs of run"
	for n in "${names[@]}"; do
		: >"$OUT/rss-$n.txt"
		for ((i = 0; i < RSS_RUNS; i++)); do
			if /usr/bin/time -o "$OUT/rss-$n.tmp" -f %M $(rt "$n") run --bundle "$BUNDLE" "$(id "$n")" </dev/null >/dev/null 2>>"$OUT/rss-errors.log"; then
				tail -n1 "$OUT/rss-$n.tmp" >>"$OUT/rss-$n.txt"
			elif [ "${IGNORE_FAILURES:-0}" = 1 ]; then
				echo "$n" >>"$OUT/rss-failures.txt"
				$(rt "$n") delete -f "$(id "$n")" >/dev/null 2>&1 || true
			else
				die "$n run failed under /usr/bin/time: $(tail -n 3 "$OUT/rss-errors.log")"
			fi
		done
		rm -f "$OUT/rss-$n.tmp"
		echo "  $n: $(tr '\n' ' ' <"$OUT/rss-$n.txt")"
	done

	echo
	echo "== BERTH_TIMING=1 sample (berth-runtime run, stage timings on stderr)"
	BERTH_TIMING=1 $(rt berth) run --bundle "$BUNDLE" "$(id berth)" </dev/null >/dev/null 2>"$OUT/berth-timing.txt" ||
		die "berth-runtime run with BERTH_TIMING=1 failed: $(cat "$OUT/berth-timing.txt")"
	sed 's/^/  /' "$OUT/berth-timing.txt"
	exit 0
fi

# ---------------------------------------------------------------------------
# Phase 1: check tools, build the bundle, measure in a private mount namespace,
# report.
[ "$(id -u)" -eq 0 ] || die "needs root (creates namespaces, cgroups, mounts)"
RUNTIME=${RUNTIME:-$ROOT/bin/berth-runtime}
[ -x "$RUNTIME" ] || die "$RUNTIME not found (make build)"
RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME")
for t in hyperfine runc crun jq unshare mountpoint; do
	command -v "$t" >/dev/null || die "$t not found (make deps)"
done
if [ ! -x /usr/bin/time ]; then
	echo "bench: installing GNU time (for peak RSS)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends time >/dev/null ||
		die "apt-get install time failed"
fi

ROOTFS=${BERTH_FIXTURES:-$ROOT/.cache/fixtures}/busybox/rootfs
"$ROOT/scripts/fixtures/busybox-rootfs.sh" "$ROOTFS"

export RUNS=${RUNS:-50} WARMUP=${WARMUP:-5} SPLIT_RUNS=${SPLIT_RUNS:-30} RSS_RUNS=${RSS_RUNS:-10}
export OUT=${OUT:-$ROOT/.cache/bench/runtime-startup/$(date -u +%Y%m%dT%H%M%SZ)}
export RUNTIME
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
export WORK
trap 'rm -rf --one-file-system "$WORK"' EXIT

# The bundle: the busybox fixture with runc's default spec, changed only to
# run `true` without a terminal. Its ociVersion (runc 1.1: 1.0.2-dev) is kept:
# crun 1.8 rejects the 1.3.0 that newer spec generators write.
export BUNDLE=$WORK/bundle
mkdir -p "$BUNDLE"
cp -a "$ROOTFS" "$BUNDLE/rootfs"
rm -f "$BUNDLE/rootfs/.fixture-stamp"
(cd "$BUNDLE" && runc spec)
jq '.process.args = ["true"] | .process.terminal = false' "$BUNDLE/config.json" >"$BUNDLE/config.json.new"
mv "$BUNDLE/config.json.new" "$BUNDLE/config.json"

echo "bench: berth-runtime=$RUNTIME"
echo "bench: $(runc --version | head -1), $(crun --version | head -1), $(hyperfine --version)"
echo "bench: kernel $(uname -r), $(nproc) CPUs; bundle ociVersion $(jq -r .ociVersion "$BUNDLE/config.json")"
echo

unshare -m --propagation private "$SELF" --measure

# ---------------------------------------------------------------------------
# Report.
ms() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median * 1000' "$1"; }
fmt() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
median_file() { sort -n "$1" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo
echo "== summary (medians; JSON in $OUT)"
printf '%-8s %10s %10s %10s %10s %12s\n' runtime "run ms" "create ms" "start ms" "delete ms" "peak RSS KiB"
for n in berth crun runc; do
	printf '%-8s %10s %10s %10s %10s %12s\n' "$n" "$(fmt "$(ms "$OUT/run.json" "$n")")" \
		"$(fmt "$(ms "$OUT/create.json" "$n")")" "$(fmt "$(ms "$OUT/start.json" "$n")")" \
		"$(fmt "$(ms "$OUT/delete.json" "$n")")" "$(median_file "$OUT/rss-$n.txt")"
done

# Failed timed runs (only with IGNORE_FAILURES=1) and failed set-up steps.
failures=""
for n in berth crun runc; do
	for phase in run create start delete; do
		f=$(jq --arg n "$n" '[.results[] | select(.command == $n) | .exit_codes[] | select(. != 0)] | length' "$OUT/$phase.json")
		[ "$f" = 0 ] || failures+=" $n $phase: $f failed timed runs;"
	done
	f=$(grep -cx "$n" "$OUT/rss-failures.txt" 2>/dev/null || true)
	[ "${f:-0}" = 0 ] || failures+=" $n: $f failed RSS runs;"
done
if [ -s "$OUT/prepare-errors.log" ]; then
	failures+=" set-up steps failed $(grep -c . "$OUT/prepare-errors.log") stderr lines (prepare-errors.log):"
	failures+=$'\n'"$(sort "$OUT/prepare-errors.log" | uniq -c | sort -rn | head -n 5)"
fi
if [ -n "$failures" ]; then
	echo
	echo "WARNING: failures (timings include failed runs):$failures"
fi

berth=$(ms "$OUT/run.json" berth)
crun=$(ms "$OUT/run.json" crun)
runc=$(ms "$OUT/run.json" runc)
echo
echo "berth/crun = $(fmt "$(awk -v a="$berth" -v b="$crun" 'BEGIN { print a / b }')")" \
	" berth/runc = $(fmt "$(awk -v a="$berth" -v b="$runc" 'BEGIN { print a / b }')")"
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "PASS" : "MISS" }'; }
echo "target: berth median <= crun median        ($(fmt "$berth") <= $(fmt "$crun") ms): $(verdict "$berth" "$crun")"
half=$(awk -v r="$runc" 'BEGIN { print r / 2 }')
echo "target: berth median <= 0.5 x runc median  ($(fmt "$berth") <= $(fmt "$half") ms): $(verdict "$berth" "$half")"
