//go:build linux

// Package containerd holds an integration test that drives berth-runtime the way
// Kubernetes nodes and `ctr` do: through containerd 1.6 and its
// io.containerd.runc.v2 shim, with the shim told to exec berth-runtime instead of
// runc (`ctr run --runc-binary`).
//
// The test starts a private containerd (its own config, root, state and socket
// in a temporary directory, CRI disabled), imports a busybox image built in Go
// from the busybox rootfs fixture (an OCI image layout tar: one gzip layer,
// config, manifest, index), then runs and execs containers through ctr. It
// needs root and the Debian containerd package (containerd, ctr,
// containerd-shim-runc-v2); without them it skips.
//
//	go test ./test/containerd/                              # builds berth-runtime from ./cmd
//	BERTH_RUNTIME=bin/berth-runtime go test ./test/containerd/
//	BERTH_RUNTIME=runc go test ./test/containerd/           # the test against runc
package containerd
