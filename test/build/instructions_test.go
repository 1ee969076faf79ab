//go:build linux

package build_test

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestInstructions builds one Dockerfile per instruction family and checks
// the image's config and, by running it, its files.
func TestInstructions(t *testing.T) {
	e := newEnv(t)
	tgz := filepath.Join(e.dir, "payload.tar.gz")
	writeTarGz(t, tgz, map[string]string{"payload/a.txt": "from the tarball\n", "payload/sub/b.txt": "bee\n"})
	tgzBytes, _ := os.ReadFile(tgz)
	secret := filepath.Join(e.dir, "secret.txt")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name       string
		dockerfile string
		files      map[string]string
		args       []string
		run        []string // berth run --rm IMAGE run...
		want       string   // run's output
		check      func(t *testing.T, c imageConfig)
	}{
		{
			name: "metadata",
			dockerfile: `FROM busybox
MAINTAINER someone@example.com
ENV A=1 B="two words"
ENV C=${A}-x
LABEL org.example.one=1 "two"="2"
EXPOSE 80 443/udp 8000-8001
VOLUME /data ["/logs"]
USER nobody
WORKDIR /srv
WORKDIR sub
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD true
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/echo"]
CMD ["hello"]
`,
			check: func(t *testing.T, c imageConfig) {
				cfg := c.Config
				wantEnv := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1", "B=two words", "C=1-x"}
				if !reflect.DeepEqual(cfg.Env, wantEnv) {
					t.Errorf("Env = %q, want %q", cfg.Env, wantEnv)
				}
				if cfg.Labels["org.example.one"] != "1" || cfg.Labels["two"] != "2" {
					t.Errorf("Labels = %v", cfg.Labels)
				}
				for _, p := range []string{"80/tcp", "443/udp", "8000/tcp", "8001/tcp"} {
					if _, ok := cfg.ExposedPorts[p]; !ok {
						t.Errorf("ExposedPorts %v lacks %s", cfg.ExposedPorts, p)
					}
				}
				if _, ok := cfg.Volumes["/data"]; !ok || len(cfg.Volumes) != 2 {
					t.Errorf("Volumes = %v", cfg.Volumes)
				}
				if cfg.User != "nobody" || cfg.WorkingDir != "/srv/sub" || cfg.StopSignal != "SIGINT" {
					t.Errorf("User %q WorkingDir %q StopSignal %q", cfg.User, cfg.WorkingDir, cfg.StopSignal)
				}
				if cfg.Healthcheck == nil || !reflect.DeepEqual(cfg.Healthcheck.Test, []string{"CMD-SHELL", "true"}) || cfg.Healthcheck.Interval != 5e9 || cfg.Healthcheck.Retries != 2 {
					t.Errorf("Healthcheck = %+v", cfg.Healthcheck)
				}
				if !reflect.DeepEqual(cfg.Shell, []string{"/bin/sh", "-ec"}) || !reflect.DeepEqual(cfg.OnBuild, []string{"RUN echo triggered"}) {
					t.Errorf("Shell %q OnBuild %q", cfg.Shell, cfg.OnBuild)
				}
				if !reflect.DeepEqual(cfg.Entrypoint, []string{"/bin/echo"}) || !reflect.DeepEqual(cfg.Cmd, []string{"hello"}) {
					t.Errorf("Entrypoint %q Cmd %q", cfg.Entrypoint, cfg.Cmd)
				}
				if c.Author != "someone@example.com" {
					t.Errorf("Author = %q", c.Author)
				}
			},
			run: []string{}, want: "hello\n",
		},
		{
			name: "entrypoint resets inherited cmd",
			dockerfile: `FROM busybox
ENTRYPOINT echo "entry $0"
`,
			check: func(t *testing.T, c imageConfig) {
				if c.Config.Cmd != nil || !reflect.DeepEqual(c.Config.Entrypoint, []string{"/bin/sh", "-c", `echo "entry $0"`}) {
					t.Errorf("Cmd %q Entrypoint %q", c.Config.Cmd, c.Config.Entrypoint)
				}
			},
			run: []string{}, want: "entry /bin/sh\n",
		},
		{
			name: "copy semantics",
			dockerfile: `FROM busybox
COPY a.txt /file-renamed
COPY a.txt b.txt /multi/
COPY dir /dircontent
COPY dir/ /dircontent2/
COPY *.md /globbed/
COPY --chown=1000:100 --chmod=0640 a.txt /owned
COPY --chown=nobody a.txt /owned-by-name
COPY link-out /link-out
COPY via-link/inner.txt /via-link.txt
COPY <<EOF /heredoc.txt
inline $HOME
EOF
WORKDIR /w
COPY a.txt rel/
`,
			files: map[string]string{
				"a.txt": "A\n", "b.txt": "B\n", "dir/x/y.txt": "Y\n", "dir/top.txt": "T\n",
				"one.md": "1", "two.md": "2", "ignored.md": "nope", ".dockerignore": "ignored.md\n",
				"link-out": "->/a.txt", "via-link": "->dir/x", "dir/x/inner.txt": "inner\n", "dir/lnk": "->/etc/passwd",
			},
			run: []string{"sh", "-c", `cat /file-renamed /multi/a.txt /multi/b.txt /dircontent/x/y.txt /dircontent2/top.txt; ls /globbed | tr '\n' ' '; echo;
stat -c '%u:%g %a' /owned; stat -c '%u' /owned-by-name; cat /link-out; readlink /dircontent/lnk; cat /via-link.txt /heredoc.txt /w/rel/a.txt; test -e /dircontent/dir && echo WRONG || true`},
			want: "A\nA\nB\nY\nT\none.md two.md \n1000:100 640\n65534\nA\n/etc/passwd\ninner\ninline $HOME\nA\n",
		},
		{
			name: "add extracts local tarballs",
			dockerfile: `FROM busybox
ADD payload.tar.gz /opt/
ADD plain.txt /plain.txt
ADD --chmod=0755 plain.txt /exe
`,
			files: map[string]string{"payload.tar.gz": string(tgzBytes), "plain.txt": "plain\n"},
			run:   []string{"sh", "-c", "cat /opt/payload/a.txt /opt/payload/sub/b.txt /plain.txt; stat -c %a /exe"},
			want:  "from the tarball\nbee\nplain\n755\n",
		},
		{
			name: "run forms heredocs args mounts",
			dockerfile: `ARG BASE=busybox
FROM ${BASE}
ARG WHO=default
ARG TARGETARCH
RUN echo "shell $WHO" > /r1
RUN ["/bin/sh", "-c", "echo exec > /r2"]
RUN <<EOF
echo heredoc1 > /r3
echo heredoc2 >> /r3
EOF
RUN cat <<EOT > /r4
doc $WHO
EOT
RUN <<EOF
#!/bin/sh
echo shebang > /r5
EOF
RUN --mount=type=tmpfs,target=/scratch echo tmp > /scratch/x && cat /scratch/x > /r6
RUN --mount=type=bind,source=ctxfile.txt,target=/mnt/ctx cat /mnt/ctx > /r7
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /r8
RUN --mount=type=cache,target=/cache echo cached >> /cache/log && wc -l < /cache/log > /r9
RUN --network=none ls /sys/class/net | tr '\n' ' ' > /r10
RUN test -n "$TARGETARCH" && echo arch-ok > /r11
`,
			files: map[string]string{"ctxfile.txt": "from context\n"},
			args:  []string{"--build-arg", "WHO=argval", "--secret", "id=tok,src=" + secret},
			check: func(t *testing.T, c imageConfig) {
				// Build args reach RUN, never the image.
				for _, kv := range c.Config.Env {
					if strings.HasPrefix(kv, "WHO=") || strings.HasPrefix(kv, "TARGETARCH=") {
						t.Errorf("build arg in the image's Env: %q", c.Config.Env)
					}
				}
			},
			run:  []string{"sh", "-c", "cat /r1 /r2 /r3 /r4 /r5 /r6 /r7 /r8; echo; cat /r9 /r10; echo; cat /r11; ls -d /scratch /mnt/ctx /run/secrets 2>&1 | grep -c 'No such file'"},
			want: "shell argval\nexec\nheredoc1\nheredoc2\ndoc argval\nshebang\ntmp\nfrom context\ns3cret\n1\nlo \narch-ok\n3\n",
		},
		{
			name: "onbuild triggers run in the child",
			dockerfile: `FROM busybox AS parent
ONBUILD RUN echo fired > /onbuild
FROM parent
RUN cat /onbuild
CMD ["cat", "/onbuild"]
`,
			check: func(t *testing.T, c imageConfig) {
				if len(c.Config.OnBuild) != 0 {
					t.Errorf("OnBuild kept in the child: %q", c.Config.OnBuild)
				}
			},
			run: []string{}, want: "fired\n",
		},
		{
			name: "multi-stage with target and an unused broken stage",
			dockerfile: `FROM busybox AS broken
RUN exit 3
FROM busybox AS builder
RUN echo built > /artifact
FROM scratch AS final
COPY --from=builder /artifact /artifact
FROM busybox AS other
COPY --from=1 /artifact /from-index
COPY --from=busybox /bin/busybox /from-image
RUN --mount=type=bind,from=builder,source=/artifact,target=/mnt/a cat /mnt/a > /bound
CMD ["sh", "-c", "cat /from-index /bound; cmp /from-image /bin/busybox && echo same"]
`,
			args: []string{"--target", "other"},
			run:  []string{}, want: "built\nbuilt\nsame\n",
		},
		{
			name: "scratch result",
			dockerfile: `FROM busybox AS b
RUN echo x > /x
FROM scratch
COPY --from=b /bin/busybox /bin/sh
COPY --from=b /x /x
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /x"]
`,
			run: []string{}, want: "x\n",
		},
		{
			// SHELL applies to later RUN and shell-form CMD; USER to
			// later RUN and to the owner of WORKDIR's new directories;
			// a # syntax directive is accepted (the executor is ours).
			name: "syntax directive and shell and user for later steps",
			dockerfile: `# syntax=docker/dockerfile:1
FROM busybox
RUN echo "$0" > /shell-default
SHELL ["/bin/busybox", "sh", "-c"]
RUN echo "$0" > /shell-set
USER nobody
RUN id -u > /tmp/uid
WORKDIR /home/nb
USER root
HEALTHCHECK NONE
CMD cat /shell-default /shell-set /tmp/uid && stat -c %u /home/nb
`,
			check: func(t *testing.T, c imageConfig) {
				if want := []string{"/bin/busybox", "sh", "-c", "cat /shell-default /shell-set /tmp/uid && stat -c %u /home/nb"}; !reflect.DeepEqual(c.Config.Cmd, want) {
					t.Errorf("Cmd %q, want %q", c.Config.Cmd, want)
				}
				if c.Config.Healthcheck == nil || !reflect.DeepEqual(c.Config.Healthcheck.Test, []string{"NONE"}) {
					t.Errorf("Healthcheck = %+v", c.Config.Healthcheck)
				}
			},
			run: []string{}, want: "/bin/sh\nsh\n65534\n65534\n",
		},
		{
			name: "host platform",
			dockerfile: `FROM --platform=$BUILDPLATFORM busybox
ARG TARGETPLATFORM
RUN echo "$TARGETPLATFORM" > /platform
CMD ["cat", "/platform"]
`,
			args: []string{"--platform", "linux/" + runtime.GOARCH},
			run:  []string{}, want: "linux/" + runtime.GOARCH + "\n",
		},
		{
			name:       "escape directive and line continuation",
			dockerfile: "# escape=`\nFROM busybox\nRUN echo one `\n    two > /out\nCMD [\"cat\", \"/out\"]\n",
			run:        []string{}, want: "one two\n",
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
			tag := "case:" + strings.ReplaceAll(tc.name, " ", "-")
			_, out := e.mustBuild(ctx, append([]string{"-t", tag}, tc.args...)...)
			if tc.check != nil {
				tc.check(t, e.inspect(tag))
			}
			if tc.run != nil {
				got, errOut, code := e.run(nil, append([]string{"run", "--rm", tag}, tc.run...)...)
				if code != 0 || got != tc.want {
					t.Errorf("run: exit %d, output %q, want %q\nstderr: %s\nbuild:\n%s", code, got, tc.want, errOut, out)
				}
			}
		})
	}
}

func writeTarGz(t *testing.T, p string, files map[string]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}
