//go:build linux

package build_test

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// dockerd is a Docker daemon of our own (Debian's docker.io) on a private
// socket, data root and exec root, without iptables or a bridge.
type dockerd struct {
	sock string
	cmd  *exec.Cmd
}

func startDockerd(t *testing.T, dir string) *dockerd {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		t.Skip("dockerd not installed (Debian's docker.io)")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	// The exec root holds containerd's sockets: keep its path short.
	execRoot, err := os.MkdirTemp("/run", "b6d-")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerd{sock: filepath.Join(dir, "docker.sock")}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command("dockerd", "--host", "unix://"+d.sock, "--data-root", filepath.Join(dir, "docker-root"),
		"--exec-root", execRoot, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Skipf("dockerd cannot start: %v", err)
	}
	t.Cleanup(func() {
		d.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-done
		}
		for _, m := range mountsUnder(execRoot) {
			exec.Command("umount", "-l", m).Run()
		}
		os.RemoveAll(execRoot)
		logf.Close()
	})
	for i := 0; i < 150; i++ {
		if exec.Command("docker", "-H", "unix://"+d.sock, "version").Run() == nil {
			return d
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
	t.Skipf("dockerd did not come up:\n%s", tail(string(log), 2000))
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (d *dockerd) docker(t *testing.T, args ...string) string {
	t.Helper()
	c := exec.Command("docker", append([]string{"-H", "unix://" + d.sock}, args...)...)
	// No buildx here: the CLI's classic builder talks to this dockerd.
	c.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestCompareWithDocker builds the same Dockerfiles with `docker build`
// and `berth build`: the exported file trees and the configs must match.
func TestCompareWithDocker(t *testing.T) {
	e := newEnv(t)
	d := startDockerd(t, e.dir)
	bbTar := filepath.Join(e.dir, "busybox-docker.tar")
	e.ok("save", "-o", bbTar, "busybox")
	d.docker(t, "load", "-i", bbTar)

	tgz := filepath.Join(e.dir, "p.tar.gz")
	writeTarGz(t, tgz, map[string]string{"pkg/a.txt": "in tar\n", "pkg/b/c.txt": "deep\n"})
	tgzBytes, _ := os.ReadFile(tgz)

	cases := []struct {
		name       string
		dockerfile string
		files      map[string]string
	}{
		{
			name: "config and files",
			dockerfile: `FROM busybox
ENV APP=/opt/app LEVEL=3
LABEL org.example.name=demo version=1.0
EXPOSE 8080 53/udp
VOLUME /data
WORKDIR $APP
COPY app.sh bin/
COPY conf/ ./conf/
COPY --chown=1000:1000 owned.txt /home/owned.txt
ADD p.tar.gz /opt/
RUN chmod +x bin/app.sh && mkdir -p /var/log/app && echo "level $LEVEL" > /var/log/app/level && rm /bin/vi
USER 1000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/app/bin/app.sh"]
CMD ["--serve"]
`,
			files: map[string]string{
				"app.sh": "#!/bin/sh\necho app \"$@\"\n", "conf/a.conf": "a=1\n", "conf/sub/b.conf": "b=2\n",
				"owned.txt": "mine\n", "p.tar.gz": string(tgzBytes), "ignored.log": "x", ".dockerignore": "*.log\n",
			},
		},
		{
			// Paths where the two builders could disagree: a symlinked
			// destination directory in the image, a file copied onto an
			// existing directory without a trailing slash, globs into a
			// new directory, a directory into an existing one, ADD of a
			// tarball into an existing directory, USER and WORKDIR, an
			// ARG before FROM, SHELL and shell-form ENTRYPOINT.
			name: "copy edge cases",
			dockerfile: `ARG BASE=busybox
FROM ${BASE}
ARG FLAVOR=plain
RUN mkdir -p /opt/real /srv/existing && ln -s /opt/real /optlink && echo app:x:1234:1234::/home/app:/bin/sh >> /etc/passwd && echo app:x:1234: >> /etc/group
COPY a.txt /optlink/
COPY a.txt /srv/existing
COPY *.txt /globbed/
COPY tree /usr/
COPY tree/ /srv/existing/
ADD p.tar.gz /srv/existing/
ADD --chown=1234:1234 p.tar.gz /srv/chowned/
# The classic builder makes WORKDIR's directory root's, BuildKit (and
# berth) the USER's: the directory exists first here.
RUN mkdir -p /home/app/work && chown app:app /home/app/work
USER app
WORKDIR /home/app/work
RUN touch mine && echo $FLAVOR > flavor
USER root
SHELL ["/bin/sh", "-ec"]
RUN echo shell > /shell
ENTRYPOINT exec echo hello
`,
			files: map[string]string{
				"a.txt": "A\n", "b.txt": "B\n", "tree/sub/t.txt": "T\n", "tree/top.txt": "top\n",
				"p.tar.gz": string(tgzBytes),
			},
		},
		{
			name: "multi-stage",
			dockerfile: `FROM busybox AS build
RUN mkdir /out && echo artifact > /out/a && ln -s a /out/link && echo owned > /out/owned && chown 1234:5678 /out/owned && chmod 4750 /out/owned && chown 4321:8765 /out
FROM busybox
COPY --from=build /out /dist
RUN rm -rf /usr /tmp && touch /marker
CMD ["ls", "/dist"]
`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			files := map[string]string{"Dockerfile": tc.dockerfile}
			for k, v := range tc.files {
				files[k] = v
			}
			ctx := e.context(files)
			tag := "cmp-" + strings.ReplaceAll(tc.name, " ", "-")
			e.mustBuild(ctx, "-t", tag)
			d.docker(t, "build", "-q", "-t", tag, ctx)

			// Configs.
			var dcfg []imageConfig
			if err := json.Unmarshal([]byte(d.docker(t, "image", "inspect", tag)), &dcfg); err != nil || len(dcfg) != 1 {
				t.Fatalf("docker inspect: %v", err)
			}
			bc, dc := e.inspect(tag).Config, dcfg[0].Config
			for _, f := range []struct {
				name string
				b, d any
			}{
				{"Env", bc.Env, dc.Env}, {"Cmd", bc.Cmd, dc.Cmd}, {"Entrypoint", bc.Entrypoint, dc.Entrypoint},
				{"WorkingDir", bc.WorkingDir, dc.WorkingDir}, {"User", bc.User, dc.User},
				{"ExposedPorts", bc.ExposedPorts, dc.ExposedPorts}, {"Volumes", bc.Volumes, dc.Volumes},
				{"Labels", bc.Labels, dc.Labels}, {"StopSignal", bc.StopSignal, dc.StopSignal},
			} {
				if !reflect.DeepEqual(f.b, f.d) && !(isEmpty(f.b) && isEmpty(f.d)) {
					t.Errorf("%s: berth %v, docker %v", f.name, f.b, f.d)
				}
			}

			// File trees, from exports of a created container.
			bExp, dExp := filepath.Join(e.dir, tag+"-berth.tar"), filepath.Join(e.dir, tag+"-docker.tar")
			bid := strings.TrimSpace(e.ok("create", tag))
			e.ok("export", "-o", bExp, bid)
			e.ok("rm", bid)
			did := strings.TrimSpace(d.docker(t, "create", tag))
			d.docker(t, "export", "-o", dExp, did)
			d.docker(t, "rm", did)
			bt, dt := treeOf(t, bExp), treeOf(t, dExp)
			// Docker's classic builder (the only one without buildx)
			// runs later RUN steps with the VOLUME mounted, which leaves
			// the empty mount point in the image; BuildKit does not.
			for v := range dc.Volumes {
				name := strings.TrimPrefix(v, "/")
				if _, ok := bt[name]; !ok && strings.HasPrefix(dt[name], "type=5") {
					delete(dt, name)
				}
			}
			var diffs []string
			for name, be := range bt {
				if de, ok := dt[name]; !ok {
					diffs = append(diffs, "only in berth: "+name)
				} else if be != de {
					diffs = append(diffs, fmt.Sprintf("%s: berth %s, docker %s", name, be, de))
				}
			}
			for name := range dt {
				if _, ok := bt[name]; !ok {
					diffs = append(diffs, "only in docker: "+name)
				}
			}
			sort.Strings(diffs)
			if len(diffs) > 0 {
				t.Errorf("file trees differ (%d):\n%s", len(diffs), strings.Join(diffs, "\n"))
			}
			if len(bt) < 10 {
				t.Errorf("suspiciously small tree: %d entries", len(bt))
			}
		})
	}
}

func isEmpty(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.String:
		return rv.Len() == 0
	}
	return v == nil
}

// treeOf lists an export: name → type, mode, owner, size, link target and
// content hash (mtimes differ by nature). What the engines themselves put
// in every container (mount points, /etc/hosts and friends) is left out.
func treeOf(t *testing.T, p string) map[string]string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		switch name {
		case "", ".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab":
			continue
		}
		if top := strings.SplitN(name, "/", 2)[0]; top == "dev" || top == "proc" || top == "sys" {
			continue
		}
		sum := ""
		if h.Typeflag == tar.TypeReg {
			hh := sha256.New()
			io.Copy(hh, tr)
			sum = fmt.Sprintf("%x", hh.Sum(nil))[:12]
		}
		typ := h.Typeflag
		if typ == tar.TypeLink {
			// Hardlinks come out as the first name plus links; which
			// name is first is the tool's choice.
			typ, sum = tar.TypeReg, "hardlink"
		}
		out[name] = fmt.Sprintf("type=%c mode=%o owner=%d:%d size=%d link=%s sum=%s", typ, h.Mode&0o7777, h.Uid, h.Gid, h.Size, h.Linkname, sum)
		if h.Typeflag == tar.TypeLink {
			out[name] = fmt.Sprintf("type=%c mode=%o owner=%d:%d", typ, h.Mode&0o7777, h.Uid, h.Gid)
		}
	}
	return out
}

// tarNames lists the entry names of a tar.
func tarNames(t *testing.T, p string) []string {
	t.Helper()
	var names []string
	for n := range treeOf(t, p) {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
