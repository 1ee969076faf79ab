#!/bin/sh
# demo.sh — show berth-runtime running containers from the test fixtures.
#
#   RUNTIME=bin/berth-runtime scripts/demo.sh      (make demo)
#
# 1. a busybox bundle: prints a greeting, the OS and the user id;
# 2. if the Debian fixture exists: its /etc/os-release, from a read-only rootfs
#    shared in place (root.path is absolute, nothing is copied).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNTIME=${RUNTIME:-$ROOT/bin/berth-runtime}
FIXTURES=${BERTH_FIXTURES:-$ROOT/.cache/fixtures}
DEMO=$FIXTURES/demo
id=demo-$$

cleanup() { "$RUNTIME" delete -f "$id" >/dev/null 2>&1 || true; }
trap cleanup EXIT

RUNTIME=$RUNTIME "$ROOT/scripts/fixtures/busybox-bundle.sh" "$DEMO/busybox" \
	sh -c 'echo hello from berth; cat /etc/os-release 2>/dev/null || uname -a; id'

echo "+ $RUNTIME run --bundle $DEMO/busybox $id"
"$RUNTIME" run --bundle "$DEMO/busybox" "$id"

if [ -d "$FIXTURES/debian/rootfs" ]; then
	mkdir -p "$DEMO/debian"
	jq --arg root "$FIXTURES/debian/rootfs" \
		'.root = {path: $root, readonly: true}
		 | .process.args = ["sh", "-c", ". /etc/os-release; echo \"$PRETTY_NAME\"; id"]' \
		"$DEMO/busybox/config.json" >"$DEMO/debian/config.json"
	echo "+ $RUNTIME run --bundle $DEMO/debian $id-debian"
	"$RUNTIME" run --bundle "$DEMO/debian" "$id-debian" ||
		{ status=$?; "$RUNTIME" delete -f "$id-debian" >/dev/null 2>&1 || true; exit $status; }
fi

# 3. the engine: an image made from the busybox rootfs (`berth import`), pushed
#    to a registry on loopback (Debian's docker-registry, a temporary store),
#    removed, pulled back and run — the round trip a Docker user makes.
BERTH=${BERTH:-$ROOT/bin/berth}
if [ -x "$BERTH" ] && command -v docker-registry >/dev/null; then
	reg=$(mktemp -d)
	# A free loopback port: ss lists the taken ones.
	port=$(shuf -i 20000-40000 -n 1)
	while ss -ltn | grep -q ":$port "; do port=$(shuf -i 20000-40000 -n 1); done
	cat >"$reg/config.yml" <<YML
version: 0.1
storage: {filesystem: {rootdirectory: $reg/data}}
http: {addr: 127.0.0.1:$port}
log: {level: error}
YML
	docker-registry serve "$reg/config.yml" >"$reg/log" 2>&1 &
	regpid=$!
	trap 'cleanup; kill $regpid 2>/dev/null; rm -rf "$reg"' EXIT
	for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
	ref=127.0.0.1:$port/demo/busybox:latest
	set -x
	tar -C "$FIXTURES/busybox/rootfs" -c . | "$BERTH" import -c 'CMD ["sh"]' - "$ref"
	"$BERTH" push "$ref"
	"$BERTH" rmi "$ref"
	"$BERTH" pull "$ref"
	"$BERTH" images
	"$BERTH" run --rm "$ref" sh -c 'echo hello from a pulled image; hostname; id'
	set +x
fi
