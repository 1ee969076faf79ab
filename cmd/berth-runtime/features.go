//go:build linux

package main

import (
	"encoding/json"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func cmdFeatures(g *globals, args []string) error {
	yes := true
	f := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specVersion(),
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions: []string{"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime",
			"loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand", "norelatime",
			"nostrictatime", "nosuid", "private", "rbind", "relatime", "remount", "rnoatime", "rnodev", "rnoexec", "rnosuid",
			"ro", "rprivate", "rro", "rshared", "rslave", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
			"suid", "sync", "unbindable"},
		Linux: &features.Linux{
			Namespaces: []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Cgroup:     &features.Cgroup{V1: &yes, V2: &yes},
			Seccomp:    &features.Seccomp{Enabled: &yes},
		},
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "    ")
	return enc.Encode(f)
}
