//go:build linux

package engine_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadOnlyBindRecursion: a read-only bind is read-only with its
// submounts (API 1.44's default, "rro"), on every start of the container;
// --mount's bind-recursive options keep Docker's other behaviours, and
// the CLI refuses the combinations the docker CLI refuses.
func TestReadOnlyBindRecursion(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	sub := filepath.Join(host, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "rro-sub", sub).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", sub).Run() })

	// A writable probe: "rw" or "ro" for the top and the submount.
	const probe = `for d in /x /x/sub; do if touch $d/p 2>/dev/null; then rm $d/p; echo rw; else echo ro; fi; done | tr '\n' ' '`
	for _, tc := range []struct {
		name  string
		mount []string
		want  string
	}{
		{"-v ro", []string{"-v", host + ":/x:ro"}, "ro ro "},
		{"-v rw", []string{"-v", host + ":/x"}, "rw rw "},
		{"--mount readonly", []string{"--mount", "type=bind,src=" + host + ",dst=/x,readonly"}, "ro ro "},
		{"bind-recursive=enabled", []string{"--mount", "type=bind,src=" + host + ",dst=/x,readonly,bind-recursive=enabled"}, "ro ro "},
		{"bind-recursive=writable", []string{"--mount", "type=bind,src=" + host + ",dst=/x,readonly,bind-recursive=writable"}, "ro rw "},
		{"bind-recursive=readonly", []string{"--mount", "type=bind,src=" + host + ",dst=/x,ro=true,bind-recursive=readonly,bind-propagation=rprivate"}, "ro ro "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, tc.mount...), "busybox", "sh", "-c", probe)
			if got := e.ok(args...); got != tc.want {
				t.Errorf("top, submount: %q, want %q", got, tc.want)
			}
		})
	}

	// The submount is not even there with bind-recursive=disabled.
	if got := e.ok("run", "--rm", "--mount", "type=bind,src="+host+",dst=/x,readonly,bind-recursive=disabled", "busybox", "grep", "-c", " /x", "/proc/mounts"); strings.TrimSpace(got) != "1" {
		t.Errorf("mounts at /x with bind-recursive=disabled: %s", got)
	}

	// A restart mounts it as the first start did.
	e.ok("run", "-d", "--name", "rro", "-v", host+":/x:ro", "busybox", "sleep", "1000")
	e.ok("restart", "-t", "0", "rro")
	if got := e.ok("exec", "rro", "sh", "-c", probe); got != "ro ro " {
		t.Errorf("after restart: %q", got)
	}

	for _, tc := range []struct {
		name, spec, want string
	}{
		{"writable without readonly", "type=bind,src=" + host + ",dst=/x,bind-recursive=writable", "'bind-recursive=writable' requires 'readonly'"},
		{"readonly without readonly", "type=bind,src=" + host + ",dst=/x,bind-recursive=readonly", "'bind-recursive=readonly' requires 'readonly'"},
		{"readonly without rprivate", "type=bind,src=" + host + ",dst=/x,readonly,bind-recursive=readonly", "requires 'bind-propagation=rprivate'"},
		{"bad value", "type=bind,src=" + host + ",dst=/x,readonly,bind-recursive=sometimes", `must be "enabled", "disabled", "writable", or "readonly"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := e.run(nil, "run", "--rm", "--mount", tc.spec, "busybox", "true")
			if code != 125 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d (want 125), stderr %q (want %q)", code, errOut, tc.want)
			}
		})
	}
}
