//go:build linux

package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// privateRegistryScenario is what both clients (the stock docker CLI and
// berth --host) go through against a registry with Basic auth, with two
// daemons that never store credentials: the one pushed to and a fresh one
// that has never seen them.
type privateRegistryScenario struct {
	reg              *testutil.Registry
	first, fresh     *daemon
	daemonDirs       []string // every place a daemon could keep a secret
	clientCfg        string   // the client's DOCKER_CONFIG
	ref, base, built string
}

func newPrivateRegistryScenario(t *testing.T) *privateRegistryScenario {
	testutil.RequiresRoot(t)
	// berthd's own config.json and home, inherited at start: /auth must
	// not write to them, and pulls must not need them.
	daemonCfg, daemonHome := t.TempDir(), t.TempDir()
	t.Setenv("DOCKER_CONFIG", daemonCfg)
	t.Setenv("HOME", daemonHome)
	s := &privateRegistryScenario{
		reg:       testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "basic"}),
		first:     startDaemon(t),
		fresh:     startDaemon(t),
		clientCfg: t.TempDir(),
	}
	s.ref = s.reg.Host + "/private/busybox:1"
	s.base = s.reg.Host + "/private/base:1"
	s.built = "private-built:1"
	s.daemonDirs = []string{daemonCfg, daemonHome}
	for _, d := range []*daemon{s.first, s.fresh} {
		s.daemonDirs = append(s.daemonDirs, d.root, d.state)
	}
	s.first.loadBusybox()
	return s
}

// checkNoSecrets fails when any daemon file holds the password, in the
// clear or in config.json's base64 user:password form.
func (s *privateRegistryScenario) checkNoSecrets(t *testing.T) {
	t.Helper()
	secrets := [][]byte{
		[]byte(s.reg.Password),
		[]byte(base64.StdEncoding.EncodeToString([]byte(s.reg.User + ":" + s.reg.Password))),
	}
	for _, dir := range s.daemonDirs {
		_ = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			for _, sec := range secrets {
				if bytes.Contains(b, sec) {
					t.Errorf("daemon file %s holds the registry password", p)
				}
			}
			return nil
		})
	}
}

func (s *privateRegistryScenario) writeBuildContext(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+s.base+"\nRUN echo from-private-base > /marker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cliRunner runs one client binary with extra environment and stdin; it
// returns stdout+stderr and whether it exited 0.
type cliRunner func(env []string, stdin string, args ...string) (string, bool)

func runner(t *testing.T, bin string) cliRunner {
	return func(env []string, stdin string, args ...string) (string, bool) {
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), env...)
		c.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		if _, exited := err.(*exec.ExitError); err != nil && !exited {
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		return out.String(), err == nil
	}
}

// step is one command of a scenario: it must succeed or fail (ok) and
// print output (a substring of stdout+stderr).
type step struct {
	name   string
	env    []string
	stdin  string
	args   []string
	ok     bool
	output string
}

func (s *privateRegistryScenario) run(t *testing.T, cli cliRunner, steps []step) {
	t.Helper()
	for _, st := range steps {
		out, ok := cli(st.env, st.stdin, st.args...)
		if ok != st.ok || !strings.Contains(out, st.output) {
			t.Fatalf("%s: %v: ok=%v (want %v), output lacks %q:\n%s\nberthd (first): %s\nberthd (fresh): %s",
				st.name, st.args, ok, st.ok, st.output, out, s.first.daemonLog(), s.fresh.daemonLog())
		}
	}
	s.checkNoSecrets(t)
}

// TestDockerCLIPrivateRegistry: the stock docker CLI logs in through
// berthd (POST /auth checks, stores nothing), then pushes, pulls and
// builds FROM a private image with the credentials it sends along; a
// berthd that never saw them serves them, and no daemon keeps them.
func TestDockerCLIPrivateRegistry(t *testing.T) {
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker CLI on PATH")
	}
	s := newPrivateRegistryScenario(t)
	on := func(d *daemon, cfg string) []string {
		return []string{"DOCKER_HOST=" + d.host(), "DOCKER_CONFIG=" + cfg}
	}
	first, fresh := on(s.first, s.clientCfg), on(s.fresh, s.clientCfg)
	anonymous := on(s.fresh, t.TempDir())
	s.run(t, runner(t, dockerBin), []step{
		{"login wrong password", first, "", []string{"login", "-u", s.reg.User, "-p", "wrong", s.reg.Host}, false,
			"login attempt to http://" + s.reg.Host + "/v2/ failed with status: 401 Unauthorized"},
		{"login", first, s.reg.Password, []string{"login", "-u", s.reg.User, "--password-stdin", s.reg.Host}, true, "Login Succeeded"},
		{"tag", first, "", []string{"tag", "busybox", s.ref}, true, ""},
		{"push", first, "", []string{"push", s.ref}, true, "digest: sha256:"},
		{"tag base", first, "", []string{"tag", "busybox", s.base}, true, ""},
		{"push base", first, "", []string{"push", s.base}, true, "digest: sha256:"},
		{"anonymous pull", anonymous, "", []string{"pull", s.ref}, false, "unauthorized"},
		{"pull on a fresh daemon", fresh, "", []string{"pull", s.ref}, true, "Downloaded newer image for " + s.ref},
		{"run pulled", fresh, "", []string{"run", "--rm", s.ref, "echo", "private"}, true, "private"},
		{"build from a private base", fresh, "", []string{"build", "-t", s.built, s.writeBuildContext(t)}, true, "Successfully tagged"},
		{"run built", fresh, "", []string{"run", "--rm", s.built, "cat", "/marker"}, true, "from-private-base"},
	})
}

// TestBerthHostPrivateRegistry: the same through `berth --host`: login
// stores in the client's config.json only; push, pull and build send the
// credentials from there.
func TestBerthHostPrivateRegistry(t *testing.T) {
	s := newPrivateRegistryScenario(t)
	env := []string{"DOCKER_CONFIG=" + s.clientCfg}
	host := func(d *daemon, args ...string) []string { return append([]string{"--host", d.host()}, args...) }
	s.run(t, runner(t, filepath.Join(binDir, "berth")), []step{
		{"login wrong password", env, "", host(s.first, "login", "-u", s.reg.User, "-p", "wrong", s.reg.Host), false, "401 Unauthorized"},
		{"login", env, "", host(s.first, "login", "-u", s.reg.User, "-p", s.reg.Password, s.reg.Host), true, "Login Succeeded"},
		{"tag", env, "", host(s.first, "tag", "busybox", s.ref), true, ""},
		{"push", env, "", host(s.first, "push", s.ref), true, "digest: sha256:"},
		{"tag base", env, "", host(s.first, "tag", "busybox", s.base), true, ""},
		{"push base", env, "", host(s.first, "push", s.base), true, "digest: sha256:"},
		{"anonymous pull", []string{"DOCKER_CONFIG=" + t.TempDir()}, "", host(s.fresh, "pull", s.ref), false, "unauthorized"},
		{"pull on a fresh daemon", env, "", host(s.fresh, "pull", s.ref), true, "Downloaded newer image for " + s.ref},
		{"run pulled", env, "", host(s.fresh, "run", "--rm", s.ref, "echo", "private"), true, "private"},
		{"build from a private base", env, "", host(s.fresh, "build", "-t", s.built, s.writeBuildContext(t)), true, ""},
		{"run built", env, "", host(s.fresh, "run", "--rm", s.built, "cat", "/marker"), true, "from-private-base"},
	})
}

// TestAuthEndpoint: POST /auth answers as dockerd's does — {"Status":
// "Login Succeeded"} for good credentials, 401 with dockerd's message for
// a wrong password — and X-Registry-Auth is read padded or not.
func TestAuthEndpoint(t *testing.T) {
	s := newPrivateRegistryScenario(t)
	post := func(d *daemon, path, body string, h http.Header) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://berth"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := d.http().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	authBody := func(pw string) string {
		b, _ := json.Marshal(map[string]string{"username": s.reg.User, "password": pw, "serveraddress": s.reg.Host})
		return string(b)
	}
	for _, tc := range []struct {
		name, password string
		code           int
		body           string
	}{
		{"good", s.reg.Password, http.StatusOK, `{"Status":"Login Succeeded"}`},
		{"wrong password", "wrong", http.StatusUnauthorized, `{"message":"login attempt to http://` + s.reg.Host + `/v2/ failed with status: 401 Unauthorized"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := post(s.first, "/v1.43/auth", authBody(tc.password), http.Header{"Content-Type": {"application/json"}})
			if code != tc.code || strings.TrimSpace(string(b)) != tc.body {
				t.Errorf("POST /auth: %d %s, want %d %s", code, b, tc.code, tc.body)
			}
		})
	}

	// Push with the credentials in the header, then pull them back on the
	// fresh daemon, padded and unpadded.
	if out, errOut, code := s.first.run(nil, "tag", "busybox", s.ref); code != 0 {
		t.Fatalf("tag: %s%s", out, errOut)
	}
	header := func(pad bool) http.Header {
		b, _ := json.Marshal(map[string]string{"username": s.reg.User, "password": s.reg.Password})
		v := base64.URLEncoding.EncodeToString(b)
		if !pad {
			v = strings.TrimRight(v, "=")
		}
		return http.Header{"X-Registry-Auth": {v}}
	}
	if code, b := post(s.first, "/images/"+s.ref+"/push", "", header(true)); code != http.StatusOK || !strings.Contains(string(b), "digest: sha256:") {
		t.Fatalf("push with X-Registry-Auth: %d %s", code, b)
	}
	for _, pad := range []bool{false, true} {
		if code, b := post(s.fresh, "/images/create?fromImage="+s.ref, "", header(pad)); code != http.StatusOK || !strings.Contains(string(b), "Digest: sha256:") {
			t.Errorf("pull with X-Registry-Auth (padded %v): %d %s", pad, code, b)
		}
	}
	if code, b := post(s.fresh, "/images/create?fromImage="+s.ref, "", http.Header{"X-Registry-Auth": {"not base64!"}}); code != http.StatusOK || !strings.Contains(string(b), "unauthorized") {
		t.Errorf("pull with an undecodable X-Registry-Auth: %d %s, want the registry's refusal", code, b)
	}
	s.checkNoSecrets(t)
}
