package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// buildContext is the context directory (a tar context is unpacked first,
// with archive.Apply, so it cannot write outside its directory) and its
// .dockerignore patterns.
type buildContext struct {
	dir     string // "" when there is no context
	ignore  *patternmatcher.PatternMatcher
	cleanup func()
}

// excluded reports whether rel (slash-separated, relative to the context)
// is excluded by .dockerignore.
func (c *buildContext) excluded(rel string) bool {
	if c.ignore == nil || rel == "." || rel == "" {
		return false
	}
	ok, err := c.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// openContext prepares the context and reads the Dockerfile.
// A tar context is unpacked into the build's work directory (work).
func (b *Builder) openContext(ctx context.Context, opts Options, work func() (string, error)) (_ *buildContext, df []byte, dfName string, retErr error) {
	bc := &buildContext{cleanup: func() {}}
	dfName = opts.Dockerfile
	if dfName == "" {
		dfName = "Dockerfile"
	}
	switch {
	case opts.ContextTar != nil:
		wd, err := work()
		if err != nil {
			return nil, nil, "", err
		}
		dir, err := os.MkdirTemp(wd, "context-")
		if err != nil {
			return nil, nil, "", fmt.Errorf("build context: %w", err)
		}
		bc.dir, bc.cleanup = dir, func() { _ = os.RemoveAll(dir) }
		defer func() {
			if retErr != nil {
				bc.cleanup()
			}
		}()
		r, _, err := archive.Decompress(opts.ContextTar)
		if err != nil {
			return nil, nil, "", fmt.Errorf("build context: %w", err)
		}
		defer r.Close()
		if _, err := archive.Apply(ctx, dir, r, archive.ApplyOptions{Whiteouts: archive.WhiteoutsApply}); err != nil {
			return nil, nil, "", fmt.Errorf("build context: unpack tar: %w", err)
		}
	case opts.ContextDir != "":
		abs, err := filepath.Abs(opts.ContextDir)
		if err != nil {
			return nil, nil, "", err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, nil, "", fmt.Errorf("unable to prepare context: %w", errors.Join(errdefs.ErrNotFound, err))
		}
		if !st.IsDir() {
			return nil, nil, "", fmt.Errorf("unable to prepare context: %s is not a directory: %w", abs, errdefs.ErrInvalidArgument)
		}
		bc.dir = abs
	}

	df = opts.DockerfileContent
	if df == nil {
		if bc.dir == "" {
			return nil, nil, "", fmt.Errorf("no Dockerfile and no context: %w", errdefs.ErrInvalidArgument)
		}
		p, err := securejoin.SecureJoin(bc.dir, dfName)
		if err != nil {
			return nil, nil, "", err
		}
		if df, err = os.ReadFile(p); err != nil {
			return nil, nil, "", fmt.Errorf("failed to read dockerfile: open %s: %w", dfName, errors.Join(errdefs.ErrNotFound, err))
		}
	}

	if bc.dir != "" {
		name, b, err := readDockerignore(bc.dir, dfName, opts)
		if err != nil {
			return nil, nil, "", err
		}
		if b != nil {
			patterns, err := ignorefile.ReadAll(bytes.NewReader(b))
			if err != nil {
				return nil, nil, "", fmt.Errorf("%s: %w", name, errors.Join(errdefs.ErrInvalidArgument, err))
			}
			if len(patterns) > 0 {
				if bc.ignore, err = patternmatcher.New(patterns); err != nil {
					return nil, nil, "", fmt.Errorf("%s: %w", name, errors.Join(errdefs.ErrInvalidArgument, err))
				}
			}
		}
	}
	return bc, df, filepath.Base(dfName), nil
}

// readDockerignore finds the ignore file that applies, as BuildKit does:
// the Dockerfile's own NAME.dockerignore (beside the Dockerfile, inside
// the context or, given by the caller, outside it) wins over the
// context's .dockerignore. nil content: no ignore file.
func readDockerignore(dir, dfName string, opts Options) (string, []byte, error) {
	if opts.DockerignoreContent != nil {
		return path.Base(dfName) + ".dockerignore", opts.DockerignoreContent, nil
	}
	names := []string{".dockerignore"}
	if opts.DockerfileContent == nil {
		names = append([]string{path.Clean(dfName) + ".dockerignore"}, names...)
	}
	for _, name := range names {
		p, err := securejoin.SecureJoin(dir, name)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return name, nil, fmt.Errorf("read %s: %w", name, err)
		}
		return name, b, nil
	}
	return "", nil, nil
}
