package imagearchive

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
)

// normalizeName turns a name as archives write it ("busybox:latest",
// "localhost/app:1") into the normalized form the image store keys on
// ("docker.io/library/busybox:latest"); a name without tag or digest gets
// ":latest", as `docker load` does.
func normalizeName(s string) (string, error) {
	named, err := reference.ParseNormalized(s)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w: %v", s, errdefs.ErrInvalidArgument, err)
	}
	return named.TagNameOnly().String(), nil
}

// tagged splits a name into its familiar form for manifest.json RepoTags
// ("busybox:latest", as docker writes them), its familiar repository for the
// repositories file, and its tag. ok is false for digest-only references,
// which RepoTags cannot carry.
func tagged(s string) (familiar, repo, tag string, ok bool, err error) {
	named, err := reference.ParseNormalized(s)
	if err != nil {
		return "", "", "", false, fmt.Errorf("image name %q: %w: %v", s, errdefs.ErrInvalidArgument, err)
	}
	if named.Canonical() && named.Tag == "" {
		return "", "", "", false, nil
	}
	// A name:tag@digest reference keeps only name:tag in an archive.
	nt := named.TagNameOnly()
	nt.Digest = ""
	return nt.FamiliarString(), nt.FamiliarName(), nt.Tag, true, nil
}
