//go:build linux

package api_test

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCompatPruneFilters: `image prune` and `system prune` with the
// until, label and label! filters, through the stock docker CLI against
// berthd, `berth --host` and the in-process `berth`. Images committed
// from a labelled container carry its labels (as dockerd's commit does),
// so each CLI makes two fresh dangling images, one labelled team=a, beside
// the older, named busybox fixture that nothing here may delete. Every
// create says --pull never: a busybox deleted by mistake must fail here,
// not send a pull to Docker Hub.
func TestCompatPruneFilters(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	must := dockerMust(t, d, docker)
	clis := []struct {
		name string
		run  func(stdin string, args ...string) (string, string, int)
	}{
		{"docker", docker},
		{"berth --host", func(stdin string, args ...string) (string, string, int) {
			return d.run(strings.NewReader(stdin), args...)
		}},
		{"berth", func(stdin string, args ...string) (string, string, int) {
			return d.local(strings.NewReader(stdin), args...)
		}},
	}
	// dangling makes a fresh untagged image from a container with labels
	// and returns its ID (sha256:…).
	dangling := func(name string, labels ...string) string {
		args := []string{"create", "--name", name}
		for _, l := range labels {
			args = append(args, "--label", l)
		}
		must(append(args, "--pull", "never", "busybox", "true")...)
		id := strings.TrimSpace(must("commit", name))
		must("rm", name)
		return id
	}
	exists := func(id string) bool {
		_, _, code := docker("", "image", "inspect", id)
		return code == 0
	}
	for i, cli := range clis {
		t.Run(cli.name, func(t *testing.T) {
			run := func(args ...string) string {
				t.Helper()
				out, errOut, code := cli.run("", args...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s%s", args, code, out, errOut)
				}
				return out
			}
			n := strconv.Itoa(i)
			teamA := dangling("prune-a"+n, "team=a")
			plain := dangling("prune-plain" + n)

			// Declined at the prompt: nothing goes.
			out, _, code := cli.run("n\n", "image", "prune")
			if code != 0 || !strings.Contains(out, "WARNING! This will remove all dangling images.") || !exists(teamA) || !exists(plain) {
				t.Fatalf("declined prune: exit %d %q", code, out)
			}
			// label= takes the labelled image only.
			out = run("image", "prune", "-f", "--filter", "label=team=a")
			if !strings.Contains(out, "deleted: "+teamA) || exists(teamA) || !exists(plain) {
				t.Errorf("prune label=team=a: %q; team=a left %v, plain left %v", out, exists(teamA), exists(plain))
			}
			// until: the fresh image is younger than an hour, so it stays;
			// a time ahead of now takes it.
			run("image", "prune", "-f", "--filter", "until=1h")
			if !exists(plain) {
				t.Errorf("prune until=1h deleted an image made now")
			}
			ahead := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
			run("image", "prune", "-f", "--filter", "until="+ahead, "--filter", "label!=team=a")
			if exists(plain) {
				t.Errorf("prune until=%s label!=team=a left %s", ahead, plain)
			}
			// -a with a label nothing has: the named fixture stays.
			run("image", "prune", "-a", "-f", "--filter", "label=nobody")
			if !exists("busybox") {
				t.Fatalf("prune -a label=nobody deleted busybox")
			}
			for _, bad := range []string{"colour=red", "dangling=maybe", "until=yesterday"} {
				if out, errOut, code := cli.run("", "image", "prune", "-f", "--filter", bad); code == 0 {
					t.Errorf("prune --filter %s: exit 0: %s", bad, out)
				} else if !strings.Contains(errOut, strings.SplitN(bad, "=", 2)[0]) && !strings.Contains(errOut, "yesterday") {
					t.Errorf("prune --filter %s: the error does not name the filter: %s", bad, errOut)
				}
			}

			// system prune --filter label=team=b: the labelled stopped
			// container, network and image go; the others stay.
			must("create", "--pull", "never", "--name", "sys-b"+n, "--label", "team=b", "busybox", "true")
			must("create", "--pull", "never", "--name", "sys-c"+n, "busybox", "true")
			must("network", "create", "--label", "team=b", "sysnet-b"+n)
			must("network", "create", "sysnet-c"+n)
			t.Cleanup(func() {
				docker("", "rm", "-f", "sys-b"+n, "sys-c"+n)
				docker("", "network", "rm", "sysnet-b"+n, "sysnet-c"+n)
			})
			imgB := dangling("prune-b"+n, "team=b")
			out = run("system", "prune", "-f", "--filter", "label=team=b")
			for _, want := range []string{"Deleted Containers:", "Deleted Networks:", "sysnet-b" + n, "Deleted Images:", "deleted: " + imgB, "Total reclaimed space:"} {
				if !strings.Contains(out, want) {
					t.Errorf("system prune label=team=b printed no %q:\n%s", want, out)
				}
			}
			if _, _, code := docker("", "container", "inspect", "sys-b"+n); code == 0 {
				t.Errorf("system prune left the labelled container")
			}
			if _, _, code := docker("", "container", "inspect", "sys-c"+n); code != 0 {
				t.Errorf("system prune deleted a container without the label")
			}
			if _, _, code := docker("", "network", "inspect", "sysnet-c"+n); code != 0 {
				t.Errorf("system prune deleted a network without the label")
			}
			if !exists("busybox") {
				t.Fatalf("system prune deleted busybox")
			}
			// until with --volumes is refused before anything is asked.
			if out, errOut, code := cli.run("", "system", "prune", "-f", "--volumes", "--filter", "until=1h"); code == 0 || !strings.Contains(errOut, `"until" filter is not supported with "--volumes"`) {
				t.Errorf("system prune --volumes until=1h: exit %d: %s%s", code, out, errOut)
			}
		})
	}
}
