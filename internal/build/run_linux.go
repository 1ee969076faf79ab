package build

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// run executes a RUN step in a container on the step's snapshot.
func (sc *stageCtx) run(ctx context.Context, c *instructions.RunCommand) error {
	args := c.CmdLine
	var script *instructions.ShellInlineFile
	if len(c.Files) > 0 {
		if len(args) != 1 || !c.PrependShell {
			return fmt.Errorf("parsing produced an invalid run command: %v: %w", args, errdefs.ErrInvalidArgument)
		}
		if hd := parser.MustParseHeredoc(args[0]); hd != nil {
			// RUN <<EOF: the document is the script. With a shebang it
			// is run as a file (BuildKit mounts it at /dev/pipes/NAME).
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				script = &instructions.ShellInlineFile{Name: c.Files[0].Name, Data: data}
				args = []string{"/dev/pipes/" + c.Files[0].Name}
			} else {
				args = []string{data}
			}
		} else {
			// `RUN cat <<EOF > f`: the shell handles the heredoc.
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range c.Files {
				b.WriteString("\n" + f.Data + f.Name)
			}
			args = []string{b.String()}
		}
	}
	if c.PrependShell && script == nil {
		args = append(append([]string{}, sc.shell()...), strings.Join(args, " "))
	}
	network := instructions.GetNetwork(c)
	switch network {
	case "", "default", "host":
		network = "host"
	case "none":
	default:
		return fmt.Errorf("RUN --network=%s: %w", network, errdefs.ErrNotSupported)
	}
	if sec := instructions.GetSecurity(c); sec != "" && sec != "sandbox" {
		return fmt.Errorf("RUN --security=%s needs an entitlement berth does not grant: %w", sec, errdefs.ErrNotSupported)
	}
	mounts := instructions.GetMounts(c)
	mountSpec, _ := json.Marshal(mounts)
	secretSums, err := sc.secretSums(mounts)
	if err != nil {
		return err
	}
	bindSums, err := sc.bindSums(ctx, mounts)
	if err != nil {
		return err
	}
	argv, _ := json.Marshal(args)
	cfg := sc.st.Config.Config
	// History as BuildKit writes it: "RUN |N K=V ... <cmd>" when build
	// args are in scope.
	createdBy := "RUN " + strings.Join(args, " ") + " # buildkit"
	if scope := sc.argsInScope(); len(scope) > 0 {
		createdBy = "RUN |" + strconv.Itoa(len(scope)) + " " + strings.Join(scope, " ") + " " + strings.Join(args, " ") + " # buildkit"
	}
	title := "RUN " + strings.Join(c.CmdLine, " ")
	if script != nil {
		title += " (" + script.Name + ")"
	}
	scriptData := ""
	if script != nil {
		scriptData = script.Data
	}
	return sc.step(ctx, title, createdBy, []string{string(argv), scriptData, network, string(mountSpec), secretSums, bindSums}, func(ctx context.Context, next *state, log *stepLog) (bool, error) {
		return sc.r.fsStep(ctx, next, func(ctx context.Context, rootfs string) error {
			env := append([]string{}, cfg.Env...)
			for _, a := range sc.argsInScope() {
				k, v, _ := strings.Cut(a, "=")
				if !hasKey(env, k) {
					env = append(env, k+"="+v)
				}
			}
			specMounts, cleanup, err := sc.runMounts(ctx, mounts, script, &env)
			defer cleanup()
			if err != nil {
				return err
			}
			// The runtime creates missing mount points in the rootfs;
			// they must not end up in the layer.
			cwd := cfg.WorkingDir
			if cwd == "" {
				cwd = "/"
			}
			var created []string
			points := append([]string{cwd}, runtimeMountPoints...)
			for _, m := range specMounts {
				points = append(points, m.Destination)
			}
			seen := map[string]bool{}
			for _, p := range points {
				// The point and each missing directory above it.
				for rel := strings.TrimPrefix(path.Clean(p), "/"); rel != "." && rel != ""; rel = path.Dir(rel) {
					if seen[rel] || exists(rootfs, rel) {
						break
					}
					seen[rel] = true
					created = append(created, rel)
				}
			}
			err = sc.r.b.Exec.Run(ctx, Process{
				Rootfs: rootfs, Args: args, Env: env, User: cfg.User, Cwd: cwd,
				Hostname: "buildkitsandbox", Network: network, Mounts: specMounts,
				Stdout: log, Stderr: log,
			})
			removeCreated(rootfs, created)
			var ee *ExitError
			if errors.As(err, &ee) {
				log.flush()
				tail := strings.TrimSpace(string(log.tail))
				if sc.r.opts.Progress == nil && tail != "" {
					return fmt.Errorf("did not complete successfully: %w\n%s", err, tail)
				}
				return fmt.Errorf("did not complete successfully: %w", err)
			}
			return err
		})
	})
}

// runtimeMountPoints are where every container gets a mount (the spec's
// defaults); the runtime creates the ones an image lacks (a scratch image
// with a shell), and they must not become part of the step's layer.
var runtimeMountPoints = []string{
	"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
}

func hasKey(env []string, k string) bool {
	for _, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			return true
		}
	}
	return false
}

// removeCreated removes mount points the runtime created (and the
// directories it made for them), deepest first, only while they are
// empty: what the step itself wrote there stays.
func removeCreated(rootfs string, rels []string) {
	sort.Slice(rels, func(i, j int) bool { return strings.Count(rels[i], "/") > strings.Count(rels[j], "/") })
	for _, rel := range rels {
		if full, err := securejoin.SecureJoin(rootfs, rel); err == nil {
			_ = os.Remove(full)
		}
	}
}

// secretSums keys the cache on secret content, so changing a secret reruns
// the step (BuildKit does not; it does not know the content either way).
func (sc *stageCtx) secretSums(mounts []*instructions.Mount) (string, error) {
	var b strings.Builder
	for _, m := range mounts {
		if m.Type != instructions.MountTypeSecret {
			continue
		}
		id := m.CacheID
		if id == "" {
			id = path.Base(m.Target)
		}
		src, ok := sc.r.opts.Secrets[id]
		if !ok {
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", id, err)
		}
		fmt.Fprintf(&b, "%s:%x;", id, digestOf(data))
	}
	return b.String(), nil
}

// bindSums keys the cache on what bind mounts show: the checksum of the
// context files (as COPY does) or the key of the stage or image mounted.
func (sc *stageCtx) bindSums(ctx context.Context, mounts []*instructions.Mount) (string, error) {
	var b strings.Builder
	for _, m := range mounts {
		if m.Type != instructions.MountTypeBind {
			continue
		}
		if m.From == "" {
			if sc.r.bc.dir == "" {
				continue // runMounts reports it
			}
			h := sha256.New()
			if _, err := collect(sc.r.bc.dir, m.Source, true, sc.r.bc, nil, false, h); err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "ctx:%s:%x;", m.Source, h.Sum(nil))
			continue
		}
		var st *state
		var err error
		if j, ok := sc.r.df.stageRef(m.From, sc.s.idx); ok {
			st, err = sc.r.waitStage(ctx, j)
		} else {
			st, err = sc.r.imageState(ctx, m.From)
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "from:%s:%s;", m.From, st.Key)
	}
	return b.String(), nil
}

// runMounts turns RUN --mount flags into spec mounts. cleanup releases
// views of other stages and temporary files.
func (sc *stageCtx) runMounts(ctx context.Context, mounts []*instructions.Mount, script *instructions.ShellInlineFile, env *[]string) (_ []specs.Mount, cleanup func(), retErr error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	tmpDir, err := sc.r.tmpDir()
	if err != nil {
		return nil, cleanup, err
	}
	var out []specs.Mount
	if script != nil {
		dir, err := os.MkdirTemp(tmpDir, "pipes-")
		if err != nil {
			return nil, cleanup, err
		}
		undo = append(undo, func() { _ = os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, script.Name), []byte(script.Data), 0o755); err != nil {
			return nil, cleanup, err
		}
		out = append(out, specs.Mount{Destination: "/dev/pipes", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}})
	}
	for _, m := range mounts {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			wd := sc.st.Config.Config.WorkingDir
			if wd == "" {
				wd = "/"
			}
			target = path.Join(wd, target)
		}
		switch m.Type {
		case instructions.MountTypeCache:
			id := m.CacheID
			if id == "" {
				id = target
			}
			dir := filepath.Join(cacheDir(sc.r.b.Root), "mounts", fmt.Sprintf("%x", digestOf([]byte(id)).Encoded()[:32]))
			if _, err := os.Stat(dir); err != nil {
				mode := os.FileMode(0o755)
				if m.Mode != nil {
					mode = os.FileMode(*m.Mode)
				}
				if err := os.MkdirAll(dir, mode); err != nil {
					return nil, cleanup, err
				}
				_ = os.Chmod(dir, mode)
				if m.UID != nil || m.GID != nil {
					uid, gid := 0, 0
					if m.UID != nil {
						uid = int(*m.UID)
					}
					if m.GID != nil {
						gid = int(*m.GID)
					}
					_ = os.Chown(dir, uid, gid)
				}
			}
			opts := []string{"rbind", "rw"}
			if m.ReadOnly {
				opts[1] = "ro"
			}
			out = append(out, specs.Mount{Destination: target, Type: "bind", Source: dir, Options: opts})
		case instructions.MountTypeTmpfs:
			opts := []string{"nosuid", "nodev"}
			if m.SizeLimit > 0 {
				opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
			}
			out = append(out, specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts})
		case instructions.MountTypeBind:
			var root string
			if m.From == "" {
				if sc.r.bc.dir == "" {
					return nil, cleanup, fmt.Errorf("--mount=type=bind: no build context: %w", errdefs.ErrInvalidArgument)
				}
				root = sc.r.bc.dir
				// What .dockerignore leaves out is not part of the
				// context, for mounts as for COPY.
				if rel := strings.TrimPrefix(path.Clean("/"+m.Source), "/"); sc.r.bc.excluded(rel) {
					return nil, cleanup, fmt.Errorf("--mount=type=bind,source=%s: excluded by .dockerignore: %w", m.Source, errdefs.ErrNotFound)
				}
			} else {
				dir, release, _, err := sc.copySource(ctx, m.From)
				if err != nil {
					return nil, cleanup, err
				}
				undo = append(undo, release)
				root = dir
			}
			src, err := securejoin.SecureJoin(root, m.Source)
			if err != nil {
				return nil, cleanup, err
			}
			if _, err := os.Stat(src); err != nil {
				return nil, cleanup, fmt.Errorf("--mount=type=bind,source=%s: %w", m.Source, errors.Join(errdefs.ErrNotFound, err))
			}
			if !m.ReadOnly {
				// rw: writes must never reach the source (BuildKit
				// discards them), so the step sees a scratch copy.
				if src, err = scratchCopy(tmpDir, src, &undo); err != nil {
					return nil, cleanup, err
				}
			}
			opts := []string{"rbind", "ro"}
			if !m.ReadOnly {
				opts[1] = "rw"
			}
			out = append(out, specs.Mount{Destination: target, Type: "bind", Source: src, Options: opts})
		case instructions.MountTypeSecret:
			id := m.CacheID
			if id == "" {
				id = path.Base(m.Target)
			}
			src, ok := sc.r.opts.Secrets[id]
			if !ok {
				if m.Required {
					return nil, cleanup, fmt.Errorf("secret %s not provided (--secret id=%s,src=FILE): %w", id, id, errdefs.ErrNotFound)
				}
				continue
			}
			if m.Env != nil {
				data, err := os.ReadFile(src)
				if err != nil {
					return nil, cleanup, fmt.Errorf("secret %s: %w", id, err)
				}
				name := *m.Env
				if name == "" {
					name = id
				}
				*env = append(*env, name+"="+string(data))
				if m.Target == "" {
					continue
				}
			}
			if target == "" {
				target = "/run/secrets/" + id
			}
			out = append(out, specs.Mount{Destination: target, Type: "bind", Source: src, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
		case instructions.MountTypeSSH:
			return nil, cleanup, fmt.Errorf("RUN --mount=type=ssh: %w", errdefs.ErrNotSupported)
		}
	}
	return out, cleanup, nil
}

// resolveChown resolves COPY --chown (user[:group], names or numbers)
// against the rootfs' own /etc/passwd and /etc/group, read through paths
// resolved inside the rootfs. A user without a group uses the same number
// as its gid, as Docker documents.
func resolveChown(rootfs, spec string) (int, int, error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, err := lookupID(rootfs, "/etc/passwd", u)
	if err != nil {
		return 0, 0, err
	}
	gid := uid
	if hasGroup {
		if gid, err = lookupID(rootfs, "/etc/group", g); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

func lookupID(rootfs, file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	p, err := securejoin.SecureJoin(rootfs, file)
	if err == nil {
		if f, err := os.Open(p); err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fields := strings.Split(sc.Text(), ":")
				if len(fields) >= 3 && fields[0] == name {
					if n, err := strconv.Atoi(fields[2]); err == nil {
						return n, nil
					}
				}
			}
		}
	}
	what := "user"
	if file == "/etc/group" {
		what = "group"
	}
	return 0, fmt.Errorf("unable to find %s %s: %w", what, name, errdefs.ErrInvalidArgument)
}

// scratchCopy gives a rw bind mount a throwaway view of src: an overlay
// with src as its only lower layer for a directory, a copy for a file.
// The undo entries unmount and remove it.
func scratchCopy(tmpDir, src string, undo *[]func()) (string, error) {
	if strings.ContainsAny(src, ",:") {
		return "", fmt.Errorf("rw bind mount of %s: the path holds ',' or ':': %w", src, errdefs.ErrNotSupported)
	}
	dir, err := os.MkdirTemp(tmpDir, "rwbind-")
	if err != nil {
		return "", err
	}
	*undo = append(*undo, func() { _ = os.RemoveAll(dir) })
	st, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		dst := filepath.Join(dir, "file")
		data, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		return dst, os.WriteFile(dst, data, st.Mode().Perm())
	}
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
	}
	opts := "lowerdir=" + src + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("rw bind mount of %s: %w", src, &os.PathError{Op: "mount overlay", Path: merged, Err: err})
	}
	*undo = append(*undo, func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	return merged, nil
}
