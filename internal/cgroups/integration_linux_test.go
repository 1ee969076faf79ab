package cgroups

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestMain doubles as a memory hog: the OOM test re-runs the test binary
// with berthCgroupsHog set, and that child allocates until it is killed.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_CGROUPS_TEST_HOG") == "1" {
		// Wait for the parent to put us in the cgroup.
		_, _ = io.ReadFull(os.Stdin, make([]byte, 1))
		var keep [][]byte
		for i := 0; i < 256; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1 // touch every page so it is really charged
			}
			keep = append(keep, b)
		}
		_ = keep
		os.Exit(0)
	}
	// Orphans of test children (the pids test's background sleeps) are
	// reparented to us, so cleanup can reap them: a killed task keeps its
	// cgroup busy (rmdir EBUSY) until it is reaped.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	os.Exit(m.Run())
}

func requiresRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("requires root")
	}
}

// testManager creates a Manager for a unique cgroup and registers cleanup
// that kills whatever is left in it, thaws it and removes it, even when the
// test fails.
func testManager(t *testing.T) Manager {
	t.Helper()
	requiresRoot(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	m, err := New("/berth-test-"+hex.EncodeToString(b[:]), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupCgroup(t, m) })
	return m
}

// reapZombies reaps every exited child without blocking.
func reapZombies() {
	for {
		pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func cleanupCgroup(t *testing.T, m Manager) {
	_ = m.Thaw()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pids, _ := m.Pids()
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	reapZombies()
	if err := m.Destroy(); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// gatedChild starts `sh -c script` that waits for one byte on stdin before
// running script, so it can be moved into the cgroup first. release lets it
// go.
func gatedChild(t *testing.T, script string) (cmd *exec.Cmd, out *bytes.Buffer, release func()) {
	t.Helper()
	cmd = exec.Command("/bin/sh", "-c", "read -r _gate; "+script)
	out = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	w := startGated(t, cmd)
	return cmd, out, func() { _, _ = w.Write([]byte("\n")); w.Close() }
}

func startGated(t *testing.T, cmd *exec.Cmd) io.WriteCloser {
	t.Helper()
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return w
}

func cgroupDir(t *testing.T, m Manager, ctrl string) string {
	t.Helper()
	switch x := m.(type) {
	case *v1Manager:
		return x.dirs[ctrl]
	case *v2Manager:
		return x.dir
	}
	t.Fatalf("unknown manager %T", m)
	return ""
}

func TestIntegrationLifecycle(t *testing.T) {
	m := testManager(t)
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })

	start := time.Now()
	if err := m.Apply(sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	t.Logf("Apply took %v", time.Since(start))
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},
		},
	}
	start = time.Now()
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	t.Logf("Set took %v", time.Since(start))

	if v1, ok := m.(*v1Manager); ok {
		checks := map[string]string{
			"memory/memory.limit_in_bytes":       "67108864",
			"memory/memory.memsw.limit_in_bytes": "134217728",
			"pids/pids.max":                      "20",
			"cpu/cpu.shares":                     "512",
		}
		for f, want := range checks {
			c, file, _ := strings.Cut(f, "/")
			if got := readBack(t, v1.dirs[c]+"/"+file); got != want {
				t.Errorf("%s = %q, want %q", f, got, want)
			}
		}
		list := readBack(t, v1.dirs["devices"]+"/devices.list")
		if list != "c 1:3 rwm\nc 1:5 r" && list != "c 1:5 r\nc 1:3 rwm" {
			t.Errorf("devices.list = %q", list)
		}
		// Memory limits go both ways: raise both (memsw first), then
		// lower both below the old values (memory first).
		for _, lim := range [][2]int64{{256 << 20, 512 << 20}, {32 << 20, 48 << 20}} {
			if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(lim[0]), Swap: i64(lim[1])}}); err != nil {
				t.Fatalf("Set memory %v: %v", lim, err)
			}
			if got := readBack(t, v1.dirs["memory"]+"/memory.memsw.limit_in_bytes"); got != formatInt(lim[1]) {
				t.Errorf("memsw = %s, want %d", got, lim[1])
			}
		}
	}

	// The exec path: Apply on the existing cgroup only adds the pid.
	second := exec.Command("sleep", "60")
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Process.Kill(); _ = second.Wait() })
	if err := m.Apply(second.Process.Pid); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil || len(pids) != 2 {
		t.Errorf("Pids = %v, %v; want 2 pids", pids, err)
	}

	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Errorf("after Freeze: Frozen = %v, %v", f, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Errorf("after Thaw: Frozen = %v, %v", f, err)
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids.Current != 2 || st.Pids.Limit != 20 || st.Memory.Usage.Limit != 32<<20 || len(st.CPU.Usage.Percpu) == 0 {
		t.Errorf("stats = %+v", st)
	}

	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	_ = second.Process.Kill()
	_ = second.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if v1, ok := m.(*v1Manager); ok {
		for _, d := range append(v1.uniqueDirs(), v1.unified) {
			if d != "" && fileExists(d) {
				t.Errorf("%s still exists after Destroy", d)
			}
		}
	}
}

func testDevices(t *testing.T, m Manager) {
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}, // /dev/zero
	}
	run := func(script string) (string, error) {
		cmd, out, release := gatedChild(t, script)
		if err := m.Apply(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		release()
		err := cmd.Wait()
		return out.String(), err
	}
	// Set after the first Apply: Set needs the directories.
	cmd, _, release := gatedChild(t, "true")
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatal(err)
	}
	release()
	_ = cmd.Wait()
	if out, err := run("head -c 1 /dev/zero | wc -c"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("reading /dev/zero: %q, %v; want allowed", out, err)
	}
	if out, err := run("head -c 1 /dev/urandom"); err == nil {
		t.Errorf("reading /dev/urandom: %q; want denied", out)
	} else if !strings.Contains(out, "not permitted") {
		t.Errorf("reading /dev/urandom failed with %q; want EPERM", out)
	}
}

func TestIntegrationDevices(t *testing.T) {
	testDevices(t, testManager(t))
}

// TestIntegrationV2OnHybrid drives the v2 manager against the unified
// hierarchy of a hybrid host: it has no memory or pids controllers there,
// but cgroup.procs, cgroup.freeze and eBPF device filters work.
func TestIntegrationV2OnHybrid(t *testing.T) {
	requiresRoot(t)
	if DetectMode() != Hybrid {
		t.Skip("requires a hybrid host")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	m := newV2(cgroupRoot+"/unified", "/berth-test-v2-"+hex.EncodeToString(b[:]))
	t.Cleanup(func() { cleanupCgroup(t, m) })

	testDevices(t, m)

	cmd, _, _ := gatedChild(t, "true")
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Errorf("Frozen = %v, %v", f, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Errorf("after Thaw: Frozen = %v, %v", f, err)
	}
	// Replacing the device filter detaches the old program.
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true}}}); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(m.dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if ids, err := bpfQueryCgroupDevice(fd); err != nil || len(ids) != 1 {
		t.Errorf("after replacing the filter: attached programs %v, %v; want one", ids, err)
	}
}

// TestIntegrationBPFLoadError checks that a program the verifier rejects
// fails with the errno kept and the verifier's reason attached.
func TestIntegrationBPFLoadError(t *testing.T) {
	requiresRoot(t)
	// exit without setting R0.
	fd, err := bpfLoadCgroupDevice([]bpfInsn{{code: unix.BPF_JMP | unix.BPF_EXIT}}, deviceFilterLicense, "")
	if err == nil {
		unix.Close(fd)
		t.Fatal("program returning an unset R0 loaded")
	}
	if !errors.Is(err, unix.EACCES) || !strings.Contains(err.Error(), "R0") {
		t.Errorf("error %q; want EACCES and the verifier's complaint about R0", err)
	}
}

func TestIntegrationPidsLimit(t *testing.T) {
	m := testManager(t)
	cmd, out, release := gatedChild(t, "i=0; while [ $i -lt 20 ]; do sleep 30 >/dev/null 2>&1 & i=$((i+1)); done; echo started")
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}}); err != nil {
		t.Fatal(err)
	}
	release()
	_ = cmd.Wait()
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > 5 {
		t.Errorf("%d processes in the cgroup, limit 5", len(pids))
	}
	if !strings.Contains(strings.ToLower(out.String()), "fork") && !strings.Contains(out.String(), "resource") {
		t.Errorf("no fork failure reported; output %q", out.String())
	}
}

func TestIntegrationOOMKill(t *testing.T) {
	m := testManager(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "BERTH_CGROUPS_TEST_HOG=1")
	w := startGated(t, cmd)
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// memsw = memory: no swap to escape to.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}}); err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte{1})
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("hog exited with %v, want killed by SIGKILL", err)
	}
	n, err := m.OOMKillCount()
	if err != nil || n < 1 {
		t.Errorf("OOMKillCount = %d, %v; want >= 1", n, err)
	}
}
