//go:build linux

package api_test

import (
	"strings"
	"testing"
)

// TestCompatCommitChange: `commit --change` through the stock docker CLI
// against berthd (the CLI sends the instructions as the changes query
// parameter, which dockerd applies) and through the in-process berth: the
// image gets the ENV, LABEL and CMD, and an instruction commit cannot
// apply is refused with its name.
func TestCompatCommitChange(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	must := dockerMust(t, d, docker)
	must("create", "--pull", "never", "--name", "changesrc", "busybox", "true")
	t.Cleanup(func() { docker("", "rm", "-f", "changesrc") })
	berth := func(args ...string) (string, string, int) { return d.local(nil, args...) }
	clis := map[string]func(args ...string) (string, string, int){
		"docker": func(args ...string) (string, string, int) { return docker("", args...) },
		"berth":  berth,
	}
	for name, run := range clis {
		t.Run(name, func(t *testing.T) {
			ref := "changed-" + name + ":1"
			out, errOut, code := run("commit", "-c", "ENV GREETING=hello", "-c", "LABEL team=blue", "-c", `CMD ["sh", "-c", "echo $GREETING"]`, "-c", "EXPOSE 80", "changesrc", ref)
			if code != 0 {
				t.Fatalf("commit: exit %d: %s%s", code, out, errOut)
			}
			got := strings.TrimSpace(must("image", "inspect", "-f", "{{json .Config.Env}} {{json .Config.Labels}} {{json .Config.Cmd}}", ref))
			for _, want := range []string{`"GREETING=hello"`, `{"team":"blue"}`, `["sh","-c","echo $GREETING"]`} {
				if !strings.Contains(got, want) {
					t.Errorf("inspect: %s: no %s", got, want)
				}
			}
			if out := must("run", "--rm", "--network", "none", ref); strings.TrimSpace(out) != "hello" {
				t.Errorf("run %s printed %q, want hello", ref, out)
			}
			// The image's EXPOSE joins the container's --expose at
			// create, and commit keeps both (dockerd's merge).
			ctr := "exposed-" + name
			must("create", "--pull", "never", "--name", ctr, "--expose", "8080", ref)
			if got := must("inspect", "-f", "{{json .Config.ExposedPorts}}", ctr); !strings.Contains(got, `"80/tcp"`) || !strings.Contains(got, `"8080/tcp"`) {
				t.Errorf("container from an image exposing 80, with --expose 8080: ExposedPorts %s", got)
			}
			if out, errOut, code := run("commit", ctr, ref+"-2"); code != 0 {
				t.Fatalf("commit: exit %d: %s%s", code, out, errOut)
			}
			must("rm", ctr)
			if got := must("image", "inspect", "-f", "{{json .Config.ExposedPorts}}", ref+"-2"); !strings.Contains(got, `"80/tcp"`) || !strings.Contains(got, `"8080/tcp"`) {
				t.Errorf("committed image: ExposedPorts %s, want 80 and 8080", got)
			}
			out, errOut, code = run("commit", "-c", "RUN rm -rf /", "changesrc", "refused:1")
			if code == 0 || !strings.Contains(errOut, "RUN is not supported") {
				t.Errorf("commit -c RUN: exit %d: %s%s", code, out, errOut)
			}
			if _, _, code := docker("", "image", "inspect", "refused:1"); code == 0 {
				t.Errorf("a refused commit made an image")
			}
		})
	}
}
