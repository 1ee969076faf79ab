//go:build linux

package build_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledBuildStepDies: a build killed with SIGKILL during a RUN step
// leaves no process of the step running, no runtime state and no bundle
// under state/build once the next build has run. With the step's watcher
// alive the container dies at once with the build; with the watcher
// killed too (as a host without /bin/sh would have none), the next build
// finds the step's lock free and kills and deletes its container.
func TestKilledBuildStepDies(t *testing.T) {
	cases := []struct {
		name        string
		killWatcher bool
	}{
		{"container dies with the build", false},
		{"next build reclaims the container", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			// The mark tells this step's processes from any other's.
			mark := fmt.Sprintf("killed-build-%d-%d", os.Getpid(), time.Now().UnixNano())
			ctx := e.context(map[string]string{"Dockerfile": "FROM busybox\nENV BERTH_TEST_MARK=" + mark + "\nRUN sleep 300\n"})
			c := e.cmd("build", "-q", ctx)
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			stateDir := filepath.Join(e.state, "build")
			t.Cleanup(func() {
				c.Process.Kill()
				c.Wait()
				for _, pid := range procsWith("BERTH_TEST_MARK="+mark, "environ") {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				for _, id := range stepIDs(stateDir) {
					for _, pid := range procsWith(id, "cmdline") {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				// Reclaims what a failure left: containers, cgroups, bundles.
				e.run(nil, "builder", "prune", "-f")
			})

			deadline := time.Now().Add(30 * time.Second)
			for len(procsWith("BERTH_TEST_MARK="+mark, "environ")) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the RUN step's sleep never started")
				}
				time.Sleep(20 * time.Millisecond)
			}
			ids := stepIDs(stateDir)
			if len(ids) != 1 {
				t.Fatalf("state/build holds steps %v, want one", ids)
			}
			id := ids[0]
			if tc.killWatcher {
				watchers := procsWith(id, "cmdline")
				var killed int
				for _, pid := range watchers {
					if pid != c.Process.Pid && isShell(pid) {
						syscall.Kill(pid, syscall.SIGKILL)
						killed++
					}
				}
				if killed != 1 {
					t.Fatalf("found %d watchers of step %s, want 1", killed, id)
				}
			}
			c.Process.Kill()
			c.Wait()

			if !tc.killWatcher {
				deadline := time.Now().Add(10 * time.Second)
				for len(procsWith("BERTH_TEST_MARK="+mark, "environ")) > 0 && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if pids := procsWith("BERTH_TEST_MARK="+mark, "environ"); len(pids) > 0 {
					t.Errorf("the step's processes %v outlived the killed build by 10s", pids)
				}
			} else if pids := procsWith("BERTH_TEST_MARK="+mark, "environ"); len(pids) == 0 {
				t.Fatal("the step's sleep died before the next build: nothing left to reclaim")
			}

			e.mustBuild(e.context(map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"}))
			if pids := procsWith("BERTH_TEST_MARK="+mark, "environ"); len(pids) > 0 {
				t.Errorf("the killed build's step still runs after the next build: pids %v", pids)
			}
			if ents, _ := os.ReadDir(stateDir); len(ents) > 0 {
				var names []string
				for _, ent := range ents {
					names = append(names, ent.Name())
				}
				t.Errorf("left in state/build: %v", names)
			}
			if _, err := os.Stat(filepath.Join(e.state, "runtime", id)); !os.IsNotExist(err) {
				t.Errorf("the runtime still has step %s: %v", id, err)
			}
			if out := e.ok("ps", "-a", "-q"); strings.TrimSpace(out) != "" {
				t.Errorf("ps -a lists %q; build steps are not containers of the user", out)
			}
		})
	}
}

// stepIDs are the RUN steps with a bundle or lock in state/build.
func stepIDs(dir string) []string {
	ents, _ := os.ReadDir(dir)
	seen := map[string]bool{}
	var ids []string
	for _, ent := range ents {
		id := strings.TrimSuffix(ent.Name(), ".lock")
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// procsWith lists the processes whose /proc/PID/<file> contains s.
func procsWith(s, file string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), file))
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isShell(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	base := filepath.Base(exe)
	return base == "sh" || base == "dash" || base == "bash" || base == "busybox"
}
