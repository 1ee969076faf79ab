package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/moby/moby/api/types/container"
)

// specRun is one container run through berth-runtime with a spec built by
// buildSpecEnv: the enforcement tests below check what the kernel does with
// the spec, not just its fields.
type specRun struct {
	stdout, stderr string
	code           int
}

// runBuiltSpec builds c's spec against a private copy of the busybox rootfs
// and runs it to completion with `berth-runtime run`.
func runBuiltSpec(t *testing.T, c *Container, rootfs string, env specEnv) specRun {
	t.Helper()
	rt, cleanup, err := testutil.RuntimeBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	if rootfs == "" {
		rootfs = testutil.NewBundle(t, rt).Rootfs
	}
	s, err := buildSpecEnv(c, rootfs, env)
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	var id [6]byte
	_, _ = rand.Read(id[:])
	name := "spectest-" + hex.EncodeToString(id[:])
	t.Cleanup(func() { _ = exec.Command(rt, "--root", state, "delete", "--force", name).Run() })
	cmd := exec.Command(rt, "--root", state, "run", "--bundle", bundle, name)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	r := specRun{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if r.code < 0 {
			r.code = 137 // killed by a signal: the runtime died with its container
		}
	case err != nil:
		t.Fatal(err)
	}
	return r
}

func shContainer(script string, hc container.HostConfig) *Container {
	c := testContainer(hc)
	var id [32]byte
	_, _ = rand.Read(id[:])
	c.ID = hex.EncodeToString(id[:])
	c.Config.Cmd = []string{"sh", "-c", script}
	return c
}

func TestSpecEnforcement(t *testing.T) {
	testutil.RequiresRoot(t)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "f"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	pids := int64(10)
	for _, tc := range []struct {
		name     string
		script   string
		hc       container.HostConfig
		code     int
		contains string // in stdout+stderr
	}{
		{"default caps", "grep CapEff /proc/self/status", container.HostConfig{}, 0, "00000000a80425fb"},
		{"cap-drop ALL", "grep CapEff /proc/self/status", container.HostConfig{CapDrop: []string{"ALL"}}, 0, "0000000000000000"},
		{"cap-drop CHOWN enforced", "touch /f && chown 1:1 /f", container.HostConfig{CapDrop: []string{"CHOWN"}}, 1, "Operation not permitted"},
		{"seccomp default blocks unshare", "unshare -U true", container.HostConfig{}, 1, "Operation not permitted"},
		{"seccomp unconfined allows unshare", "unshare -U true && echo ok", container.HostConfig{SecurityOpt: []string{"seccomp=unconfined"}}, 0, "ok"},
		{"seccomp profile denies mkdir", "mkdir /x", container.HostConfig{SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`}}, 1, "Operation not permitted"},
		{"no-new-privileges", "grep NoNewPrivs /proc/self/status", container.HostConfig{SecurityOpt: []string{"no-new-privileges"}}, 0, "NoNewPrivs:\t1"},
		{"memory limit set", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes", container.HostConfig{Resources: container.Resources{Memory: 32 << 20}}, 0, "33554432"},
		{"memory limit enforced", "dd if=/dev/zero of=/dev/null bs=100M count=1", container.HostConfig{Resources: container.Resources{Memory: 16 << 20, MemorySwap: 16 << 20}}, 137, ""},
		{"pids limit", "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max", container.HostConfig{Resources: container.Resources{PidsLimit: &pids}}, 0, "10\n"},
		// The sleeps must outlive the loop: with "sleep 2" a loop slowed
		// past 2 s on a loaded machine saw the first ones exit and never
		// reached the limit. The shell exits at the failed fork (status 2)
		// and, as the namespace's init, takes the sleeps with it.
		{"pids limit enforced", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 60 & done; wait", container.HostConfig{Resources: container.Resources{PidsLimit: &pids}}, 2, "can't fork"},
		{"cpus", "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us", container.HostConfig{Resources: container.Resources{NanoCPUs: 500000000}}, 0, "50000"},
		{"ulimit", "ulimit -n; ulimit -Hn", container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}}}, 0, "100\n200"},
		{"sysctl", "cat /proc/sys/kernel/shmmni", container.HostConfig{Sysctls: map[string]string{"kernel.shmmni": "1000"}}, 0, "1000"},
		{"oom-score-adj up", "cat /proc/self/oom_score_adj", container.HostConfig{OomScoreAdj: 300}, 0, "300"},
		{"read-only rootfs", "touch /x", container.HostConfig{ReadonlyRootfs: true}, 1, "Read-only file system"},
		{"read-only bind", "cat /data/f; touch /data/g", container.HostConfig{Binds: []string{hostDir + ":/data:ro"}}, 1, "from host"},
		{"read-only bind refuses writes", "touch /data/g", container.HostConfig{Binds: []string{hostDir + ":/data:ro"}}, 1, "Read-only file system"},
		{"tmpfs", "grep ' /t ' /proc/mounts", container.HostConfig{Tmpfs: map[string]string{"/t": "size=1m"}}, 0, "tmpfs /t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k"},
		{"tmpfs size enforced", "dd if=/dev/zero of=/t/big bs=1M count=4", container.HostConfig{Tmpfs: map[string]string{"/t": "size=1m"}}, 1, "No space left"},
		{"device", "echo hi > /dev/mynull && echo ok", container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rwm"}}}}, 0, "ok"},
		{"privileged", "grep CapEff /proc/self/status; grep ' /sys ' /proc/mounts", container.HostConfig{Privileged: true}, 0, "sysfs /sys sysfs rw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBuiltSpec(t, shContainer(tc.script, tc.hc), "", specEnv{})
			out := r.stdout + r.stderr
			if r.code != tc.code || !strings.Contains(out, tc.contains) {
				t.Fatalf("exit %d (want %d), output %q (want %q)", r.code, tc.code, out, tc.contains)
			}
		})
	}
}

func TestOOMScoreAdjNeedsCapability(t *testing.T) {
	if heldCaps()(24) {
		t.Skip("this process holds CAP_SYS_RESOURCE: lowering the score is allowed")
	}
	_, err := buildSpecEnv(testContainer(container.HostConfig{OomScoreAdj: -500}), testRootfs(t), specEnv{})
	if !errors.Is(err, errdefs.ErrPermission) || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
		t.Fatalf("got %v, want a permission error naming CAP_SYS_RESOURCE", err)
	}
}

// TestVolumes runs containers with volumes prepared as the engine does:
// a named volume is created on first use and filled from the image, keeps
// what one container wrote for the next, and rm -v removes only anonymous
// volumes.
func TestVolumes(t *testing.T) {
	testutil.RequiresRoot(t)
	rt, cleanup, err := testutil.RuntimeBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	e := &Engine{opts: Options{Root: t.TempDir()}}
	ctx := context.Background()
	run := func(script string, binds ...string) (specRun, *Container) {
		t.Helper()
		c := shContainer(script, container.HostConfig{Binds: binds})
		b := testutil.NewBundle(t, rt)
		if err := os.MkdirAll(filepath.Join(b.Rootfs, "seed"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(b.Rootfs, "seed", "from-image"), []byte("image data"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(b.Rootfs, "seed", "from-image"), 1000, 1000); err != nil {
			t.Fatal(err)
		}
		env, err := e.prepareMounts(ctx, c, b.Rootfs)
		if err != nil {
			t.Fatal(err)
		}
		return runBuiltSpec(t, c, b.Rootfs, env), c
	}
	r, _ := run("stat -c '%u %a' /seed/from-image && cat /seed/from-image && echo persisted > /seed/new", "data:/seed")
	if r.code != 0 || !strings.Contains(r.stdout, "1000 640\nimage data") {
		t.Fatalf("first run: %+v", r)
	}
	r, _ = run("cat /seed/new", "data:/seed")
	if r.code != 0 || r.stdout != "persisted\n" {
		t.Fatalf("second run: %+v", r)
	}
	vols, err := e.VolumeList(ctx)
	if err != nil || len(vols) != 1 || vols[0].Name != "data" {
		t.Fatalf("volumes: %v %+v", err, vols)
	}
	// nocopy: the image's content is not copied.
	r, _ = run("ls /seed", "empty:/seed:nocopy")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("nocopy: %+v", r)
	}
	r, c := run("echo x > /anon/f", "/anon", "data:/seed")
	if r.code != 0 {
		t.Fatalf("anonymous: %+v", r)
	}
	anon := anonymousVolumeName(c.ID, "/anon")
	if _, err := e.VolumeInspect(ctx, anon); err != nil {
		t.Fatal(err)
	}
	if err := removeContainerVolumes(ctx, e, c); err != nil {
		t.Fatal(err)
	}
	if _, err := e.VolumeInspect(ctx, anon); !errdefs.IsNotFound(err) {
		t.Fatalf("anonymous volume after rm -v: %v", err)
	}
	if _, err := e.VolumeInspect(ctx, "data"); err != nil {
		t.Fatalf("named volume removed by rm -v: %v", err)
	}
	if err := e.VolumeRemove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
}

// TestInit runs a command under berth-init: PID 1 is the init, the
// command's exit status comes through, and an orphan is reaped.
func TestInit(t *testing.T) {
	testutil.RequiresRoot(t)
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	initBin := filepath.Join(t.TempDir(), "berth-init")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", initBin, "./cmd/berth-init")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build berth-init: %v\n%s", err, out)
	}
	yes := true
	// The orphan: a background sleep whose parent shell exits; PID 1 must
	// reap it, so no zombie shows in /proc after it ends. The script waits
	// (up to 5 s) for the orphan's /proc entry to go, which only a reap
	// does, rather than a fixed 0.5 s that a loaded machine could end
	// between the exit and the reap.
	script := `p=$(sh -c 'sleep 0.2 >/dev/null & echo $!'); i=0; while [ -e /proc/$p ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; ` +
		`tr '\0' ' ' < /proc/1/cmdline; echo; grep -l zombie /proc/[0-9]*/status 2>/dev/null | wc -l; exit 3`
	r := runBuiltSpec(t, shContainer(script, container.HostConfig{Init: &yes}), "", specEnv{initPath: initBin})
	if r.code != 3 || !strings.Contains(r.stdout, "/sbin/berth-init -- sh -c") || !strings.HasSuffix(r.stdout, "\n0\n") {
		t.Fatalf("exit %d, stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}
