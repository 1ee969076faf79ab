package volume

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestCreateGetListRemove(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := s.Create("data", CreateOptions{Labels: map[string]string{"a": "b"}})
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if v.Driver != DriverLocal || v.Mountpoint != filepath.Join(s.Dir(), "data", "_data") || v.Labels["a"] != "b" {
		t.Fatalf("record: %+v", v)
	}
	if st, err := os.Stat(v.Mountpoint); err != nil || !st.IsDir() {
		t.Fatalf("mountpoint: %v", err)
	}
	// A second create of the same name returns the existing volume.
	again, created, err := s.Create("data", CreateOptions{})
	if err != nil || created || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("second create: %v created=%v %+v", err, created, again)
	}
	if _, _, err := s.Create("other", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A directory without a record (a create killed halfway) is not a volume.
	if err := os.MkdirAll(filepath.Join(s.Dir(), "half", "_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Name != "data" || list[1].Name != "other" {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := s.Remove("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("data"); !errdefs.IsNotFound(err) {
		t.Fatalf("get after remove: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "data")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume dir left: %v", err)
	}
	if err := s.Remove("data"); !errdefs.IsNotFound(err) {
		t.Fatalf("second remove: %v", err)
	}
	// The half-created directory can be reused by name.
	if _, created, err := s.Create("half", CreateOptions{}); err != nil || !created {
		t.Fatalf("reuse half-created: %v %v", err, created)
	}
}

func TestCreateRejects(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, vol string
		opts      CreateOptions
		want      error
	}{
		{"one char", "a", CreateOptions{}, errdefs.ErrInvalidArgument},
		{"slash", "a/b", CreateOptions{}, errdefs.ErrInvalidArgument},
		{"dots", "..", CreateOptions{}, errdefs.ErrInvalidArgument},
		{"leading dash", "-ab", CreateOptions{}, errdefs.ErrInvalidArgument},
		{"driver", "good", CreateOptions{Driver: "nfs"}, errdefs.ErrNotSupported},
		{"unknown option", "good", CreateOptions{Options: map[string]string{"size": "1"}}, errdefs.ErrInvalidArgument},
		{"no device", "good", CreateOptions{Options: map[string]string{"type": "tmpfs"}}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.Create(tc.vol, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
