// Package reference parses and normalizes Docker image references
// ("busybox", "127.0.0.1:5000/app:v1", "name@sha256:…") with the grammar,
// defaults and error messages of github.com/distribution/reference, which
// Docker and containerd use:
//
//	reference        := name [ ":" tag ] [ "@" digest ]
//	name             := [domain '/'] path
//	domain           := host [':' port-number]
//	host             := domain-name | '[' IPv6 ']'
//	domain-name      := domain-component ['.' domain-component]*
//	domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//	port-number      := /[0-9]+/
//	path             := path-component ['/' path-component]*
//	path-component   := alpha-numeric [separator alpha-numeric]*
//	alpha-numeric    := /[a-z0-9]+/
//	separator        := /[_.]|__|[-]+/
//	tag              := /[\w][\w.-]{0,127}/
//	digest           := /[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}/
//	                    (then validated by go-digest: a known algorithm, its length, lowercase hex)
//
// Why hand-written: distribution/reference compiles nine regular
// expressions in its package initialiser, about 2–3.5 ms of every process
// that links it, and the berth CLI links it for name lookups: that is a
// tenth of the `berth run --rm busybox true` budget, spent before main. The
// grammar is small and regular, so a scanner per production does the same
// work in microseconds, only when a reference is parsed. The test compares
// this package with distribution/reference on many inputs (results and
// error messages), so the two cannot drift apart silently.
package reference

import (
	"errors"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

const (
	// DefaultDomain is the registry of names without one.
	DefaultDomain = "docker.io"
	// legacyDefaultDomain is normalized to DefaultDomain.
	legacyDefaultDomain = "index.docker.io"
	// officialRepoPrefix is the path prefix of Docker's official images.
	officialRepoPrefix = "library/"
	// DefaultTag is the tag of a reference that names neither tag nor digest.
	DefaultTag = "latest"
	// MaxPathLength bounds the path (the name without its domain).
	MaxPathLength = 255
)

// The error messages are distribution/reference's, which users and tests
// of Docker-compatible tools recognise.
var (
	errInvalidFormat = errors.New("invalid reference format")
	errUppercase     = errors.New("invalid reference format: repository name must be lowercase")
	errNameTooLong   = errors.New("repository name must not be more than 255 characters")
)

// parseError keeps the message of its cause and classifies as
// errdefs.ErrInvalidArgument.
type parseError struct{ err error }

func (e *parseError) Error() string   { return e.err.Error() }
func (e *parseError) Unwrap() []error { return []error{e.err, errdefs.ErrInvalidArgument} }

func invalid(err error) error { return &parseError{err} }

// Reference is a parsed, normalized reference. Domain is empty only for
// names whose first component is no valid domain although it looks like
// one ("a_b.c/d": distribution/reference keeps the whole name as the path).
type Reference struct {
	Domain string
	Path   string
	Tag    string        // empty when none was given
	Digest digest.Digest // empty when none was given
}

// ParseNormalized parses s as Docker's CLI does (distribution/reference's
// ParseNormalizedNamed): a name without a domain is on docker.io, a
// single-component name on docker.io is under library/, index.docker.io is
// docker.io. No default tag is added (see TagNameOnly).
func ParseNormalized(s string) (Reference, error) {
	if IsIdentifier(s) {
		return Reference{}, invalid(errors.New("invalid repository name (" + s + "), cannot specify 64-byte hexadecimal strings"))
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexByte(remainder, ':'); i >= 0 {
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return Reference{}, invalid(errors.New("invalid reference format: repository name (" + remote + ") must be lowercase"))
	}
	return parse(domain + "/" + remainder)
}

// parse is distribution/reference's Parse for a string that has a name
// (ParseNormalized always gives one a domain).
func parse(s string) (Reference, error) {
	r, ok := match(s)
	if !ok {
		if _, ok := match(strings.ToLower(s)); ok {
			return Reference{}, invalid(errUppercase)
		}
		return Reference{}, invalid(errInvalidFormat)
	}
	if len(r.Path) > MaxPathLength {
		return Reference{}, invalid(errNameTooLong)
	}
	if r.Digest != "" {
		d, err := digest.Parse(string(r.Digest))
		if err != nil {
			return Reference{}, invalid(err)
		}
		r.Digest = d
	}
	return r, nil
}

// match splits s into name, tag and digest by the grammar; ok is false
// when s does not match it. The split is unambiguous: '@' occurs only
// before the digest, and a tag is what follows the last ':' when no '/'
// follows that ':' (a name holds ':' only in its domain's port, which a
// '/' always follows).
func match(s string) (r Reference, ok bool) {
	name := s
	if i := strings.IndexByte(s, '@'); i >= 0 {
		name, r.Digest = s[:i], digest.Digest(s[i+1:])
		if !isDigest(string(r.Digest)) {
			return Reference{}, false
		}
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i:], "/") {
		name, r.Tag = name[:i], name[i+1:]
		if !isTag(r.Tag) {
			return Reference{}, false
		}
	}
	// The domain is optional and, when the first component can be one,
	// taken (the regexp's greedy optional group); otherwise the whole name
	// must be a path.
	if domain, path, found := strings.Cut(name, "/"); found && isDomain(domain) && isPath(path) {
		r.Domain, r.Path = domain, path
		return r, true
	}
	if isPath(name) {
		r.Path = name
		return r, true
	}
	return Reference{}, false
}

// splitDockerDomain is distribution/reference's: the first component is a
// domain when it is localhost or looks like a host (a '.' or ':', or
// uppercase, which paths never have).
func splitDockerDomain(name string) (domain, remote string) {
	maybeDomain, maybeRemote, ok := strings.Cut(name, "/")
	if !ok {
		return DefaultDomain, officialRepoPrefix + name
	}
	switch {
	case maybeDomain == "localhost":
		domain, remote = maybeDomain, maybeRemote
	case maybeDomain == legacyDefaultDomain:
		domain, remote = DefaultDomain, maybeRemote
	case strings.ContainsAny(maybeDomain, ".:"):
		domain, remote = maybeDomain, maybeRemote
	case strings.ToLower(maybeDomain) != maybeDomain:
		domain, remote = maybeDomain, maybeRemote
	default:
		domain, remote = DefaultDomain, name
	}
	if domain == DefaultDomain && !strings.Contains(remote, "/") {
		remote = officialRepoPrefix + remote
	}
	return domain, remote
}

// Name is the repository: domain/path.
func (r Reference) Name() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// String is the full reference: name[:tag][@digest].
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + string(r.Digest)
	}
	return s
}

// Canonical reports whether r names a digest (Docker's "canonical" reference).
func (r Reference) Canonical() bool { return r.Digest != "" }

// TagNameOnly adds the default tag to a reference with neither tag nor digest.
func (r Reference) TagNameOnly() Reference {
	if r.Tag == "" && r.Digest == "" {
		r.Tag = DefaultTag
	}
	return r
}

// Familiar is the short form Docker prints: docker.io and an official
// image's library/ left out.
func (r Reference) Familiar() Reference {
	if r.Domain == DefaultDomain {
		r.Domain = ""
		if rest, ok := strings.CutPrefix(r.Path, officialRepoPrefix); ok && !strings.Contains(rest, "/") {
			r.Path = rest
		}
	}
	return r
}

// FamiliarString is Familiar().String() ("busybox:latest").
func (r Reference) FamiliarString() string { return r.Familiar().String() }

// FamiliarName is Familiar().Name() ("busybox").
func (r Reference) FamiliarName() string { return r.Familiar().Name() }
