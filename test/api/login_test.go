//go:build linux

package api_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestLoginLogoutThroughBerthd: as with Docker, berthd checks the
// credentials (POST /auth) and the CLI keeps them in its own config.json;
// logout is the CLI's alone, so it works even when no daemon answers.
func TestLoginLogoutThroughBerthd(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // berthd's, inherited at start
	d := startDaemon(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "basic"})
	clientCfg := t.TempDir()
	berth := func(host string, args ...string) (string, int) {
		c := exec.Command(filepath.Join(binDir, "berth"), append([]string{"--host", host}, args...)...)
		c.Env = append(os.Environ(), "DOCKER_CONFIG="+clientCfg)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}
	stored := func() bool {
		b, _ := os.ReadFile(filepath.Join(clientCfg, "config.json"))
		return strings.Contains(string(b), reg.Host)
	}
	noDaemon := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	steps := []struct {
		name   string
		host   string
		args   []string
		code   int // 0 or "non-zero" (1)
		stored bool
	}{
		{"wrong password", d.host(), []string{"login", "-u", reg.User, "-p", "wrong", reg.Host}, 1, false},
		{"login", d.host(), []string{"login", "-u", reg.User, "-p", reg.Password, reg.Host}, 0, true},
		{"logout", d.host(), []string{"logout", reg.Host}, 0, false},
		{"login again", d.host(), []string{"login", "-u", reg.User, "-p", reg.Password, reg.Host}, 0, true},
		{"logout without a daemon", noDaemon, []string{"logout", reg.Host}, 0, false},
	}
	for _, s := range steps {
		out, code := berth(s.host, s.args...)
		if (code != 0) != (s.code != 0) || stored() != s.stored {
			t.Fatalf("%s: exit %d (want %d), credentials stored %v (want %v)\n%s\nberthd: %s", s.name, code, s.code, stored(), s.stored, out, d.daemonLog())
		}
	}
}
