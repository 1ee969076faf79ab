package build

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
	name     string // for error messages ("Dockerfile")
}

// parseDockerfile parses with BuildKit's parser, which handles the parser
// directives (# syntax, # escape), heredocs and line continuations.
func parseDockerfile(name string, b []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, lineError(name, err)
	}
	stages, meta, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, lineError(name, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: file with no instructions: %w", name, errdefs.ErrInvalidArgument)
	}
	return &dockerfile{stages: stages, metaArgs: meta, escape: res.EscapeToken, name: name}, nil
}

// lineError prefixes err with the Dockerfile line it carries, if any, and
// classifies it as an invalid argument (the Dockerfile is the user's input).
func lineError(name string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line := le.Locations[0][0].Start.Line
		return fmt.Errorf("%s:%d: %w", name, line, errors.Join(errdefs.ErrInvalidArgument, errors.Unwrap(le)))
	}
	return fmt.Errorf("%s: %v: %w", name, err, errdefs.ErrInvalidArgument)
}

// atLine wraps a step's error with the instruction's line and text, so the
// user sees where the build failed.
func atLine(name string, cmd instructions.Command, err error) error {
	line := 0
	if loc := cmd.Location(); len(loc) > 0 {
		line = loc[0].Start.Line
	}
	text := cmd.Name()
	if s, ok := cmd.(fmt.Stringer); ok {
		text = s.String()
	}
	if len(text) > 120 {
		text = text[:117] + "..."
	}
	return fmt.Errorf("%s:%d: %s: %w", name, line, text, err)
}

// envMap is a shell.EnvGetter over ordered KEY=VALUE pairs.
type envMap struct {
	keys []string
	vals map[string]string
}

func newEnvMap() *envMap { return &envMap{vals: map[string]string{}} }

func (e *envMap) Get(k string) (string, bool) { v, ok := e.vals[k]; return v, ok }
func (e *envMap) Keys() []string              { return e.keys }
func (e *envMap) Set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

// predefinedArgs may be passed with --build-arg without an ARG (Docker's
// proxy variables); they reach RUN but never the image.
var predefinedArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// stageRef finds the stage a FROM, COPY --from or mount from= names: a
// stage name (case-insensitive) or index defined before stage `before`.
func (d *dockerfile) stageRef(ref string, before int) (int, bool) {
	for i := 0; i < before && i < len(d.stages); i++ {
		if d.stages[i].Name != "" && strings.EqualFold(d.stages[i].Name, ref) {
			return i, true
		}
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < before {
		return n, true
	}
	return -1, false
}

// plan returns the stages the target needs (in Dockerfile order) and each
// one's dependencies, with every FROM expanded with the meta args.
func (d *dockerfile) plan(target string, meta *envMap) (need []int, deps map[int][]int, bases map[int]string, err error) {
	lex := shell.NewLex(d.escape)
	ti := len(d.stages) - 1
	if target != "" {
		ti = -1
		for i, s := range d.stages {
			if strings.EqualFold(s.Name, target) {
				ti = i
			}
		}
		if ti < 0 {
			return nil, nil, nil, fmt.Errorf("target stage %q could not be found: %w", target, errdefs.ErrNotFound)
		}
	}
	deps, bases = map[int][]int{}, map[int]string{}
	for i, s := range d.stages {
		base, _, err := lex.ProcessWord(s.BaseName, meta)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: FROM %s: %w", d.name, s.BaseName, errors.Join(errdefs.ErrInvalidArgument, err))
		}
		if base == "" {
			return nil, nil, nil, fmt.Errorf("%s: FROM %s: base name expands to nothing: %w", d.name, s.BaseName, errdefs.ErrInvalidArgument)
		}
		bases[i] = base
		if j, ok := d.stageRef(base, i); ok {
			deps[i] = append(deps[i], j)
		}
		for _, c := range s.Commands {
			var froms []string
			switch c := c.(type) {
			case *instructions.CopyCommand:
				froms = append(froms, c.From)
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					froms = append(froms, m.From)
				}
			}
			for _, f := range froms {
				if f == "" {
					continue
				}
				if j, ok := d.stageRef(f, i); ok {
					deps[i] = append(deps[i], j)
				}
			}
		}
	}
	seen := map[int]bool{}
	var visit func(int)
	visit = func(i int) {
		if seen[i] {
			return
		}
		seen[i] = true
		for _, j := range deps[i] {
			visit(j)
		}
	}
	visit(ti)
	for i := range d.stages {
		if seen[i] {
			need = append(need, i)
		}
	}
	sort.Ints(need)
	return need, deps, bases, nil
}
