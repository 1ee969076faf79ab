# prologue.sh — the start that the engine-against-engine benchmarks
# (bench/run, bench/build, bench/network) share. Source it first thing,
# without arguments (it reads the script's own), after setting NEEDS to the
# commands the script needs:
#
#   NEEDS="hyperfine jq skopeo unshare"
#   . "$(dirname "$(readlink -f "$0")")/../lib/prologue.sh"
#
# It defines die, SELF (the script) and REPO (the checkout). Run without
# --measure, it checks for root and NEEDS and runs the script again as
# `SCRIPT --measure` in a private mount namespace (`unshare -m`): the tmpfs
# mounts and the unmounts a run makes stay in it and vanish with it, also
# when the run is killed. The helpers below serve the --measure half.

die() { echo "bench: $*" >&2; exit 1; }
SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)

if [ "${1:-}" != "--measure" ]; then
	[ "$(id -u)" -eq 0 ] || die "needs root"
	for t in ${NEEDS:?}; do
		command -v "$t" >/dev/null || die "$t missing (make deps)"
	done
	exec unshare -m --propagation private "$SELF" --measure
fi

# tmpfs_over DIR...: an empty tmpfs over each DIR, in this mount namespace
# only. podman 4.3 and libcni write below /var/lib/containers, /var/lib/cni
# and /run/libpod whatever their flags say; this keeps a run from touching
# the host's.
tmpfs_over() {
	local d
	for d in "$@"; do
		mkdir -p "$d"
		mount -t tmpfs tmpfs "$d"
	done
}

# busybox_archives FIXTURE DIR: the busybox fixture image twice, as
# DIR/busybox-oci.tar (an OCI layout, which berth loads) and as
# DIR/busybox-docker.tar (a docker-archive, which podman and docker load),
# so that every engine runs the same image.
busybox_archives() {
	(cd "$1" && tar -cf "$2/busybox-oci.tar" oci-layout index.json blobs)
	skopeo copy -q "oci:$1:latest" "docker-archive:$2/busybox-docker.tar:busybox:latest"
}

# start_dockerd ARG...: Debian's dockerd on the socket $WORK/docker.sock
# (the one $D names), with its data root in $WORK and its exec root in
# /run/libpod/d, plus ARG... (its network options); returns once it
# answers. Sets DOCKER_PID for the script's cleanup.
start_dockerd() {
	dockerd --host "unix://$WORK/docker.sock" --data-root "$WORK/docker/root" --exec-root /run/libpod/d \
		--pidfile "$WORK/docker.pid" "$@" >"$WORK/dockerd.log" 2>&1 &
	DOCKER_PID=$!
	local _
	for _ in $(seq 100); do $D version >/dev/null 2>&1 && break; sleep 0.2; done
	$D version >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; die "dockerd did not come up"; }
}
