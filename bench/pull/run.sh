#!/bin/bash
# run.sh — time to a runnable image: berth pull against podman pull and skopeo copy.
#
#   bench/pull/run.sh                (or: make bench-pull, once wired)
#
# See README.md next to this script for what is measured and how to read it.
# Exits non-zero only when something fails; a missed target prints MISS.
#
# Environment:
#   BERTH        berth binary (default: bin/berth; berth-runtime beside it)
#   RUNS         rounds; each times one cold pull per tool (default 7)
#   TOOLS        which tools to measure (default "berth podman skopeo")
#   BERTH_BASE   another berth binary (a baseline build) measured in the same
#                run as tool "base", with the ratio base/berth printed
#   OUT          where results go (default .cache/bench/pull/<time>)
#   WORK         scratch directory on the disk under test (default: a fresh
#                directory under .cache/bench/pull/, removed at the end)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SELF="$ROOT/bench/pull/run.sh"

die() { echo "bench: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Phase 2 (inside `unshare -m`): hide the host's container state from skopeo
# and podman (tmpfs over /var/lib/containers, where skopeo keeps its blob info
# cache, and /run/libpod), then measure. Both mounts are private to this
# namespace and vanish with it (podman's --runroot, which must be short,
# lives in that /run/libpod); podman's storage and temporary files go to
# $WORK (the same disk as berth's store).
if [ "${1:-}" = "--measure" ]; then
	: "${WORK:?}" "${OUT:?}" "${REF:?}" "${RUNS:?}" "${TOOLS:?}"
	mkdir -p /var/lib/containers /run/libpod
	mount -t tmpfs tmpfs /var/lib/containers
	mount -t tmpfs tmpfs /run/libpod

	# One command line per tool; each run starts from an empty store.
	declare -A cmd dir
	dir[berth]=$WORK/berth
	cmd[berth]="$BERTH --root $WORK/berth/root --state $WORK/berth/state pull -q $REF"
	dir[base]=$WORK/base
	cmd[base]="${BERTH_BASE:-} --root $WORK/base/root --state $WORK/base/state pull -q $REF"
	dir[podman]=$WORK/podman
	cmd[podman]="podman --root $WORK/podman/root --runroot /run/libpod/bench-run --tmpdir $WORK/podman/tmp --storage-driver overlay --events-backend none pull -q --tls-verify=false $REF"
	dir[skopeo]=$WORK/skopeo
	cmd[skopeo]="skopeo copy --quiet --src-tls-verify=false docker://$REF oci:$WORK/skopeo/layout:latest"

	# prep-<tool>.sh: unmount whatever the previous run left mounted (podman's
	# overlay driver bind-mounts its home), move the store aside, recreate the
	# empty directories, flush dirty pages and drop the page cache, so every
	# run downloads, writes and reads cold.
	#
	# The old stores are deleted at the end, not before each run: this VM's
	# ext4 has no journal, and without one ext4 will not reuse an inode
	# deleted in the last minute — every new file's allocation then steps
	# over the thousands of inodes the previous run's store freed (measured:
	# about a tenth of berth's CPU time in find_inode_bit/recently_deleted).
	# That penalty is the benchmark's own cleanup, not pulling, and it would
	# fall on whichever tool creates many files (berth and podman unpack,
	# skopeo writes seven blobs).
	mkdir -p "$WORK/trash"
	for n in $TOOLS; do
		cat >"$WORK/prep-$n.sh" <<-EOF
			set -e
			findmnt -rn -o TARGET | grep -F "${dir[$n]}/" | sort -r | while read -r m; do umount -l "\$m"; done
			if [ -e "${dir[$n]}" ]; then mv "${dir[$n]}" "\$(mktemp -d "$WORK/trash/$n.XXXXXX")/"; fi
			mkdir -p "${dir[$n]}/tmp" "${dir[$n]}/root" "${dir[$n]}/state"
			sync
			echo 3 >/proc/sys/vm/drop_caches
		EOF
	done

	# podman and skopeo honour TMPDIR for their big temporary files (podman
	# writes each layer there before applying it); keep those on this disk.
	export TMPDIR=$WORK/podman/tmp

	# One untimed pull per tool first, to fail loudly before measuring.
	for n in $TOOLS; do
		sh "$WORK/prep-$n.sh"
		# shellcheck disable=SC2086 # the command line splits on spaces
		${cmd[$n]} >"$OUT/check-$n.log" 2>&1 || die "$n failed: ${cmd[$n]}
$(tail -n 20 "$OUT/check-$n.log")"
	done

	# Rounds, not one tool's runs after another's: each round runs every
	# tool once, in an order rotated by one per round. Grouped runs (as
	# hyperfine makes them) drift with the machine: the group measured
	# first came out up to 20% faster or slower than the same build
	# measured last. Wall time from the monotonic clock around the command;
	# CPU (user + sys, children included) and peak RSS from GNU time.
	echo "== time to a runnable image: $RUNS rounds, every tool once per round, caches dropped before every run"
	read -r -a order <<<"$TOOLS"
	: >"$OUT/runs.tsv"
	for ((r = 0; r < RUNS; r++)); do
		for ((k = 0; k < ${#order[@]}; k++)); do
			n=${order[$(((k + r) % ${#order[@]}))]}
			sh "$WORK/prep-$n.sh"
			t0=$(date +%s%N)
			# shellcheck disable=SC2086 # the command line splits on spaces
			/usr/bin/time -o "$OUT/time.tmp" -f '%U %S %M' ${cmd[$n]} >/dev/null 2>>"$OUT/errors.log" ||
				die "$n failed: ${cmd[$n]}: $(tail -n 3 "$OUT/errors.log")"
			t1=$(date +%s%N)
			read -r u s m < <(tail -n1 "$OUT/time.tmp")
			printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" "$u" "$s" "$m" >>"$OUT/runs.tsv"
		done
		printf '  round %d:' $((r + 1))
		awk -v r=$((r + 1)) -v k=${#order[@]} 'NR > (r - 1) * k && NR <= r * k { printf " %s %.2f s", $1, $2 }' "$OUT/runs.tsv"
		echo
	done
	rm -f "$OUT/time.tmp"

	# The last berth run must have produced an image that runs: the time
	# above then includes everything up to a runnable image (pull unpacks).
	if [[ " $TOOLS " == *" berth "* ]]; then
		echo
		echo "== check: the image berth pulled runs"
		# --network none: a network would give this throwaway instance a
		# bridge of its own, which deleting $WORK does not remove.
		$BERTH --root "$WORK/berth/root" --state "$WORK/berth/state" run --rm --network none "$REF" cat /etc/debian_version ||
			die "berth could not run the image it pulled"
		snaps=$(find "$WORK/berth/root/snapshots" -mindepth 1 -maxdepth 3 -type d 2>/dev/null | wc -l)
		echo "  berth store: $(du -sh "$WORK/berth/root" | cut -f1), $snaps directories under snapshots/ (layers unpacked at pull)"
	fi
	for n in $TOOLS; do sh "$WORK/prep-$n.sh" >/dev/null 2>&1 || true; done
	exit 0
fi

# ---------------------------------------------------------------------------
# Phase 1: check tools, build the image, start a registry, push the image with
# skopeo, measure in a private mount namespace, report.
[ "$(id -u)" -eq 0 ] || die "needs root (drops the page cache; podman and berth unpack as root)"
export TOOLS=${TOOLS:-berth podman skopeo}
need=(jq skopeo curl ss shuf unshare findmnt docker-registry go)
[[ " $TOOLS " == *" podman "* ]] && need+=(podman)
for t in "${need[@]}"; do
	command -v "$t" >/dev/null || die "$t not found (make deps)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time, or make deps)"
if [[ " $TOOLS " == *" berth "* ]]; then
	BERTH=${BERTH:-$ROOT/bin/berth}
	[ -x "$BERTH" ] || die "$BERTH not found (make build), or TOOLS=\"podman skopeo\" to leave berth out"
	BERTH=$(cd "$(dirname "$BERTH")" && pwd)/$(basename "$BERTH")
fi
export BERTH=${BERTH:-}
if [ -n "${BERTH_BASE:-}" ]; then
	[ -x "$BERTH_BASE" ] || die "BERTH_BASE=$BERTH_BASE is not executable"
	BERTH_BASE=$(cd "$(dirname "$BERTH_BASE")" && pwd)/$(basename "$BERTH_BASE")
	[[ " $TOOLS " == *" base "* ]] || TOOLS="$TOOLS base"
fi
export BERTH_BASE=${BERTH_BASE:-}

export RUNS=${RUNS:-7}
export OUT=${OUT:-$ROOT/.cache/bench/pull/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT" "$ROOT/.cache/bench/pull"
# Scratch space on the repository's disk, not /tmp: the stores of all three
# tools must be on the same file system for the comparison to be fair.
WORK=${WORK:-$(mktemp -d "$ROOT/.cache/bench/pull/work.XXXXXX")}
export WORK
reg_pid=""
cleanup() {
	# Every `|| true`: under set -e and pipefail, wait's status (the registry
	# dies of SIGTERM) or grep finding no mount would end the trap early and
	# leave $WORK behind.
	if [ -n "$reg_pid" ]; then
		kill "$reg_pid" 2>/dev/null || true
		wait "$reg_pid" 2>/dev/null || true
	fi
	{ findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r | while read -r m; do umount -l "$m"; done; } || true
	rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench: building the Debian test image (cached under .cache/fixtures/images)"
image=$(cd "$ROOT" && go run ./bench/pull/mkimage) || die "mkimage failed"
layout=$(jq -r .dir <<<"$image")
echo "bench: image: $(jq -r .layers <<<"$image") layers," \
	"$(jq -r '.compressed / 1e6 | floor' <<<"$image") MB compressed," \
	"$(jq -r '.unpacked / 1e6 | floor' <<<"$image") MB unpacked"

# A registry on a free loopback port, storage in $WORK.
port=""
for _ in $(seq 20); do
	p=$(shuf -i 20000-60000 -n 1)
	if ! ss -Hltn "sport = :$p" | grep -q .; then port=$p; break; fi
done
[ -n "$port" ] || die "no free port"
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$WORK/registry.yml" >"$OUT/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
	kill -0 "$reg_pid" 2>/dev/null || die "docker-registry exited: $(tail -n 5 "$OUT/registry.log")"
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null || die "docker-registry did not answer on 127.0.0.1:$port"
export REF=127.0.0.1:$port/bench/debian:latest
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:$(jq -r .tag <<<"$image")" "docker://$REF" ||
	die "skopeo could not push the image"

echo "bench: registry $(docker-registry --version 2>/dev/null | head -1) at 127.0.0.1:$port; image $REF"
echo "bench: tools: $TOOLS; ${BERTH:+berth=$BERTH; }${BERTH_BASE:+base=$BERTH_BASE; }$(podman --version 2>/dev/null || true); $(skopeo --version)"
echo "bench: kernel $(uname -r), $(nproc) CPUs, work dir on $(findmnt -no FSTYPE,SOURCE -T "$WORK")"
# A nearly full file system allocates slowly (ext4 here: every tool a fifth
# slower at 99 %), and the runs below add about 6 GB before the cleanup.
used=$(df --output=pcent "$WORK" | tail -n 1 | tr -dc 0-9)
if [ "${used:-0}" -ge 80 ]; then
	echo "bench: WARNING: $(df -h --output=target,avail "$WORK" | tail -n 1 | awk '{print $1 " has " $2}') free (${used}% used): numbers from a nearly full disk are slower for every tool" >&2
fi
echo

unshare -m --propagation private "$SELF" --measure

# ---------------------------------------------------------------------------
# Report.
# col N TOOL: column N of TOOL's runs, one per line.
col() { awk -F '\t' -v n="$2" -v c="$1" '$1 == n { print $c }' "$OUT/runs.tsv"; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
sec() { col 2 "$1" | median; }
fmt() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
range() { col 2 "$1" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f–%.2f", lo, hi }'; }
# CPU time (user + sys, mean of the timed runs): steadier than wall time on a
# shared machine, where a tool that uses both CPUs suffers most from others.
cpu() { awk -F '\t' -v n="$1" '$1 == n { t += $3 + $4; k++ } END { print t / k }' "$OUT/runs.tsv"; }
rss() { col 5 "$1" | median; }

echo
echo "== summary (every run in $OUT/runs.tsv: tool, wall s, user s, sys s, peak RSS KiB)"
printf '%-8s %10s %14s %12s %16s\n' tool "median s" "min–max s" "CPU s" "peak RSS KiB"
for n in $TOOLS; do
	printf '%-8s %10s %14s %12s %16s\n' "$n" "$(fmt "$(sec "$n")")" "$(range "$n")" "$(fmt "$(cpu "$n")")" "$(rss "$n")"
done

if [[ " $TOOLS " == *" berth "* ]]; then
	berth=$(sec berth)
	verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "PASS" : "MISS" }'; }
	echo
	if [[ " $TOOLS " == *" podman "* ]]; then
		r=$(awk -v a="$(sec podman)" -v b="$berth" 'BEGIN { print a / b }')
		echo "podman/berth = $(fmt "$r")   target >= 1.50: $(verdict "$r" 1.5)"
	fi
	if [[ " $TOOLS " == *" skopeo "* ]]; then
		r=$(awk -v a="$(sec skopeo)" -v b="$berth" 'BEGIN { print a / b }')
		echo "skopeo/berth = $(fmt "$r")   target >= 1.00: $(verdict "$r" 1.0)"
	fi
	if [[ " $TOOLS " == *" base "* ]]; then
		r=$(awk -v a="$(sec base)" -v b="$berth" 'BEGIN { print a / b }')
		c=$(awk -v a="$(cpu base)" -v b="$(cpu berth)" 'BEGIN { print a / b }')
		echo "base/berth   = $(fmt "$r")   (CPU $(fmt "$c")): above 1 means this build is faster than BERTH_BASE"
	fi
fi
