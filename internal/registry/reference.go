package registry

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// dockerHub is how berth writes Docker Hub's registry in stored names;
// go-containerregistry says index.docker.io, the host it talks to.
const dockerHub = "docker.io"

// Normalize returns the full form berth stores and displays:
// "busybox" → "docker.io/library/busybox:latest",
// "127.0.0.1:5000/x" → "127.0.0.1:5000/x:latest"; digest references keep
// their digest ("docker.io/library/busybox@sha256:…"). A malformed
// reference is errdefs.ErrInvalidArgument.
func Normalize(ref string) (string, error) {
	r, err := parse(ref)
	if err != nil {
		return "", err
	}
	return normalizedName(r), nil
}

// Repository returns the normalized repository of a reference that names
// one without a tag or digest ("busybox" → "docker.io/library/busybox"),
// as `pull -a` and `push -a` take it. A reference with a tag or digest is
// errdefs.ErrInvalidArgument, with docker's words.
func Repository(ref string) (string, error) {
	if _, err := parse(ref); err != nil {
		return "", err
	}
	r, err := name.NewRepository(ref)
	if err != nil || strings.Contains(ref, "@") {
		return "", invalid(ref, errTagWithAll)
	}
	return repoName(r), nil
}

// FamiliarName is the short form docker prints: "busybox:latest",
// "user/app:1", "127.0.0.1:5000/x:tag". A string that is not a reference
// is returned unchanged.
func FamiliarName(ref string) string {
	r, err := parse(ref)
	if err != nil {
		return ref
	}
	return familiar(normalizedName(r))
}

// FamiliarRepository is FamiliarName for a normalized repository, which
// has no tag to add: "docker.io/library/busybox" → "busybox".
func FamiliarRepository(repo string) string { return familiar(repo) }

// familiar shortens a normalized name or repository.
func familiar(s string) string {
	if rest, ok := strings.CutPrefix(s, dockerHub+"/"); ok {
		return strings.TrimPrefix(rest, "library/")
	}
	return s
}

func parse(ref string) (name.Reference, error) {
	if ref == "" {
		return nil, invalid(ref, errEmpty)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, invalid(ref, err)
	}
	// go-containerregistry accepts tags starting with '.' or '-'; docker
	// (and the distribution spec's [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}) do not.
	if t, ok := r.(name.Tag); ok && strings.IndexAny(t.TagStr(), ".-") == 0 {
		return nil, invalid(ref, errBadTag)
	}
	return r, nil
}

type constErr string

func (e constErr) Error() string { return string(e) }

const (
	errEmpty  = constErr("empty reference")
	errBadTag = constErr("a tag must start with a letter, digit or underscore")
	// errTagWithAll is docker's refusal of `pull -a busybox:1`.
	errTagWithAll = constErr("tag can't be used with --all-tags/-a")
)

// repoName is a repository's normalized name: "docker.io/library/busybox".
func repoName(r name.Repository) string {
	reg := r.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = dockerHub
	}
	return reg + "/" + r.RepositoryStr()
}

func normalizedName(r name.Reference) string {
	switch t := r.(type) {
	case name.Tag:
		return repoName(t.Context()) + ":" + t.TagStr()
	case name.Digest:
		return repoName(t.Context()) + "@" + t.DigestStr()
	}
	return r.Name()
}

// parseRepo parses a repository name in any form ("busybox",
// "docker.io/library/busybox", "127.0.0.1:5000/x").
func parseRepo(repo string) (name.Repository, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		return name.Repository{}, invalid(repo, err)
	}
	return r, nil
}

func pullScope(r name.Repository) string { return r.Scope(transport.PullScope) }
