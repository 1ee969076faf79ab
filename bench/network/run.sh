#!/bin/bash
# run.sh — what a container's network costs: start-to-exit of
# `run --rm busybox true` on a bridge against --network none, and TCP
# throughput container→container and host→published port, for berth,
# podman and docker in one run.
#
#   bench/network/run.sh            (root; make build && make fixtures first)
#
# See README.md next to this script for what is measured and how to read it.
# Exits non-zero only when something fails; a missed target prints MISS.
#
# Environment:
#   BERTH       berth CLI (default bin/berth; berth-runtime, berth-monitor beside it)
#   RUNS        timed runs per command (default 20)
#   ROUNDS      hyperfine invocations the runs are spread over (default RUNS)
#   STAGES      BERTH_TIMING runs per variant for berth's stage breakdown (default 10; 0: none)
#   SECS        seconds per throughput sample (default 2)
#   REPS        throughput samples per engine and path (default 3; the median counts)
#   TOOLS       engines to measure (default "berth podman docker")
#   HOST_ADDR   the host's own address for the published-port path
#               (default: the first address of the default route's device)
#   OUT         where JSON and samples go (default .cache/bench/network/<UTC time>)
#
# Isolation: everything runs in a private mount namespace (`unshare -m`)
# with tmpfs over /var/lib/containers, /var/lib/cni and /run/libpod (podman
# 4.3 and libcni write there whatever their flags say). Each engine gets its
# own bridge and /24, named and picked here, so nothing is shared with the
# host's other bridges or with concurrent tests: berth through
# $BERTH_BRIDGE/$BERTH_SUBNET (its default network), podman through a
# conflist in a private network_config_dir made its default_network, docker
# through --bridge on a bridge made here. dockerd runs with iptables and its
# userland proxy on, as Docker ships. On exit, also on failure, the trap
# removes the containers, stops dockerd and deletes every iptables rule that
# names our bridges or subnets, docker's chains (unless another dockerd had
# them before), the chains the CNI plugins created if they did not exist
# before and hold nothing else, and our bridges; then it restores FORWARD's
# policy and the bridge-netfilter sysctls and checks that none of ours is left.
set -euo pipefail

NEEDS="hyperfine jq skopeo unshare iptables iptables-save ip go"
. "$(dirname "$(readlink -f "$0")")/../lib/prologue.sh"

RUNS=${RUNS:-20}
STAGES=${STAGES:-10}
SECS=${SECS:-2}
REPS=${REPS:-3}
TOOLS=${TOOLS:-berth podman docker}
BERTH=${BERTH:-$REPO/bin/berth}
FIXTURE=$REPO/.cache/fixtures/images/busybox
OUT=${OUT:-$REPO/.cache/bench/network/$(date -u +%Y%m%dT%H%M%SZ)}
[ -x "$BERTH" ] || die "$BERTH not found (make build)"
[ -x "$(dirname "$BERTH")/berth-monitor" ] || die "berth-monitor not beside $BERTH (make build)"
[ -f "$FIXTURE/index.json" ] || die "busybox fixture missing (make fixtures)"
mkdir -p "$OUT"

if [ -z "${HOST_ADDR:-}" ]; then
	dev=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i+1); exit}}')
	[ -n "$dev" ] || die "no default route: set HOST_ADDR to one of the host's addresses"
	HOST_ADDR=$(ip -4 -o addr show dev "$dev" scope global | awk '{sub("/.*", "", $4); print $4; exit}')
	[ -n "$HOST_ADDR" ] || die "no IPv4 address on $dev: set HOST_ADDR"
fi

# Names and subnets of our own: a random tag keeps two runs (or a leftover
# of a killed one) apart; the /24s are checked against every route.
TAG=$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')
declare -A BRIDGE=([berth]=bnb-b$TAG [podman]=bnb-p$TAG [docker]=bnb-d$TAG)
declare -A NET
# A /24 is free when no route covers it or lies inside it (the default
# route aside).
free24() {
	[ -z "$(ip -4 route show table all match "$1.0/24" | grep -v '^default')" ] &&
		[ -z "$(ip -4 route show table all root "$1.0/24")" ]
}
for t in berth podman docker; do
	for _ in $(seq 50); do
		o=10.$((RANDOM % 200 + 20)).$((RANDOM % 256))
		case " ${NET[*]:-} " in *" $o "*) continue ;; esac
		free24 "$o" && NET[$t]=$o && break
	done
	[ -n "${NET[$t]:-}" ] || die "no free /24 under 10.0.0.0/8"
done

WORK=$(mktemp -d /tmp/bench-network.XXXXXX)
tmpfs_over /var/lib/containers /var/lib/cni /run/libpod

# What the host looked like, to restore and to compare with at the end.
iptables-save >"$WORK/iptables.before"
ip -o link show | awk -F': ' '{sub("@.*", "", $2); print $2}' | sort >"$WORK/links.before"
FORWARD_POLICY=$(iptables -w -S FORWARD | awk '$1 == "-P" {print $3}')
declare -A SYSCTL
for s in net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables; do
	SYSCTL[$s]=$(sysctl -n $s 2>/dev/null || true)
done
had_chain() { grep -q "^:$2 " <(sed -n "/^\*$1\$/,/^COMMIT/p" "$WORK/iptables.before"); }
OURS="${BRIDGE[berth]}|${BRIDGE[podman]}|${BRIDGE[docker]}|${NET[berth]//./\\.}\.|${NET[podman]//./\\.}\.|${NET[docker]//./\\.}\."
had_chain filter DOCKER || OURS="$OURS|DOCKER"

# purge_rules ERE: delete every rule of filter and nat whose spec matches.
purge_rules() {
	local t r
	for t in filter nat; do
		iptables-save -t $t | grep -E -- "^-A .*($1)" | sed 's/^-A/-D/' | while read -r r; do
			eval "iptables -w -t $t $r" 2>/dev/null || true
		done
	done
}

# drop_new_chain TABLE CHAIN: remove a chain the CNI plugins or berth's
# built-in driver (BERTH-*) created during this run, but only when nothing but jumps between these
# shared chains is left in it: a rule naming an interface, address or port
# belongs to someone else's live network.
drop_new_chain() {
	local t=$1 c=$2 r
	had_chain "$t" "$c" && return 0
	iptables -w -t "$t" -S "$c" >/dev/null 2>&1 || return 0
	if iptables -w -t "$t" -S "$c" | grep -v "^-N" |
		grep -vqE -- "^-A $c( -m comment --comment \"[^\"]*\")?( -m mark --mark 0x2000/0x2000)? -j (RETURN|CNI-ADMIN|BERTH-ISOLATION-[12]|MASQUERADE|MARK --set-xmark 0x2000/0x2000)$"; then
		return 0
	fi
	iptables-save -t "$t" | grep -E -- "^-A .* -j $c( |\$)" | sed 's/^-A/-D/' | while read -r r; do
		eval "iptables -w -t $t $r" 2>/dev/null || true
	done
	iptables -w -t "$t" -F "$c" && iptables -w -t "$t" -X "$c"
}

DOCKER_PID=
cleanup() {
	set +e
	local ids=
	if [ -n "${B:-}" ]; then
		ids=$($B ps -aq --no-trunc 2>/dev/null | cut -c1-12 | paste -sd'|')
		$B ps -aq --no-trunc | xargs -r $B rm -f >/dev/null 2>&1
	fi
	if [ -n "${P:-}" ]; then $P rm -af -t 0 >/dev/null 2>&1; fi
	if [ -n "$DOCKER_PID" ]; then
		$D ps -aq | xargs -r $D rm -f >/dev/null 2>&1
		kill "$DOCKER_PID"
		wait "$DOCKER_PID" 2>/dev/null
	fi
	purge_rules "$OURS"
	# berth's built-in driver names a container's port chain and comments
	# its jump after the container ID: rm removes both, this is in case
	# it could not.
	if [ -n "$ids" ]; then
		purge_rules "$ids"
		for c in $(iptables-save -t nat | sed -n 's/^:\(BERTH-DN-[0-9a-f]*\) .*/\1/p' | grep -E "$ids"); do
			iptables -w -t nat -F "$c" && iptables -w -t nat -X "$c"
		done
	fi
	if ! had_chain filter DOCKER; then
		for t in filter nat; do
			for c in $(iptables-save -t $t | sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do iptables -w -t $t -F "$c"; done
			for c in $(iptables-save -t $t | sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do iptables -w -t $t -X "$c"; done
		done
	fi
	for c in BERTH-FORWARD BERTH-ISOLATION-1 BERTH-ISOLATION-2 CNI-ADMIN CNI-FORWARD; do drop_new_chain filter $c; done
	for c in BERTH-HOSTPORTS BERTH-POSTROUTING CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do drop_new_chain nat $c; done
	[ -n "$FORWARD_POLICY" ] && iptables -w -P FORWARD "$FORWARD_POLICY"
	for s in "${!SYSCTL[@]}"; do [ -n "${SYSCTL[$s]}" ] && sysctl -qw "$s=${SYSCTL[$s]}"; done
	for br in "${BRIDGE[@]}"; do
		# Veths of containers that died with their namespace are gone;
		# any still enslaved would keep nothing alive but are ours too.
		for v in $(ip -o link show master "$br" 2>/dev/null | awk -F': ' '{sub("@.*", "", $2); print $2}'); do ip link del "$v"; done
		ip link del "$br" 2>/dev/null
	done
	findmnt -rn -o TARGET | grep "^$WORK" | sort -r | xargs -r -n1 umount -l 2>/dev/null
	left=$(iptables-save | grep -E -- "$OURS")
	[ -n "$left" ] && printf 'bench: LEAK: iptables rules of ours are left:\n%s\n' "$left" >&2
	for br in "${BRIDGE[@]}"; do ip link show "$br" >/dev/null 2>&1 && echo "bench: LEAK: bridge $br is left" >&2; done
	[ "$(iptables -w -S FORWARD | awk '$1 == "-P" {print $3}')" = "$FORWARD_POLICY" ] ||
		echo "bench: LEAK: FORWARD policy not restored to $FORWARD_POLICY" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT
# A signal ends the script through exit, so the EXIT trap cleans up then too.
trap 'exit 130' INT TERM HUP

# The throughput tool, static so it runs on the host and bind-mounted into
# busybox under every engine.
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$WORK/tcpbench" ./bench/network/tcpbench)
TCPBENCH=$WORK/tcpbench

# The image, once as an OCI layout tar (berth) and once as a docker-archive.
busybox_archives "$FIXTURE" "$WORK"

declare -A NONE BRIDGED CLI
export BERTH_BRIDGE=${BRIDGE[berth]} BERTH_SUBNET=${NET[berth]}.0/24
B="$BERTH --root $WORK/berth/root --state $WORK/berth/state"
if [[ " $TOOLS " == *" berth "* ]]; then
	$B load -q -i "$WORK/busybox-oci.tar" >/dev/null
	$B tag "$($B images -q | head -1)" busybox
	CLI[berth]=$B
fi

mkdir -p "$WORK/podman/tmp" "$WORK/podman/cni"
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[network]
network_config_dir = "$WORK/podman/cni"
default_network = "bench"
EOF
# What `podman network create` writes for the CNI backend, with our bridge
# name (podman 4.3 has no --interface-name) and no dnsname plugin (the
# default network has none either).
cat >"$WORK/podman/cni/bench.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "bench", "plugins": [
  {"type": "bridge", "bridge": "${BRIDGE[podman]}", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$WORK/podman/ipam", "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "${NET[podman]}.0/24", "gateway": "${NET[podman]}.1"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "firewall", "backend": "iptables"},
  {"type": "tuning"}]}
EOF
export CONTAINERS_CONF=$WORK/containers.conf
P="podman --root $WORK/podman/root --runroot /run/libpod/r --tmpdir $WORK/podman/tmp --storage-driver overlay --cgroup-manager cgroupfs --runtime runc --events-backend none"
if [[ " $TOOLS " == *" podman "* ]]; then
	$P load -q -i "$WORK/busybox-docker.tar" >/dev/null
	CLI[podman]=$P
fi

D="docker -H unix://$WORK/docker.sock"
if [[ " $TOOLS " == *" docker "* ]]; then
	# dockerd takes a bridge given with --bridge as it finds it, address
	# included; it adds its chains and rules for it.
	ip link add "${BRIDGE[docker]}" type bridge
	ip addr add "${NET[docker]}.1/24" dev "${BRIDGE[docker]}"
	ip link set "${BRIDGE[docker]}" up
	start_dockerd --bridge "${BRIDGE[docker]}" --ip6tables=false
	$D load -q -i "$WORK/busybox-docker.tar" >/dev/null
	CLI[docker]=$D
fi

# Fail loudly before timing: hyperfine hides what a failing command says.
for t in $TOOLS; do
	for n in "--network none" ""; do
		err=$(${CLI[$t]} run --rm $n busybox true 2>&1) || die "$t run --rm $n busybox true: $err"
	done
done

# The runs are spread over $ROUNDS hyperfine invocations that each time all
# commands in turn: on a shared machine, load from elsewhere then falls on
# every engine alike instead of on whichever command it met. The medians
# pool the runs of all rounds.
ROUNDS=${ROUNDS:-$RUNS}
per=$(((RUNS + ROUNDS - 1) / ROUNDS))
echo "== run --rm busybox true: --network none vs bridge (hyperfine, $ROUNDS rounds x $per runs, 3 warmup in the first)"
echo "   bridges: berth ${BRIDGE[berth]} ${NET[berth]}.0/24 (default network), podman ${BRIDGE[podman]} ${NET[podman]}.0/24 (default_network), docker ${BRIDGE[docker]} ${NET[docker]}.0/24 (--bridge)"
args=()
for t in $TOOLS; do
	args+=(-n "$t none" "${CLI[$t]} run --rm --network none busybox true")
	args+=(-n "$t bridge" "${CLI[$t]} run --rm busybox true")
done
for r in $(seq "$ROUNDS"); do
	warm=0
	[ "$r" = 1 ] && warm=3
	hyperfine -N --warmup "$warm" --runs "$per" --export-json "$OUT/run-$r.json" "${args[@]}" >/dev/null 2>>"$OUT/hyperfine.log" ||
		{ tail -20 "$OUT/hyperfine.log"; die "hyperfine failed"; }
done
# pct COMMAND P: the P-th percentile (linear interpolation) in ms of the
# command's runs over all rounds; P=50 is the median.
pct() {
	jq -s -r --arg n "$1" --argjson p "$2" '[.[].results[] | select(.command == $n) | .times[]] | sort
		| (($p / 100) * (length - 1)) as $i | ($i | floor) as $lo | ([$lo + 1, length - 1] | min) as $hi
		| (.[$lo] + (.[$hi] - .[$lo]) * ($i - $lo)) * 1000' "$OUT"/run-*.json
}
# cpu COMMAND: mean user+system ms of the command and the children it
# waited for. Load from elsewhere stretches wall time but barely CPU time,
# so for berth and podman, which set the network up in the CLI's process
# tree, the CPU difference is the steadier sign of the setup's cost; docker's
# CLI only asks dockerd, whose CPU time is not counted.
cpu() {
	jq -s -r --arg n "$1" '[.[].results[] | select(.command == $n) | (.user + .system)] | add / length * 1000' "$OUT"/run-*.json
}
printf '  %-7s %10s %10s %10s   %-23s %s\n' engine "none ms" "bridge ms" "setup ms" "p25-p75 none | bridge" "CLI CPU ms none -> bridge"
declare -A SETUP
for t in $TOOLS; do
	NONE[$t]=$(pct "$t none" 50)
	BRIDGED[$t]=$(pct "$t bridge" 50)
	SETUP[$t]=$(jq -n "${BRIDGED[$t]} - ${NONE[$t]}")
	printf '  %-7s %10.1f %10.1f %10.1f   %-23s %.1f -> %.1f\n' "$t" "${NONE[$t]}" "${BRIDGED[$t]}" "${SETUP[$t]}" \
		"$(printf '%.0f-%.0f | %.0f-%.0f' "$(pct "$t none" 25)" "$(pct "$t none" 75)" "$(pct "$t bridge" 25)" "$(pct "$t bridge" 75)")" \
		"$(cpu "$t none")" "$(cpu "$t bridge")"
done
if [ -n "${SETUP[berth]:-}" ]; then
	for t in podman docker; do
		[ -n "${SETUP[$t]:-}" ] || continue
		printf '  %s bridge / berth bridge: %.2fx   (setup: %s %.1f ms, berth %.1f ms)\n' "$t" \
			"$(jq -n "${BRIDGED[$t]} / ${BRIDGED[berth]}")" "$t" "${SETUP[$t]}" "${SETUP[berth]}"
	done
	verdict=MISS
	jq -e -n "${SETUP[berth]} <= 5" >/dev/null && verdict=PASS
	# On a loaded machine the runs of one command spread over far more than
	# 5 ms, and a difference of two medians then says little either way.
	spread=$(jq -n "[$(pct "berth none" 75) - $(pct "berth none" 25), $(pct "berth bridge" 75) - $(pct "berth bridge" 25)] | max")
	note=
	jq -e -n "$spread > 5" >/dev/null &&
		note=$(printf ' (not resolved here: the runs spread %.0f ms p25-p75; see the stages below)' "$spread")
	printf '  berth network setup %.1f ms per container (target <= 5 ms): %s%s\n' "${SETUP[berth]}" "$verdict" "$note"
fi

if [[ " $TOOLS " == *" berth "* ]] && [ "$STAGES" -gt 0 ] && command -v python3 >/dev/null; then
	# BERTH_TIMING=1 makes the CLI, monitor and runtime print a line per
	# stage (monotonic clock). The stages whose median differs between
	# bridge and none show where berth's setup goes, with less of the
	# machine's noise than the difference of two whole-run medians.
	echo "== berth stages, bridge vs none (BERTH_TIMING, medians of $STAGES runs each; ms since the previous mark; |diff| >= 0.5 ms)"
	for n in bridge none; do
		mkdir -p "$WORK/stages/$n"
		flag=
		[ $n = none ] && flag="--network none"
		for i in $(seq "$STAGES"); do BERTH_TIMING=1 $B run --rm $flag busybox true 2>"$WORK/stages/$n/$i" >/dev/null; done
	done
	python3 "$REPO/bench/lib/stages.py" "$WORK/stages/bridge" "$WORK/stages/none"
fi

echo "== TCP throughput, Gbit/s (median of $REPS x ${SECS}s; tcpbench, 128 KiB writes, one stream)"
# One server per engine, each published on a random host port of all
# addresses; the samples interleave engines so load from elsewhere on the
# machine spreads over all of them.
declare -A SRV PORT IP
for t in $TOOLS; do
	SRV[$t]=$(${CLI[$t]} run -d -p 5201 -v "$TCPBENCH:/tcpbench:ro" busybox /tcpbench server)
	PORT[$t]=$(${CLI[$t]} port "${SRV[$t]}" 5201/tcp | head -1 | sed 's/.*://')
	IP[$t]=$(${CLI[$t]} inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "${SRV[$t]}")
	[ -n "${PORT[$t]}" ] && [ -n "${IP[$t]}" ] || die "$t: no published port or address for the server"
done
PATHS="c2c lo host"
declare -A LABEL=([c2c]="container -> container" [lo]="host -> 127.0.0.1:port" [host]="host -> $HOST_ADDR:port")
: >"$OUT/throughput.tsv"
for rep in $(seq "$REPS"); do
	for t in $TOOLS; do
		for p in $PATHS; do
			case $p in
			c2c) v=$(${CLI[$t]} run --rm -v "$TCPBENCH:/tcpbench:ro" busybox /tcpbench client -c "${IP[$t]}:5201" -t "${SECS}s") ;;
			lo) v=$("$TCPBENCH" client -c "127.0.0.1:${PORT[$t]}" -t "${SECS}s") ;;
			host) v=$("$TCPBENCH" client -c "$HOST_ADDR:${PORT[$t]}" -t "${SECS}s") ;;
			esac
			printf '%s\t%s\t%s\t%s\n' "$t" "$p" "$rep" "$v" >>"$OUT/throughput.tsv"
		done
	done
done
declare -A GBPS
for t in $TOOLS; do
	for p in $PATHS; do
		GBPS[$t.$p]=$(awk -F'\t' -v t="$t" -v p="$p" '$1 == t && $2 == p {print $4}' "$OUT/throughput.tsv" |
			sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
	done
done
printf '  %-30s' path
for t in $TOOLS; do printf ' %8s' "$t"; done
[[ " $TOOLS " == *" berth "* && " $TOOLS " == *" docker "* ]] && printf ' %14s' "berth/docker"
echo
for p in $PATHS; do
	printf '  %-30s' "${LABEL[$p]}"
	for t in $TOOLS; do printf ' %8.2f' "${GBPS[$t.$p]}"; done
	if [[ " $TOOLS " == *" berth "* && " $TOOLS " == *" docker "* ]]; then
		r=$(jq -n "${GBPS[berth.$p]} / ${GBPS[docker.$p]}")
		verdict=
		if [ "$p" != c2c ]; then
			verdict=MISS
			jq -e -n "$r >= 1" >/dev/null && verdict=PASS
		fi
		printf ' %9.2fx %s' "$r" "$verdict"
	fi
	echo
done
# Bridged packets traverse iptables' FORWARD chain when br_netfilter's
# bridge-nf-call-iptables is on, rule by rule until one accepts: long
# chains left by other networks on the host slow container-to-container
# traffic of whichever engine's ACCEPT comes after them.
nrules() { iptables -w -S "$1" 2>/dev/null | grep -c '^-A' || true; }
echo "  (host: bridge-nf-call-iptables=$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo -);" \
	"FORWARD $(nrules FORWARD) rules, BERTH-ISOLATION-1 $(nrules BERTH-ISOLATION-1), CNI-FORWARD $(nrules CNI-FORWARD))"
[[ " $TOOLS " == *" docker "* ]] && echo "  (docker: 127.0.0.1 goes through docker-proxy, its userland proxy; $HOST_ADDR through its DNAT rules)"
echo "results: $OUT"
