package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCheckID(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"abc", true}, {"a.b-c_d+e", true}, {"", false}, {"../x", false}, {"a/b", false}, {".hidden", false},
	} {
		if err := checkID(tt.id); (err == nil) != tt.ok {
			t.Errorf("checkID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}

func TestNamespaceSetup(t *testing.T) {
	l := &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"},
	}}
	flags, join, err := namespaceSetup(l.Namespaces)
	if err != nil {
		t.Fatal(err)
	}
	if flags != unix.CLONE_NEWPID|unix.CLONE_NEWNS {
		t.Errorf("flags = %#x", flags)
	}
	if join[specs.NetworkNamespace] != "/proc/self/ns/net" {
		t.Errorf("join = %v", join)
	}
	for name, l := range map[string]*specs.Linux{
		"duplicate":  {Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.PIDNamespace}}},
		"unknown":    {Namespaces: []specs.LinuxNamespace{{Type: "bogus"}}},
		"wrong type": {Namespaces: []specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: "/proc/self/ns/net"}}},
		"not a ns":   {Namespaces: []specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: "/etc/hostname"}}},
	} {
		if _, _, err := namespaceSetup(l.Namespaces); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWithDefaultDevices(t *testing.T) {
	major, minor := int64(10), int64(200)
	l := &specs.Linux{
		Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
		Devices:   []specs.LinuxDevice{{Path: "/dev/net/tun", Type: "c", Major: major, Minor: minor}},
	}
	res := withDefaultDevices(l)
	if len(l.Resources.Devices) != 1 {
		t.Fatal("the spec's own rules were modified")
	}
	if res.Devices[0].Allow {
		t.Fatal("the deny-all rule must stay first")
	}
	found := map[string]bool{}
	for _, d := range res.Devices {
		if d.Allow && d.Major != nil && d.Minor != nil {
			found[d.Type+":"+itoa(*d.Major)+":"+itoa(*d.Minor)] = true
		}
	}
	for _, want := range []string{"c:1:3", "c:1:9", "c:5:2", "c:10:200"} {
		if !found[want] {
			t.Errorf("no allow rule for %s in %+v", want, res.Devices)
		}
	}
	if got := withDefaultDevices(&specs.Linux{}); len(got.Devices) != 0 {
		t.Error("rules added to a spec without device rules")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noexec := filepath.Join(dir, "data")
	if err := os.WriteFile(noexec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &specs.Process{Args: []string{"tool"}, Env: []string{"PATH=/nonexistent:" + dir}}
	if got, err := lookPath(p); err != nil || got != exe {
		t.Errorf("lookPath = %q, %v", got, err)
	}
	for _, args := range [][]string{{"missing"}, {noexec}, {dir}} {
		if _, err := lookPath(&specs.Process{Args: args, Env: []string{"PATH=" + dir}}); err == nil {
			t.Errorf("lookPath(%v) succeeded", args)
		}
	}
}

func TestSyncMessages(t *testing.T) {
	var buf bytes.Buffer
	cfg := &initConfig{ID: "x", ConsoleFd: -1, Process: &specs.Process{Args: []string{"true"}}}
	if err := writeMsg(&buf, &syncMsg{Type: msgConfig, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if err := writeMsg(&buf, &syncMsg{Type: msgError, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	m, err := readMsg(&buf)
	if err != nil || m.Type != msgConfig || m.Config.ID != "x" {
		t.Fatalf("readMsg = %+v, %v", m, err)
	}
	if _, err := readMsg(&buf); err == nil || err.Error() != "boom" {
		t.Fatalf("error message not surfaced: %v", err)
	}
	// A length prefix beyond the limit is rejected, not allocated.
	if _, err := readMsg(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff})); err == nil {
		t.Fatal("oversized message accepted")
	}
}

func TestPidStartTime(t *testing.T) {
	a, err := pidStartTime(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("pidStartTime = %d, %v", a, err)
	}
	if _, err := pidStartTime(1 << 30); err == nil {
		t.Fatal("start time of a nonexistent pid")
	}
}

func TestWritePidFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pid")
	if err := writePidFile(p, 1234); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "1234" {
		t.Fatalf("pid file = %q", b)
	}
}
