//go:build linux

package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestAllTags: `push -a` and `pull -a` against a real registry on
// loopback, through the stock docker CLI (which asks berthd for every tag
// by leaving the tag out), `berth --host` and the in-process berth; and a
// plain pull of a bare repository still pulls :latest only.
func TestAllTags(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	d, docker := dockerAgainstBerthd(t)
	must := dockerMust(t, d, docker)
	berth := func(args ...string) (string, string, int) { return d.local(nil, args...) }
	registryTags := func(repo string) []string {
		resp, err := http.Get("http://" + reg.Host + "/v2/" + repo + "/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l struct{ Tags []string }
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Fatal(err)
		}
		slices.Sort(l.Tags)
		return l.Tags
	}
	localTags := func(repo string) []string {
		var tags []string
		for _, l := range strings.Fields(must("images", "--format", "{{.Repository}}:{{.Tag}}")) {
			if tag, ok := strings.CutPrefix(l, repo+":"); ok {
				tags = append(tags, tag)
			}
		}
		slices.Sort(tags)
		return tags
	}
	want := []string{"1", "2", "latest"}

	clis := []struct {
		name string
		run  func(args ...string) (string, string, int)
	}{
		{"docker", func(args ...string) (string, string, int) { return docker("", args...) }},
		{"berth --host", func(args ...string) (string, string, int) { return d.run(nil, args...) }},
		{"berth", berth},
	}
	for i, cli := range clis {
		t.Run(cli.name, func(t *testing.T) {
			repo := reg.Host + "/all" + string(rune('a'+i)) + "/box"
			for _, tag := range want {
				must("tag", "busybox", repo+":"+tag)
			}
			out, errOut, code := cli.run("push", "-a", repo)
			if code != 0 {
				t.Fatalf("push -a: exit %d: %s%s", code, out, errOut)
			}
			for _, line := range []string{"The push refers to repository [" + repo + "]", "1: digest: sha256:", "2: digest: sha256:", "latest: digest: sha256:"} {
				if !strings.Contains(out, line) {
					t.Errorf("push -a printed no %q:\n%s", line, out)
				}
			}
			// Each layer's end shows, also in the docker CLI's output to
			// a pipe, which drops every message that carries progress.
			if !strings.Contains(out, ": Pushed\n") && !strings.Contains(out, ": Layer already exists\n") && !strings.Contains(out, ": Mounted from") {
				t.Errorf("push -a printed no layer's end:\n%s", out)
			}
			if got := registryTags(strings.TrimPrefix(repo, reg.Host+"/")); !slices.Equal(got, want) {
				t.Errorf("the registry has tags %v, want %v", got, want)
			}

			for _, tag := range want {
				must("rmi", repo+":"+tag)
			}
			out, errOut, code = cli.run("pull", "-a", repo)
			if code != 0 {
				t.Fatalf("pull -a: exit %d: %s%s", code, out, errOut)
			}
			path := strings.TrimPrefix(repo, reg.Host+"/")
			for _, line := range []string{"1: Pulling from " + path, "2: Pulling from " + path, "latest: Pulling from " + path, "Digest: sha256:", "Status: Downloaded newer image for " + repo + "\n"} {
				if !strings.Contains(out, line) {
					t.Errorf("pull -a printed no %q:\n%s", line, out)
				}
			}
			if got := localTags(repo); !slices.Equal(got, want) {
				t.Errorf("after pull -a the store has tags %v, want %v", got, want)
			}
			if out, _, _ := cli.run("pull", "-a", repo); !strings.Contains(out, "Status: Image is up to date for "+repo) {
				t.Errorf("second pull -a:\n%s", out)
			}

			// Without -a a bare repository is :latest only.
			for _, tag := range want {
				must("rmi", repo+":"+tag)
			}
			if out, errOut, code := cli.run("pull", repo); code != 0 {
				t.Fatalf("pull: exit %d: %s%s", code, out, errOut)
			}
			if got := localTags(repo); !slices.Equal(got, []string{"latest"}) {
				t.Errorf("a pull without -a left tags %v, want [latest]", got)
			}
			must("rmi", repo+":latest")

			for _, args := range [][]string{{"pull", "-a", repo + ":1"}, {"push", "-a", repo + ":1"}} {
				if out, errOut, code := cli.run(args...); code == 0 || !strings.Contains(errOut, "tag can't be used with --all-tags/-a") {
					t.Errorf("%v: exit %d: %s%s", args, code, out, errOut)
				}
			}
		})
	}
	if _, errOut, code := berth("push", "-a", reg.Host+"/nothing/here"); code == 0 || !strings.Contains(errOut, "An image does not exist locally with the tag") {
		t.Errorf("push -a of a repository with no local tags: exit %d: %s", code, errOut)
	}
}
