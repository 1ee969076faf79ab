package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	defaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	historyComment = "buildkit.dockerfile.v0"
)

// stageCtx is a stage being built.
type stageCtx struct {
	r      *buildRun
	s      *stageRun
	name   string
	st     *state
	args   *envMap // ARGs in scope with their values
	lex    *shell.Lex
	cmdSet bool // CMD set in this stage (ENTRYPOINT keeps it)
	n, of  int  // step counter for progress
}

func (r *buildRun) runStage(ctx context.Context, s *stageRun) (*state, error) {
	for _, j := range s.deps {
		if _, err := r.waitStage(ctx, j); err != nil {
			return nil, err
		}
	}
	stage := r.df.stages[s.idx]
	steps := 1
	for _, c := range stage.Commands {
		if _, isArg := c.(*instructions.ArgCommand); !isArg {
			steps++
		}
	}
	sc := &stageCtx{r: r, s: s, name: stage.Name, args: newEnvMap(), lex: newLex(r.df), of: steps}
	if sc.name == "" {
		sc.name = "stage-" + strconv.Itoa(s.idx)
	}
	log := r.progress.start("[%s 1/%d] FROM %s", sc.name, sc.of, s.base)
	st, err := sc.from(ctx)
	log.done(false, err)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: FROM %s: %w", r.df.name, stageLine(stage), s.base, err)
	}
	sc.st, sc.n = st, 1
	// ONBUILD triggers of the base run first, then are dropped (Docker).
	if triggers := st.Config.Config.OnBuild; len(triggers) > 0 {
		sc.st = st.clone()
		sc.st.Config.Config.OnBuild = nil
		for _, t := range triggers {
			cmd, err := parseTrigger(t)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: ONBUILD %s: %w", r.df.name, stageLine(stage), t, err)
			}
			if err := sc.dispatch(ctx, cmd); err != nil {
				return nil, fmt.Errorf("%s:%d: ONBUILD %s: %w", r.df.name, stageLine(stage), t, err)
			}
		}
	}
	for _, cmd := range stage.Commands {
		if err := sc.dispatch(ctx, cmd); err != nil {
			return nil, atLine(r.df.name, cmd, err)
		}
	}
	return sc.st, nil
}

func stageLine(s instructions.Stage) int {
	if len(s.Location) > 0 {
		return s.Location[0].Start.Line
	}
	return 0
}

func parseTrigger(t string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(t))
	if err != nil || len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("invalid trigger: %w", errdefs.ErrInvalidArgument)
	}
	cmd, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return nil, errors.Join(errdefs.ErrInvalidArgument, err)
	}
	switch cmd.(type) {
	case *instructions.OnbuildCommand:
		return nil, fmt.Errorf("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed: %w", errdefs.ErrInvalidArgument)
	}
	return cmd, nil
}

// from makes the stage's starting state: another stage's result, scratch,
// or an image (pulled if missing or --pull).
func (sc *stageCtx) from(ctx context.Context) (*state, error) {
	r, base := sc.r, sc.s.base
	if j, ok := r.df.stageRef(base, sc.s.idx); ok {
		st, err := r.waitStage(ctx, j)
		if err != nil {
			return nil, err
		}
		return st.clone(), nil
	}
	if p := r.df.stages[sc.s.idx].Platform; p != "" {
		pv, _, err := sc.lex.ProcessWord(p, r.meta)
		if err != nil {
			return nil, err
		}
		if err := checkPlatform(pv); err != nil {
			return nil, err
		}
	}
	osName, arch, _ := strings.Cut(r.platform, "/")
	if strings.EqualFold(base, "scratch") {
		st := &state{Key: stepKey("", "scratch", r.platform)}
		st.Config.OS, st.Config.Architecture = osName, arch
		st.Config.RootFS.Type = "layers"
		st.Config.RootFS.DiffIDs = []digest.Digest{}
		st.Config.Config.Env = []string{defaultPathEnv}
		return st, nil
	}
	return r.imageState(ctx, base)
}

// imageState is the state of an image reference (FROM, COPY --from).
func (r *buildRun) imageState(ctx context.Context, ref string) (*state, error) {
	img, err := r.b.Source.Resolve(ctx, ref, r.opts.Pull, r.opts.Progress)
	if err != nil {
		return nil, err
	}
	st := &state{Key: stepKey("", "image", img.ID.String())}
	b, err := r.b.Images.Content().ReadAll(ctx, img.ID, 8<<20)
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", ref, err)
	}
	if err := json.Unmarshal(b, &st.Config); err != nil {
		return nil, fmt.Errorf("config of %s: %w", ref, err)
	}
	m, err := r.b.Images.Manifest(ctx, img)
	if err != nil {
		return nil, err
	}
	if len(m.Layers) != len(st.Config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image %s: %d layers for %d diff IDs: %w", ref, len(m.Layers), len(st.Config.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	st.Layers = m.Layers
	if st.Config.Config.Env == nil {
		st.Config.Config.Env = []string{defaultPathEnv}
	}
	return st, nil
}

// expandEnv is the environment words are expanded with: the args in scope,
// overridden by the image's ENV.
func (sc *stageCtx) expandEnv() *envMap {
	e := newEnvMap()
	for _, k := range sc.args.keys {
		e.Set(k, sc.args.vals[k])
	}
	for _, kv := range sc.st.Config.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		e.Set(k, v)
	}
	return e
}

// argsInScope lists KEY=VALUE of the declared args, sorted, for cache keys
// and RUN's environment.
func (sc *stageCtx) argsInScope() []string {
	out := make([]string, 0, len(sc.args.keys))
	for _, k := range sc.args.keys {
		out = append(out, k+"="+sc.args.vals[k])
	}
	sort.Strings(out)
	return out
}

// step runs one instruction through the cache. apply changes next (a copy
// of the current state) and reports whether it added no layer; the step's
// history entry and timestamp are added here.
func (sc *stageCtx) step(ctx context.Context, title, createdBy string, keyParts []string, apply func(ctx context.Context, next *state, log *stepLog) (empty bool, err error)) error {
	sc.n++
	key := stepKey(sc.st.Key, append([]string{createdBy, strings.Join(sc.argsInScope(), "\n")}, keyParts...)...)
	log := sc.r.progress.start("[%s %d/%d] %s", sc.name, sc.n, sc.of, title)
	if !sc.r.opts.NoCache {
		if c := sc.r.cache.get(ctx, sc.r.b.Images, key); c != nil {
			sc.st = c
			log.done(true, nil)
			return nil
		}
	}
	next := sc.st.clone()
	next.Key = key
	now := time.Now().UTC().Truncate(time.Millisecond)
	empty, err := apply(ctx, next, log)
	log.done(false, err)
	if err != nil {
		return err
	}
	next.Config.Created = &now
	next.Config.History = append(next.Config.History, ocispec.History{
		Created: &now, CreatedBy: createdBy, Comment: historyComment, EmptyLayer: empty,
	})
	if err := sc.r.cache.put(next); err != nil {
		return err
	}
	sc.st = next
	return nil
}

// meta is a step that changes only the config.
func (sc *stageCtx) meta(ctx context.Context, cmd instructions.Command, createdBy string, fn func(c *dockerspec.DockerOCIImageConfig, img *dockerspec.DockerOCIImage)) error {
	b, _ := json.Marshal(cmd) // exported fields, after expansion
	return sc.step(ctx, createdBy, createdBy, []string{cmd.Name(), string(b)}, func(_ context.Context, next *state, _ *stepLog) (bool, error) {
		fn(&next.Config.Config, &next.Config)
		return true, nil
	})
}

// shell is the stage's SHELL (default /bin/sh -c).
func (sc *stageCtx) shell() []string {
	if s := sc.st.Config.Config.Shell; len(s) > 0 {
		return s
	}
	return []string{"/bin/sh", "-c"}
}

func (sc *stageCtx) cmdline(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(append([]string{}, sc.shell()...), strings.Join(c.CmdLine, " "))
	}
	return append([]string{}, c.CmdLine...)
}

func (sc *stageCtx) dispatch(ctx context.Context, cmd instructions.Command) error {
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		env := sc.expandEnv()
		err := e.Expand(func(word string) (string, error) {
			v, _, err := sc.lex.ProcessWord(word, env)
			return v, err
		})
		if err != nil {
			return errors.Join(errdefs.ErrInvalidArgument, err)
		}
	}
	if p, ok := cmd.(instructions.PlatformSpecific); ok {
		if err := p.CheckPlatform(sc.r.platform); err != nil {
			return errors.Join(errdefs.ErrInvalidArgument, err)
		}
	}
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			v, ok := sc.r.opts.BuildArgs[kv.Key]
			if ok {
				sc.r.markUsed(kv.Key)
			} else if kv.Value != nil {
				v = *kv.Value
			} else if mv, ok := sc.r.meta.Get(kv.Key); ok {
				v = mv
			}
			sc.args.Set(kv.Key, v)
		}
		return nil
	case *instructions.EnvCommand:
		return sc.meta(ctx, c, "ENV "+kvString(c.Env), func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			for _, kv := range c.Env {
				cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
			}
		})
	case *instructions.LabelCommand:
		return sc.meta(ctx, c, "LABEL "+kvString(c.Labels), func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			labels := map[string]string{}
			for k, v := range cfg.Labels {
				labels[k] = v
			}
			for _, kv := range c.Labels {
				labels[kv.Key] = kv.Value
			}
			cfg.Labels = labels
		})
	case *instructions.MaintainerCommand:
		return sc.meta(ctx, c, "MAINTAINER "+c.Maintainer, func(_ *dockerspec.DockerOCIImageConfig, img *dockerspec.DockerOCIImage) {
			img.Author = c.Maintainer
		})
	case *instructions.ExposeCommand:
		ports, err := exposedPorts(c.Ports, sc.lex, sc.expandEnv())
		if err != nil {
			return err
		}
		return sc.meta(ctx, c, "EXPOSE "+strings.Join(ports, " "), func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			m := map[string]struct{}{}
			for k := range cfg.ExposedPorts {
				m[k] = struct{}{}
			}
			for _, p := range ports {
				m[p] = struct{}{}
			}
			cfg.ExposedPorts = m
		})
	case *instructions.VolumeCommand:
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string: %w", errdefs.ErrInvalidArgument)
			}
		}
		return sc.meta(ctx, c, "VOLUME "+fmt.Sprint(c.Volumes), func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			m := map[string]struct{}{}
			for k := range cfg.Volumes {
				m[k] = struct{}{}
			}
			for _, v := range c.Volumes {
				m[v] = struct{}{}
			}
			cfg.Volumes = m
		})
	case *instructions.UserCommand:
		return sc.meta(ctx, c, "USER "+c.User, func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			cfg.User = c.User
		})
	case *instructions.StopSignalCommand:
		return sc.meta(ctx, c, "STOPSIGNAL "+c.Signal, func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			cfg.StopSignal = c.Signal
		})
	case *instructions.ShellCommand:
		b, _ := json.Marshal(c.Shell)
		return sc.meta(ctx, c, "SHELL "+string(b), func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			cfg.Shell = append([]string{}, c.Shell...)
		})
	case *instructions.HealthCheckCommand:
		b, _ := json.Marshal(c.Health)
		return sc.meta(ctx, c, "HEALTHCHECK "+string(b), func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			h := *c.Health
			cfg.Healthcheck = &h
		})
	case *instructions.OnbuildCommand:
		return sc.meta(ctx, c, "ONBUILD "+c.Expression, func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			cfg.OnBuild = append(append([]string{}, cfg.OnBuild...), c.Expression)
		})
	case *instructions.CmdCommand:
		args := sc.cmdline(c.ShellDependantCmdLine)
		b, _ := json.Marshal(args)
		sc.cmdSet = true
		return sc.meta(ctx, c, "CMD "+string(b), func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			cfg.Cmd = args
		})
	case *instructions.EntrypointCommand:
		args := sc.cmdline(c.ShellDependantCmdLine)
		b, _ := json.Marshal(args)
		keepCmd := sc.cmdSet
		return sc.meta(ctx, c, "ENTRYPOINT "+string(b), func(cfg *dockerspec.DockerOCIImageConfig, _ *dockerspec.DockerOCIImage) {
			cfg.Entrypoint = args
			if !keepCmd {
				// A CMD inherited from the base image does not survive a
				// new ENTRYPOINT (Docker's rule).
				cfg.Cmd = nil
			}
		})
	case *instructions.WorkdirCommand:
		wd := c.Path
		if !path.IsAbs(wd) {
			cur := sc.st.Config.Config.WorkingDir
			if cur == "" {
				cur = "/"
			}
			wd = path.Join(cur, wd)
		}
		wd = path.Clean(wd)
		return sc.workdir(ctx, wd)
	case *instructions.RunCommand:
		return sc.run(ctx, c)
	case *instructions.CopyCommand:
		return sc.copy(ctx, copyRequest{cmd: c, sources: c.SourcePaths, inline: c.SourceContents, dest: c.DestPath,
			from: c.From, chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, parents: c.Parents, link: c.Link, verb: "COPY"})
	case *instructions.AddCommand:
		unpack := true
		if c.Unpack != nil {
			unpack = *c.Unpack
		}
		if c.Checksum != "" {
			return fmt.Errorf("ADD --checksum: %w", errdefs.ErrNotSupported)
		}
		return sc.copy(ctx, copyRequest{cmd: c, sources: c.SourcePaths, inline: c.SourceContents, dest: c.DestPath,
			chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, add: true, unpack: unpack, link: c.Link, verb: "ADD"})
	}
	return fmt.Errorf("instruction %s: %w", strings.ToUpper(cmd.Name()), errdefs.ErrNotSupported)
}

// copyRequest is a COPY or ADD after expansion.
type copyRequest struct {
	cmd          instructions.Command
	verb         string
	sources      []string
	inline       []instructions.SourceContent // heredoc sources
	dest, from   string
	chown, chmod string
	excludes     []string
	parents, add bool
	unpack       bool
	link         bool // --link: a layer of its own (copy_link_linux.go)
}

func kvString(kvs instructions.KeyValuePairs) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = kv.Key + "=" + kv.Value
	}
	return strings.Join(parts, " ")
}

func setEnv(env []string, k, v string) []string {
	out := append([]string{}, env...)
	for i, e := range out {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out[i] = k + "=" + v
			return out
		}
	}
	return append(out, k+"="+v)
}

// exposedPorts normalizes EXPOSE arguments: "80" → "80/tcp", ranges
// "8000-8002/udp" expanded, protocols lower-cased.
func exposedPorts(raw []string, lex *shell.Lex, env *envMap) ([]string, error) {
	var out []string
	for _, w := range raw {
		w, _, err := lex.ProcessWord(w, env)
		if err != nil {
			return nil, err
		}
		port, proto, ok := strings.Cut(w, "/")
		if !ok || proto == "" {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		lo, hi, isRange := strings.Cut(port, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b > 65535 || b < a || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return nil, fmt.Errorf("invalid port %q: %w", w, errdefs.ErrInvalidArgument)
		}
		for p := a; p <= b; p++ {
			out = append(out, strconv.Itoa(p)+"/"+proto)
		}
	}
	return out, nil
}
