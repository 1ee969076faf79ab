package cgroups

import (
	"errors"
	"testing"
)

// hostProcCgroup is /proc/self/cgroup on a hybrid host whose memory
// cgroup differs from the others (as on the development host).
const hostProcCgroup = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/4649
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`

func TestResolvePath(t *testing.T) {
	self := func() (string, error) { return "/user.slice/me", nil }
	tests := []struct {
		name, cgroupsPath, id string
		self                  func() (string, error)
		want                  string
		wantErr               bool
	}{
		{name: "empty uses berth/id", id: "abc", want: "/berth/abc"},
		{name: "empty with bad id", id: "../x", wantErr: true},
		{name: "absolute", cgroupsPath: "/foo/bar", id: "abc", want: "/foo/bar"},
		{name: "absolute is cleaned", cgroupsPath: "/foo//bar/../baz/", want: "/foo/baz"},
		{name: "relative to caller", cgroupsPath: "ctr/abc", self: self, want: "/user.slice/me/ctr/abc"},
		{name: "relative cannot escape root", cgroupsPath: "../../../../x", self: self, want: "/x"},
		{name: "relative with failing self", cgroupsPath: "x", self: func() (string, error) { return "", errors.New("boom") }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.self
			if s == nil {
				s = func() (string, error) { t.Fatal("self called for a non-relative path"); return "", nil }
			}
			got, err := resolvePath(tt.cgroupsPath, tt.id, s)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("resolvePath(%q, %q) = %q, want %q", tt.cgroupsPath, tt.id, got, tt.want)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	got, err := parseProcCgroup("2:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": "/a", "cpuacct": "/a", "name=systemd": "/b", "": "/c"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: got %q, want %q", k, got[k], v)
		}
	}
	if _, err := parseProcCgroup("garbage\n"); err == nil {
		t.Error("want error for a malformed line")
	}
}

func TestSelfReference(t *testing.T) {
	self, err := parseProcCgroup(hostProcCgroup)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		self map[string]string
		mode Mode
		want string
	}{
		{"hybrid uses memory", self, Hybrid, "/process_api/4649"},
		{"legacy uses memory", self, Legacy, "/process_api/4649"},
		{"unified uses 0::", map[string]string{"": "/user.slice/x"}, Unified, "/user.slice/x"},
		{"v1 without memory uses pids", map[string]string{"pids": "/p", "cpu": "/c"}, Legacy, "/p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selfReference(tt.self, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := selfReference(map[string]string{"memory": "/x"}, Unified); err == nil {
		t.Error("unified without a 0:: entry: want error")
	}
}
