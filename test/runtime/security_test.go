//go:build linux

package runtime_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestHostileRootfsSymlinks: symlinks in the rootfs that point at host
// paths are resolved inside the rootfs (as if the rootfs were /), so mounts
// land in the rootfs and the host directory is never touched.
func TestHostileRootfsSymlinks(t *testing.T) {
	t.Parallel()
	testutil.RequiresRoot(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte("mounted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		// link is the rootfs path made a symlink to target(hostDir).
		link   string
		target func(hostDir string) string
		mount  *specs.Mount
		script string
		want   []string
	}{
		{
			name: "mount destination under an absolute symlink", link: "/mnt",
			target: func(h string) string { return h },
			mount:  &specs.Mount{Destination: "/mnt/sub", Type: "bind", Source: src, Options: []string{"bind", "ro"}},
			script: `cat /mnt/sub/marker`, want: []string{"mounted"},
		},
		{
			name: "tmpfs destination is an absolute symlink", link: "/mnt",
			target: func(h string) string { return h },
			mount:  &specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
			script: `echo in-tmpfs > /mnt/f && cat /mnt/f`, want: []string{"in-tmpfs"},
		},
		{
			name: "mount destination under a relative escaping symlink", link: "/opt",
			target: func(h string) string { return "../../../../../../../../.." + h },
			mount:  &specs.Mount{Destination: "/opt/deep/sub", Type: "bind", Source: src, Options: []string{"bind", "ro"}},
			script: `cat /opt/deep/sub/marker`, want: []string{"mounted"},
		},
		{
			// Common in real images: /var/run -> /run, and here /run
			// does not exist yet. Resolved in the root, the mount
			// lands on (a new) /run/x.
			name: "benign dangling absolute symlink /var/run", link: "/var/run",
			target: func(string) string { return "/run" },
			mount:  &specs.Mount{Destination: "/var/run/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
			script: `echo ok > /run/x/f && cat /var/run/x/f`, want: []string{"ok"},
		},
		{
			name: "/dev is an absolute symlink", link: "/dev",
			target: func(h string) string { return h },
			script: `echo x > /dev/null && head -c 4 /dev/zero | wc -c`, want: []string{"4"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRT(t)
			hostDir := t.TempDir()
			id := r.newID()
			b := r.bundle(id, testutil.Shell(tc.script), func(s *specs.Spec) {
				if tc.mount != nil {
					s.Mounts = append(s.Mounts, *tc.mount)
				}
			})
			link := filepath.Join(b.Rootfs, tc.link)
			if err := os.RemoveAll(link); err != nil {
				t.Fatal(err)
			}
			if tc.link == "/var/run" {
				_ = os.RemoveAll(filepath.Join(b.Rootfs, "run"))
			}
			if err := os.Symlink(tc.target(hostDir), link); err != nil {
				t.Fatal(err)
			}
			res := r.run("run", "--bundle", b.Dir, id)
			if got := dirEntries(t, hostDir); len(got) != 0 {
				t.Errorf("SECURITY: the runtime wrote into the host directory %s through the rootfs symlink: %v", hostDir, got)
			}
			if res.code != 0 || strings.Join(strings.Fields(res.stdout), " ") != strings.Join(tc.want, " ") {
				t.Errorf("want the mount inside the rootfs (stdout %q), got %v", tc.want, res)
			}
		})
	}
}

// TestNoHostFdLeak: descriptors open in the runtime's caller (and the
// runtime's own) do not reach the container: neither its init nor an exec'd
// process. The fds are read from the host and from inside, of processes that
// are not running a shell (a shell's own pipes would race with the check).
func TestNoHostFdLeak(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	secret, err := os.Create(filepath.Join(t.TempDir(), "host-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Close()
	withExtra := func(c *execCmd) { c.ExtraFiles = []*os.File{secret, secret} }
	checkFds := func(what, pid string) {
		t.Helper()
		ents := dirEntries(t, "/proc/"+pid+"/fd")
		if strings.Join(ents, " ") != "0 1 2" {
			var targets []string
			for _, e := range ents {
				l, _ := os.Readlink("/proc/" + pid + "/fd/" + e)
				targets = append(targets, e+"->"+l)
			}
			t.Errorf("SECURITY: %s (pid %s) has fds %v, want only 0 1 2", what, pid, targets)
		}
	}

	id := r.newID()
	b := r.bundle(id, testutil.Args("sleep", "1000"))
	if res := r.exec(bg(), withExtra, "run", "--detach", "--bundle", b.Dir, id); res.code != 0 {
		t.Fatalf("%v", res)
	}
	checkFds("init started with run --detach", strconv.Itoa(r.state(id).Pid))

	pidFile := filepath.Join(t.TempDir(), "pid")
	if res := r.exec(bg(), withExtra, "exec", "--detach", "--pid-file", pidFile, id, "sleep", "999"); res.code != 0 {
		t.Fatalf("%v", res)
	}
	checkFds("exec --detach'd process", readFile(t, pidFile))

	// From inside: pid 1 is sleep, so its fd list is stable.
	res := r.exec(bg(), withExtra, "exec", id, "ls", "/proc/1/fd")
	if res.code != 0 || strings.Join(strings.Fields(res.stdout), " ") != "0 1 2" {
		t.Errorf("SECURITY: inside, init's fds are %q, want 0 1 2\n%v", res.stdout, res)
	}

	// A foreground run whose init is not a shell.
	id2 := r.newID()
	b2 := r.bundle(id2, testutil.Args("ls", "/proc/self/fd"))
	res = r.exec(bg(), withExtra, "run", "--bundle", b2.Dir, id2)
	// ls's own directory fd is 3.
	if res.code != 0 || strings.Join(strings.Fields(res.stdout), " ") != "0 1 2 3" {
		t.Errorf("SECURITY: run: ls /proc/self/fd = %q, want 0 1 2 and ls's own 3\n%v", res.stdout, res)
	}
}

func sha(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestRuntimeBinaryNotWritable is CVE-2019-5736's shape: a process in the
// container opens /proc/<pid>/exe of a runtime process that is in its pid
// namespace (a created container's init, an exec'd process before execve)
// and writes to it. The runtime binary on the host must not change.
func TestRuntimeBinaryNotWritable(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	// A private copy: if the attack works it damages only this test.
	r.bin = filepath.Join(t.TempDir(), "berth-runtime")
	data, err := os.ReadFile(runtimeBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	before := sha(t, r.bin)

	// A is created, not started: its pid 1 is still the runtime's init.
	idA := r.newID()
	bA := r.bundle(idA, testutil.Args("sleep", "1000"))
	r.must("create", "--bundle", bA.Dir, idA)
	pidA := strconv.Itoa(r.state(idA).Pid)
	// B joins A's pid namespace and attacks /proc/1/exe, then keeps
	// attacking every process it can see while we exec into B.
	attack := `for p in /proc/[0-9]*; do [ "$p" = /proc/$$ ] && continue; echo x >> $p/exe 2>/dev/null && echo "WROTE $p $(cat $p/comm)"; done`
	idB := r.newID()
	bB := r.bundle(idB, testutil.Shell(`echo x >> /proc/1/exe && echo WROTE-INIT; `+
		`while :; do `+attack+`; done > /tmp/attack.log`), func(s *specs.Spec) {
		testutil.SetNamespace(s, specs.PIDNamespace, "/proc/"+pidA+"/ns/pid")
	})
	r.must("run", "--detach", "--bundle", bB.Dir, idB)
	for i := 0; i < 20; i++ {
		r.run("exec", idB, "true")
	}
	time.Sleep(100 * time.Millisecond)
	r.must("kill", idB, "KILL")
	log, _ := os.ReadFile(filepath.Join(bB.Rootfs, "tmp", "attack.log"))
	if strings.TrimSpace(string(log)) != "" {
		t.Errorf("SECURITY: a container process opened another process's exe for writing:\n%s", log)
	}
	if after := sha(t, r.bin); after != before {
		t.Fatalf("SECURITY: the runtime binary on the host changed (sha256 %s -> %s)", before, after)
	}
}

// TestSignalDelivery: kill delivers a signal to the container's init, whose
// handler runs.
func TestSignalDelivery(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id := r.newID()
	b := r.bundle(id, testutil.Shell(`trap 'echo got-usr1 > /tmp/sig; exit 0' USR1; touch /tmp/ready; while :; do sleep 0.05; done`))
	r.must("run", "--detach", "--bundle", b.Dir, id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(b.Rootfs, "tmp", "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("container never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.must("kill", id, "USR1")
	r.waitStatus(id, specs.StateStopped)
	if got := readFile(t, filepath.Join(b.Rootfs, "tmp", "sig")); got != "got-usr1" {
		t.Errorf("trap output %q, want got-usr1", got)
	}
}

// TestKillAll: kill --all signals every process in the container.
func TestKillAll(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id, _ := r.startDetached()
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.must("exec", "--detach", "--pid-file", pidFile, id, "sleep", "999")
	execPid := readFile(t, pidFile)
	r.must("kill", "--all", id, "KILL")
	r.waitStatus(id, specs.StateStopped)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + execPid + "/stat")
		if err != nil || strings.Contains(string(st), ") Z") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec'd process %s survived kill --all", execPid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
