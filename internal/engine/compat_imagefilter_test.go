package engine

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	imagetypes "github.com/moby/moby/api/types/image"
)

func TestParseImageFilters(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		flags   []string
		until   time.Time
		wantErr error
	}{
		{name: "duration", flags: []string{"until=10m"}, until: now.Add(-10 * time.Minute)},
		{name: "hours", flags: []string{"until=1h30m"}, until: now.Add(-90 * time.Minute)},
		{name: "unix seconds", flags: []string{"until=1700000000"}, until: time.Unix(1700000000, 0)},
		{name: "unix fraction", flags: []string{"until=1700000000.5"}, until: time.Unix(1700000000, 5e8)},
		{name: "rfc3339", flags: []string{"until=2026-01-02T03:04:05Z"}, until: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{name: "rfc3339 offset", flags: []string{"until=2026-01-02T03:04:05+02:00"}, until: time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC)},
		{name: "date", flags: []string{"until=2026-01-02"}, until: time.Date(2026, 1, 2, 0, 0, 0, 0, time.Local)},
		{name: "bad until", flags: []string{"until=yesterday"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "two untils", flags: []string{"until=1h", "until=2h"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "unknown key", flags: []string{"colour=red"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "no equals", flags: []string{"dangling"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "bad dangling", flags: []string{"dangling=maybe"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "contradicting dangling", flags: []string{"dangling=true", "dangling=false"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "bad pattern", flags: []string{"reference=[x"}, wantErr: errdefs.ErrInvalidArgument},
		{name: "all kinds", flags: []string{"dangling=false", "label=a", "reference=busy*", "before=x", "since=y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseImageFilterFlags(tt.flags, now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !f.Until.Equal(tt.until) {
				t.Errorf("Until = %v, want %v", f.Until, tt.until)
			}
		})
	}
}

func TestFilterImages(t *testing.T) {
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	sums := []imagetypes.Summary{
		{ID: "sha256:aaaa1111", Created: base.Unix(), RepoTags: []string{"busybox:latest", "busybox:1.36", "example.com/tools:1"}, Labels: map[string]string{"tier": "base"}},
		{ID: "sha256:bbbb2222", Created: base.Add(-time.Hour).Unix(), RepoTags: []string{"alpine:3"}, RepoDigests: []string{"alpine@sha256:dd"}},
		{ID: "sha256:cccc3333", Created: base.Add(-2 * time.Hour).Unix(), Labels: map[string]string{"tier": "app"}},
	}
	now := base.Add(time.Minute)
	tests := []struct {
		name    string
		flags   []string
		want    []string // IDs, in order
		tags    map[string][]string
		wantErr error
	}{
		{name: "none", want: []string{"sha256:aaaa1111", "sha256:bbbb2222", "sha256:cccc3333"}},
		{name: "until duration keeps older", flags: []string{"until=30m"}, want: []string{"sha256:bbbb2222", "sha256:cccc3333"}},
		{name: "until exact time keeps equal", flags: []string{"until=" + base.Add(-time.Hour).Format(time.RFC3339)}, want: []string{"sha256:bbbb2222", "sha256:cccc3333"}},
		{name: "until unix", flags: []string{"until=" + strconv.FormatInt(base.Add(-90*time.Minute).Unix(), 10)}, want: []string{"sha256:cccc3333"}},
		{name: "dangling", flags: []string{"dangling=true"}, want: []string{"sha256:cccc3333"}},
		{name: "not dangling", flags: []string{"dangling=false"}, want: []string{"sha256:aaaa1111", "sha256:bbbb2222"}},
		{name: "label key", flags: []string{"label=tier"}, want: []string{"sha256:aaaa1111", "sha256:cccc3333"}},
		{name: "label value", flags: []string{"label=tier=app"}, want: []string{"sha256:cccc3333"}},
		{name: "before name", flags: []string{"before=busybox"}, want: []string{"sha256:bbbb2222", "sha256:cccc3333"}},
		{name: "since id", flags: []string{"since=cccc"}, want: []string{"sha256:aaaa1111", "sha256:bbbb2222"}},
		{name: "since unknown", flags: []string{"since=nosuch"}, wantErr: errdefs.ErrNotFound},
		{
			name: "reference keeps matching tags", flags: []string{"reference=busybox"},
			want: []string{"sha256:aaaa1111"}, tags: map[string][]string{"sha256:aaaa1111": {"busybox:latest", "busybox:1.36"}},
		},
		{
			name: "reference with tag", flags: []string{"reference=busybox:1.*"},
			want: []string{"sha256:aaaa1111"}, tags: map[string][]string{"sha256:aaaa1111": {"busybox:1.36"}},
		},
		{
			name: "reference with registry", flags: []string{"reference=example.com/*"},
			want: []string{"sha256:aaaa1111"}, tags: map[string][]string{"sha256:aaaa1111": {"example.com/tools:1"}},
		},
		{name: "combined", flags: []string{"until=30m", "dangling=false"}, want: []string{"sha256:bbbb2222"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseImageFilterFlags(tt.flags, now)
			if err != nil {
				t.Fatal(err)
			}
			in := slices.Clone(sums)
			got, err := FilterImages(in, f)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, s := range got {
				ids = append(ids, s.ID)
				if want, ok := tt.tags[s.ID]; ok && !slices.Equal(s.RepoTags, want) {
					t.Errorf("%s RepoTags = %v, want %v", s.ID, s.RepoTags, want)
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("IDs = %v, want %v", ids, tt.want)
			}
			if !slices.Equal(in[0].RepoTags, sums[0].RepoTags) {
				t.Errorf("FilterImages changed its input's tags: %v", in[0].RepoTags)
			}
		})
	}
}
