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
