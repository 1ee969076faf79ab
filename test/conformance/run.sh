#!/usr/bin/env bash
# run.sh — run the OCI runtime-tools validation suite against OCI runtimes and
# compare them, assertion by assertion.
#
#   test/conformance/run.sh [RUNTIME...]
#
# RUNTIME is a path or a command name (e.g. bin/berth-runtime, runc). Without
# arguments: $CONFORMANCE_RUNTIMES, else "bin/berth-runtime runc".
#
# Every assertion that the baseline runtime passes must also pass for every other
# runtime; otherwise the run fails and lists those regressions. See README.md in
# this directory for the details and the environment variables.
#
# Exit status: 0 no regressions, 1 regressions, 2 setup or usage error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CONFORMANCE_CACHE:-$ROOT/.cache}
RT_MODULE=github.com/opencontainers/runtime-tools
# v0.9.0 (@latest) has no go.mod; this pseudo-version is a later commit that does.
RT_VERSION=${RUNTIME_TOOLS_VERSION:-v0.9.1-0.20260316125833-8a4db579f5c8}
SUITE=$CACHE/runtime-tools/$RT_VERSION
OUT=${CONFORMANCE_OUT:-$CACHE/conformance}
JOBS=${CONFORMANCE_JOBS:-2}
TIMEOUT=${CONFORMANCE_TIMEOUT:-60}
TESTS=${CONFORMANCE_TESTS:-}
BASELINE=${CONFORMANCE_BASELINE:-}

# Tests left out of the regression comparison (still run and counted), each with
# the reason. Keep this empty: an entry here is a known gap, not a fix.
declare -A EXEMPT=(
	# [test_name]="reason"
)

# Tests that put the container in the fixed cgroup /cgrouptest (runtime-tools'
# cgroups.AbsCgroupPath / RelCgroupPath) cannot run at the same time as each other;
# they take a lock. Everything else runs up to $JOBS at a time.
is_cgroup_test() {
	case "$1" in linux_cgroups_* | delete_resources | delete_only_create_resources) return 0 ;; esac
	return 1
}

say() { printf '%s\n' "$*" >&2; }
die() { say "conformance: $*"; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (the suite creates containers)"
case "$JOBS" in '' | *[!0-9]* | 0) die "CONFORMANCE_JOBS must be a positive integer" ;; esac
for tool in go jq unshare timeout flock tar; do
	command -v "$tool" >/dev/null || die "missing tool: $tool (make deps)"
done

# ---------------------------------------------------------------------------
# Build the suite once into $SUITE: runtimetest, bin/<test>, rootfs tarball.
# ---------------------------------------------------------------------------
build_suite() {
	[ -f "$SUITE/.complete" ] && return 0
	mkdir -p "$CACHE/runtime-tools"
	exec 8>"$CACHE/runtime-tools/.lock"
	flock 8
	if [ -f "$SUITE/.complete" ]; then exec 8>&-; return 0; fi

	local start tmp dir arch
	start=$SECONDS
	say "conformance: building runtime-tools $RT_VERSION (once; cached in ${SUITE#"$ROOT"/})"
	tmp=$(mktemp -d "$CACHE/runtime-tools/.build.XXXXXX")
	# The suite is not part of our module: build it in its own copy with its own
	# go.mod, ignoring any workspace, and let -mod=mod resolve dependencies through
	# the module proxy (the shipped vendor/ directory is incomplete, so drop it).
	dir=$(cd "$tmp" && env GOFLAGS= GOWORK=off go mod download -json "$RT_MODULE@$RT_VERSION" | jq -r '.Error // .Dir')
	[ -d "$dir" ] || { rm -rf "$tmp"; die "go mod download $RT_MODULE@$RT_VERSION: $dir"; }
	cp -r "$dir" "$tmp/src"
	chmod -R u+w "$tmp/src"
	rm -rf "$tmp/src/vendor"
	mkdir -p "$tmp/bin"
	if ! suite_go_build "$tmp"; then
		say "conformance: build failed; retrying after 'go mod tidy' in the suite's copy"
		(cd "$tmp/src" && env GOFLAGS=-mod=mod GOWORK=off go mod tidy) &&
			suite_go_build "$tmp" || { rm -rf "$tmp"; die "building runtime-tools failed"; }
	fi

	# Each test untars rootfs-$GOARCH.tar.gz from its working directory.
	arch=$(go env GOARCH)
	if [ -f "$tmp/src/rootfs-$arch.tar.gz" ]; then
		cp "$tmp/src/rootfs-$arch.tar.gz" "$tmp/"
	elif [ -f "$tmp/src/validation/rootfs-$arch.tar.gz" ]; then
		cp "$tmp/src/validation/rootfs-$arch.tar.gz" "$tmp/"
	else
		say "conformance: suite ships no rootfs-$arch.tar.gz; making one from the busybox fixture"
		"$ROOT/scripts/fixtures/busybox-rootfs.sh"
		tar -C "$CACHE/fixtures/busybox/rootfs" --exclude=./.fixture-stamp -czf "$tmp/rootfs-$arch.tar.gz" .
	fi
	touch "$tmp/.complete"
	rm -rf "$SUITE"
	mv "$tmp" "$SUITE"
	exec 8>&-
	say "conformance: suite built in $((SECONDS - start))s"
}

suite_go_build() {
	local d=$1
	# runtimetest runs inside the test containers' busybox rootfs: it must be static.
	(cd "$d/src" &&
		env CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off go build -trimpath -tags 'netgo osusergo' \
			-o ../runtimetest ./cmd/runtimetest &&
		env CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off go build -trimpath -o ../bin/ ./validation/...)
}

# ---------------------------------------------------------------------------
# Runtimes: absolute paths and unique labels (the file name; "-2" etc. when the
# same name is given twice, e.g. to compare runc against itself).
# ---------------------------------------------------------------------------
resolve_runtime() {
	local r=$1
	case "$r" in
	*/*) [ -x "$r" ] && [ ! -d "$r" ] || return 1
		printf '%s/%s\n' "$(cd "$(dirname "$r")" && pwd)" "$(basename "$r")" ;;
	*) command -v "$r" ;;
	esac
}

if [ $# -gt 0 ]; then
	requested=("$@")
elif [ -n "${CONFORMANCE_RUNTIMES:-}" ]; then
	read -r -a requested <<<"$CONFORMANCE_RUNTIMES"
else
	requested=("$ROOT/bin/berth-runtime" runc)
fi

RT_PATHS=()
RT_LABELS=()
declare -A seen_label=()
for r in "${requested[@]}"; do
	p=$(resolve_runtime "$r") || die "runtime not found or not executable: $r"
	label=$(basename "$p")
	if [ -n "${seen_label[$label]:-}" ]; then
		n=2
		while [ -n "${seen_label[$label-$n]:-}" ]; do n=$((n + 1)); done
		label=$label-$n
	fi
	seen_label[$label]=1
	RT_PATHS+=("$p")
	RT_LABELS+=("$label")
done

# The baseline: $CONFORMANCE_BASELINE (label or path), else the first runtime
# labelled runc, else the last one given.
base_idx=$((${#RT_LABELS[@]} - 1))
for i in "${!RT_LABELS[@]}"; do
	if [ -n "$BASELINE" ]; then
		if [ "${RT_LABELS[$i]}" = "$BASELINE" ] || [ "${RT_PATHS[$i]}" = "$(resolve_runtime "$BASELINE" 2>/dev/null || true)" ]; then
			base_idx=$i
			break
		fi
	elif [ "${RT_LABELS[$i]}" = runc ]; then
		base_idx=$i
		break
	fi
done

build_suite

mapfile -t ALL_TESTS < <(cd "$SUITE/bin" && ls)
if [ -n "$TESTS" ]; then
	SELECTED=()
	for t in $TESTS; do
		[ -x "$SUITE/bin/$t" ] || die "no such test: $t (have: ${ALL_TESTS[*]})"
		SELECTED+=("$t")
	done
else
	SELECTED=("${ALL_TESTS[@]}")
fi
# Spread the cgroup tests through the queue so that two of them rarely wait for
# each other's lock.
QUEUE=()
mapfile -t cg < <(for t in "${SELECTED[@]}"; do is_cgroup_test "$t" && echo "$t"; done; true)
mapfile -t other < <(for t in "${SELECTED[@]}"; do is_cgroup_test "$t" || echo "$t"; done; true)
while [ ${#cg[@]} -gt 0 ] || [ ${#other[@]} -gt 0 ]; do
	if [ ${#cg[@]} -gt 0 ]; then QUEUE+=("${cg[0]}"); cg=("${cg[@]:1}"); fi
	if [ ${#other[@]} -gt 0 ]; then QUEUE+=("${other[0]}"); other=("${other[@]:1}"); fi
done

# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------
# run_one RUNTIME DIR TEST: one test program, in its own working directory (it
# wants runtimetest and the rootfs tarball there), in its own mount namespace
# (linux_ns_* and others mount proc/sysfs and never unmount), under a timeout.
run_one() {
	local rt=$1 dir=$2 t=$3 w rc start lock=()
	w=$dir/work/$t
	mkdir -p "$w"
	for f in runtimetest "rootfs-$(go env GOARCH).tar.gz"; do
		ln -f "$SUITE/$f" "$w/$f" 2>/dev/null || cp "$SUITE/$f" "$w/$f"
	done
	is_cgroup_test "$t" && lock=(flock "$dir/cgroup.lock")
	start=$(date +%s%N)
	set +e
	(cd "$w" && TMPDIR=$dir/tmp RUNTIME=$rt "${lock[@]}" \
		timeout -k 10 "$TIMEOUT" unshare -m --propagation private "$SUITE/bin/$t" \
		>"$dir/tap/$t.tap" 2>"$dir/tap/$t.err" </dev/null)
	rc=$?
	set -e
	echo "$rc $((($(date +%s%N) - start) / 1000000))" >"$dir/tap/$t.rc"
}

# containers_of RUNTIME: ids the runtime lists (best effort: an early runtime may
# not implement `list`).
containers_of() {
	"$1" list -q 2>/dev/null | sort || true
}

# delete_leftovers RUNTIME LABEL BEFORE: a test that failed or timed out can
# leave its container behind: delete the containers that are not in BEFORE (the
# list from before the run) and look like the suite's (uuid ids).
delete_leftovers() {
	local rt=$1 label=$2 before=$3
	comm -13 <(printf '%s\n' "$before") <(containers_of "$rt") |
		grep -E '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' |
		while read -r id; do
			say "conformance: $label: deleting leftover container $id"
			"$rt" delete -f "$id" >/dev/null 2>&1 || true
		done || true
}

run_runtime() {
	local rt=$1 label=$2 dir=$OUT/$2 start t running=0 before
	start=$SECONDS
	rm -rf --one-file-system "$dir"
	mkdir -p "$dir/tap" "$dir/work" "$dir/tmp"
	say "conformance: $label ($rt): ${#QUEUE[@]} tests, $JOBS at a time, ${TIMEOUT}s timeout each"
	before=$(containers_of "$rt")
	for t in "${QUEUE[@]}"; do
		if [ "$running" -ge "$JOBS" ]; then
			wait -n || true
			running=$((running - 1))
		fi
		run_one "$rt" "$dir" "$t" &
		running=$((running + 1))
	done
	wait || true
	delete_leftovers "$rt" "$label" "$before"
	rm -rf --one-file-system "$dir/tmp" "$dir/work"
	echo $((SECONDS - start)) >"$dir/seconds"
}

# parse DIR: one line per assertion — test, status (pass|fail|skip|todo), key —
# into DIR/results.tsv, and one line per test — test, verdict, ms, plan, seen —
# into DIR/tests.tsv.
#
# The key is the assertion's description with run-specific parts (uuids, long hex
# ids, temp paths, pids) replaced, plus " #n" for the n-th repeat of the same
# description within a test.
#
# The verdict says whether the test program itself ran through: "ok", "timeout",
# "exit N", "short" (fewer results than planned), "no plan", or "error". Some
# tests (hooks, prestart, poststop, ...) make no assertions at all ("1..0") and
# report a failure only as a top-level YAML diagnostic with an "error" key; for
# those, that diagnostic is the verdict. A test may print several TAP streams
# (e.g. linux_cgroups_cpus ends with an extra "1..0"); plans are added up.
parse() {
	local dir=$1 t rc ms
	: >"$dir/results.tsv"
	: >"$dir/tests.tsv"
	for t in "${SELECTED[@]}"; do
		read -r rc ms <"$dir/tap/$t.rc" || { rc=255; ms=0; }
		awk -v test="$t" -v rc="$rc" -v ms="$ms" -v dir="$dir" -v results="$dir/results.tsv" -v tests="$dir/tests.tsv" '
			/^1\.\.[0-9]+/ { plan += substr($1, 4) + 0; planned = 1 }
			/^[ \t]+"error":/ { errdiag = 1 }
			/^(not )?ok([ \t]|$)/ {
				status = ($1 == "not") ? "fail" : "pass"
				line = $0
				sub(/^(not )?ok[ \t]*[0-9]*[ \t]*/, "", line)
				if (match(line, /#[ \t]*[Ss][Kk][Ii][Pp]/)) status = "skip"
				else if (match(line, /#[ \t]*[Tt][Oo][Dd][Oo]/)) status = "todo"
				sub(/^-[ \t]*/, "", line)
				gsub(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, "<uuid>", line)
				gsub(/[0-9a-f]{32,}/, "<hex>", line)
				gsub(dir, "<out>", line)
				gsub(/\/tmp\/[^ \t"]*/, "<tmp>", line)
				gsub(/[Pp][Ii][Dd][ :=]+[0-9]+/, "pid <n>", line)
				gsub(/\t/, " ", line)
				n = ++count[line]
				key = (n > 1) ? line " #" n : line
				printf "%s\t%s\t%s\n", test, status, key >> results
				seen++
			}
			END {
				if (rc == 124 || rc == 137) v = "timeout"
				else if (rc != 0) v = "exit " rc
				else if (!planned && NR == 0) v = "ok"
				else if (!planned) v = "no plan"
				else if (seen < plan) v = "short"
				else if (plan == 0 && errdiag) v = "error"
				else v = "ok"
				printf "%s\t%s\t%s\t%d\t%d\n", test, v, ms, plan, seen >> tests
			}
		' "$dir/tap/$t.tap"
	done
}

# regressions BASE_LABEL LABEL: print "COUNTS compared regressed", then one line
# per regression ("TEST<TAB>what"): assertions the baseline passes that LABEL
# fails, skips or lacks, and tests the baseline runs through that LABEL does not.
# An assertion LABEL lacks is no regression when LABEL ran the test through and
# the baseline did not.
regressions() {
	local base=$1 l=$2
	awk -F'\t' -v exempt=" $exempt_list" '
		FNR == 1 { file++ }
		file == 1 { if ($2 == "pass") base[$1 "\t" $3] = 1; next }
		file == 2 { st[$1 "\t" $3] = $2; next }
		file == 3 { bok[$1] = ($2 == "ok"); next }
		file == 4 { verdict[$1] = $2; next }
		END {
			for (k in base) {
				split(k, p, "\t")
				if (index(exempt, " " p[1] " ")) continue
				s = (k in st) ? st[k] : "missing"
				# The baseline did not run this test through but LABEL did (e.g.
				# process_capabilities_fail: runc 1.1.5 accepts a bogus capability and
				# runs runtimetest, which passes its checks, before the test fails it):
				# assertions LABEL never reached are not regressions.
				if (s == "missing" && !bok[p[1]] && verdict[p[1]] == "ok") continue
				n++
				if (s != "pass") { bad++; lines[bad] = p[1] "\t" s ": " p[2] }
			}
			for (t in bok) {
				if (!bok[t] || index(exempt, " " t " ")) continue
				n++
				if ((t in verdict) && verdict[t] != "ok") { bad++; lines[bad] = t "\ttest program: " verdict[t] " (baseline: ok)" }
			}
			printf "COUNTS %d %d\n", n, bad
			for (i = 1; i <= bad; i++) print lines[i]
		}' "$OUT/$base/results.tsv" "$OUT/$l/results.tsv" "$OUT/$base/tests.tsv" "$OUT/$l/tests.tsv"
}

exempt_list=""
for t in "${!EXEMPT[@]}"; do exempt_list+="$t "; done
base_label=${RT_LABELS[$base_idx]}

total_start=$SECONDS
mkdir -p "$OUT"
# One conformance run at a time on this machine: the cgroup tests share one
# cgroup path, and the results directory is shared.
exec 9>"$OUT/.lock"
flock -n 9 || { say "conformance: another run holds $OUT/.lock; waiting"; flock 9; }

for i in "${!RT_PATHS[@]}"; do
	run_runtime "${RT_PATHS[$i]}" "${RT_LABELS[$i]}"
	parse "$OUT/${RT_LABELS[$i]}"
done

# A test that regresses is run again (up to $CONFORMANCE_RETRIES times), on the
# baseline too, and what counts is the last run of both. Some of the suite's
# test programs race their own container, so that a run's verdict is luck,
# the baseline's as much as ours:
#   - pidfile runs `true` and then kills it: the kill must come before `true`
#     has exited (or "not running" is the right answer). runc usually loses,
#     but wins now and then on a loaded machine, and then any runtime that
#     lost looked like a regression.
#   - killsig kills `sh -c "trap ... SIG; ..."` once the state says running:
#     a signal that reaches the shell before its trap is set is discarded (it
#     is the pid namespace's init, which the kernel shields from signals it
#     has no handler for), the trap never runs and the delete finds the
#     container still running.
#   - runc's process_rlimits sometimes fails to load its seccomp filter with
#     ENOMEM.
# Running the baseline again keeps an assertion it passed by chance from
# being held against the other runtimes; running the other runtime again
# does the same for its losses.
declare -A FLAKY=()
base_dir=$OUT/$base_label
for i in "${!RT_LABELS[@]}"; do
	[ "$i" -eq "$base_idx" ] && continue
	l=${RT_LABELS[$i]}
	dir=$OUT/$l
	for ((try = 1; try <= ${CONFORMANCE_RETRIES:-1}; try++)); do
		mapfile -t again < <(regressions "$base_label" "$l" | tail -n +2 | cut -f1 | sort -u)
		[ ${#again[@]} -gt 0 ] || break
		say "conformance: $l: running again, with $base_label: ${again[*]}"
		mkdir -p "$dir/work" "$dir/tmp" "$base_dir/work" "$base_dir/tmp"
		before=$(containers_of "${RT_PATHS[$i]}")
		base_before=$(containers_of "${RT_PATHS[$base_idx]}")
		for t in "${again[@]}"; do
			for f in tap err rc; do
				cp "$dir/tap/$t.$f" "$dir/tap/$t.$f.$try" 2>/dev/null || true
				cp "$base_dir/tap/$t.$f" "$base_dir/tap/$t.$f.$l.$try" 2>/dev/null || true
			done
			run_one "${RT_PATHS[$i]}" "$dir" "$t"
			run_one "${RT_PATHS[$base_idx]}" "$base_dir" "$t"
		done
		delete_leftovers "${RT_PATHS[$i]}" "$l" "$before"
		delete_leftovers "${RT_PATHS[$base_idx]}" "$base_label" "$base_before"
		rm -rf --one-file-system "$dir/work" "$dir/tmp" "$base_dir/work" "$base_dir/tmp"
		parse "$dir"
		parse "$base_dir"
		for t in "${again[@]}"; do FLAKY[$l/$t]=1; done
	done
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# Runtime columns: the runtimes under test first, the baseline last.
ORDER=()
for i in "${!RT_LABELS[@]}"; do [ "$i" -ne "$base_idx" ] && ORDER+=("${RT_LABELS[$i]}"); done
ORDER+=("$base_label")

echo
echo "== TAP summary (runtime-tools $RT_VERSION) =="
for l in "${ORDER[@]}"; do
	awk -F'\t' -v label="$l" -v secs="$(cat "$OUT/$l/seconds")" '
		FNR == NR { c[$2]++; next }
		{ n++; if ($2 != "ok") { bad++; why = why " " $1 "(" $2 ")" } }
		END {
			printf "%s: %d tests, %d assertions: %d passed, %d failed, %d skipped, %d todo; %ds\n",
				label, n, c["pass"] + c["fail"] + c["skip"] + c["todo"], c["pass"], c["fail"], c["skip"], c["todo"], secs
			if (bad) printf "  %d test programs did not run through:%s\n", bad, why
		}' "$OUT/$l/results.tsv" "$OUT/$l/tests.tsv"
done

echo
echo "== Per test: passed/failed (skipped); '!' = test program did not run through =="
echo "   (TAP and stderr: ${OUT#"$ROOT"/}/<runtime>/tap/<test>.{tap,err})"
{
	args=()
	for l in "${ORDER[@]}"; do args+=("$OUT/$l/results.tsv" "$OUT/$l/tests.tsv"); done
	awk -F'\t' -v order="${ORDER[*]}" '
		BEGIN { nr = split(order, labels, " ") }
		FNR == 1 { file++; r = int((file + 1) / 2) }
		file % 2 == 1 { c[r, $1, $2]++; tot[r, $2]++; next }
		{ if (!($1 in idx)) { idx[$1] = ++nt; names[nt] = $1 } v[r, $1] = $2; plan[r, $1] = $4 + $5 }
		END {
			printf "%-32s", "TEST"
			for (r = 1; r <= nr; r++) printf " %24s", labels[r]
			printf "\n"
			for (i = 1; i <= nt; i++) {
				t = names[i]; printf "%-32s", t
				for (r = 1; r <= nr; r++) {
					if (plan[r, t] == 0) cell = v[r, t] (v[r, t] == "ok" ? " " : "!")
					else cell = sprintf("%d/%d (%d)%s", c[r, t, "pass"], c[r, t, "fail"], c[r, t, "skip"], v[r, t] == "ok" ? " " : "!")
					printf " %24s", cell
				}
				printf "\n"
			}
			printf "%-32s", "TOTAL"
			for (r = 1; r <= nr; r++)
				printf " %24s", sprintf("%d/%d (%d) ", tot[r, "pass"], tot[r, "fail"], tot[r, "skip"])
			printf "\n"
		}' "${args[@]}"
}

status=0
echo
if [ "${#ORDER[@]}" -gt 1 ]; then
	echo "== Regressions: what $base_label passes and another runtime does not =="
	for t in "${!EXEMPT[@]}"; do echo "  exempt: $t — ${EXEMPT[$t]}"; done
	for k in "${!FLAKY[@]}"; do echo "  ran again after a regression: $k"; done
	compared=0
	regressed=0
	for l in "${ORDER[@]}"; do
		[ "$l" = "$base_label" ] && continue
		report=$(regressions "$base_label" "$l")
		read -r _ n bad <<<"$(head -n1 <<<"$report")"
		compared=$((compared + n))
		regressed=$((regressed + bad))
		if [ "$bad" -gt 0 ]; then
			# At most $CONFORMANCE_SHOW lines per test; the full list is in the file.
			tail -n +2 <<<"$report" | sort >"$OUT/$l/regressions.txt"
			awk -F'\t' -v label="$l" -v max="${CONFORMANCE_SHOW:-10}" '
				function flush() { if (cnt > max) printf "  REGRESSION %s: %s: ... and %d more\n", label, prev, cnt - max }
				$1 != prev { flush(); prev = $1; cnt = 0 }
				{ if (++cnt <= max) printf "  REGRESSION %s: %s: %s\n", label, $1, $2 }
				END { flush() }' "$OUT/$l/regressions.txt"
			echo "  ($bad regressions for $l; all of them: ${OUT#"$ROOT"/}/$l/regressions.txt)"
			status=1
		else
			echo "  $l: none ($n checks that $base_label passes)"
		fi
	done
	echo
	echo "conformance: total time $((SECONDS - total_start))s; results in ${OUT#"$ROOT"/}/<runtime>/"
	echo "(passed = checks $base_label passes that the other runtimes pass too; failed = regressions)"
	echo "conformance: $((compared - regressed)) passed, $regressed failed"
else
	echo "conformance: total time $((SECONDS - total_start))s; results in ${OUT#"$ROOT"/}/<runtime>/"
	echo "(one runtime: nothing to compare against)"
fi
exit $status
