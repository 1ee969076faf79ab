package image

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestDelete(t *testing.T) {
	md := fakeID("f1").String()
	images := []record{
		{id: "a1", names: []string{"busybox:latest", "busybox:1.36"}, digests: []string{"busybox@" + md}},
		{id: "b2", names: []string{"app:v1"}},
		{id: "c3", names: []string{"one:latest", "two:latest"}},
		{id: "d4"},
		{id: "e5", names: []string{"repo:1"}, digests: []string{"repo@" + fakeID("e").String()}},
	}
	untagged := func(s string) DeleteItem { return DeleteItem{Untagged: s} }
	deleted := func(p string) DeleteItem { return DeleteItem{Deleted: fakeID(p).String()} }
	for _, tc := range []struct {
		name  string
		ref   string
		force bool
		inUse string // ID prefix of the image a container uses
		want  []DeleteItem
		err   error
		left  []string // IDs still stored, checked when set
	}{
		{name: "one of several tags", ref: "busybox:1.36", want: []DeleteItem{untagged("busybox:1.36")}},
		{name: "familiar name", ref: "busybox", want: []DeleteItem{untagged("busybox:latest")}},
		{name: "last tag deletes", ref: "app:v1", want: []DeleteItem{untagged("app:v1"), deleted("b2")}},
		{name: "last tag takes repo digests", ref: "repo:1", want: []DeleteItem{untagged("repo:1"), untagged("repo@" + fakeID("e").String()), deleted("e5")}},
		{name: "digest reference", ref: "busybox@" + md, want: []DeleteItem{untagged("busybox@" + md)}},
		{name: "last tag in use", ref: "app:v1", inUse: "b2", err: errdefs.ErrConflict},
		{name: "last tag in use, forced", ref: "app:v1", inUse: "b2", force: true, want: []DeleteItem{untagged("app:v1"), deleted("b2")}},
		{name: "one of several tags in use", ref: "busybox:1.36", inUse: "a1", want: []DeleteItem{untagged("busybox:1.36")}},
		{name: "ID with one name", ref: "b2", want: []DeleteItem{untagged("app:v1"), deleted("b2")}},
		{name: "ID with one name in use", ref: "b2", inUse: "b2", err: errdefs.ErrConflict},
		{name: "ID with several tags", ref: "a1", err: errdefs.ErrConflict},
		{name: "ID with several tags, forced", ref: "a1", force: true, want: []DeleteItem{
			untagged("busybox:latest"), untagged("busybox:1.36"), untagged("busybox@" + md), deleted("a1")}},
		{name: "ID in two repositories", ref: "c3", err: errdefs.ErrConflict},
		{name: "ID in two repositories, forced", ref: "sha256:c3", force: true, want: []DeleteItem{
			untagged("one:latest"), untagged("two:latest"), deleted("c3")}},
		{name: "dangling", ref: "d4", want: []DeleteItem{deleted("d4")}, left: []string{"a1", "b2", "c3", "e5"}},
		{name: "dangling in use", ref: "d4", inUse: "d4", err: errdefs.ErrConflict, left: []string{"a1", "b2", "c3", "d4", "e5"}},
		{name: "dangling in use, forced", ref: "d4", inUse: "d4", force: true, want: []DeleteItem{deleted("d4")}},
		{name: "unknown", ref: "nope", err: errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := recordStore(t)
			seed(t, s, images)
			inUse := func(id digest.Digest) bool { return tc.inUse != "" && id == fakeID(tc.inUse) }
			got, err := s.Delete(context.Background(), tc.ref, tc.force, inUse)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Delete = %v, %v; want %v", got, err, tc.err)
				}
			} else if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Delete = %v, %v; want %v", got, err, tc.want)
			}
			list, err := s.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tc.err != nil && len(list) != len(images) {
				t.Errorf("a refused delete changed the store: %d images", len(list))
			}
			if tc.left != nil {
				var ids []digest.Digest
				for _, img := range list {
					ids = append(ids, img.ID)
				}
				for _, p := range tc.left {
					if !slices.Contains(ids, fakeID(p)) {
						t.Errorf("image %s gone", p)
					}
				}
				if len(ids) != len(tc.left) {
					t.Errorf("images left: %v, want %v", ids, tc.left)
				}
			}
		})
	}
}
