package image

import (
	"context"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestViews(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b := sharing(t)
	f := newFetcher(a, b)
	imgA, imgB := fetch(t, s, f, a), fetch(t, s, f, b)
	if err := s.Tag(ctx, "localhost:5000/a:1", imgA); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "b", imgB); err != nil {
		t.Fatal(err)
	}
	imgA, _ = s.Get(ctx, "localhost:5000/a:1")
	imgB, _ = s.Get(ctx, "b")
	r, _ := s.load()
	layerA := []int64{r.Layers[a.chain[0]], r.Layers[a.chain[1]]}
	if layerA[0] <= 0 || layerA[1] <= 0 {
		t.Fatalf("layer sizes not recorded: %v", r.Layers)
	}

	in, err := s.Inspect(ctx, imgA)
	if err != nil {
		t.Fatal(err)
	}
	var diffIDs []string
	for _, d := range a.diffIDs {
		diffIDs = append(diffIDs, d.String())
	}
	switch {
	case in.ID != a.config.String():
		t.Errorf("Id = %s", in.ID)
	case !slices.Equal(in.RepoTags, []string{"localhost:5000/a:1"}):
		t.Errorf("RepoTags = %v", in.RepoTags)
	case in.RootFS.Type != "layers" || !slices.Equal(in.RootFS.Layers, diffIDs):
		t.Errorf("RootFS = %+v", in.RootFS)
	case in.Os != "linux" || in.Architecture != "amd64" || in.Created != "2024-05-01T12:00:00Z":
		t.Errorf("Os %q Architecture %q Created %q", in.Os, in.Architecture, in.Created)
	case in.Config == nil || !slices.Equal(in.Config.Cmd, []string{"/bin/sh"}) || in.Config.Labels["test"] != "a":
		t.Errorf("Config = %+v", in.Config)
	case in.Size != layerA[0]+layerA[1]:
		t.Errorf("Size = %d, want %d", in.Size, layerA[0]+layerA[1])
	case in.Metadata.LastTagTime.IsZero():
		t.Error("LastTagTime not set")
	}

	sum, err := s.Summary(ctx, imgB)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Containers != -1 || !slices.Equal(sum.RepoTags, []string{"b:latest"}) || sum.Size <= 0 || sum.Created != 1714564800 {
		t.Errorf("Summary = %+v", sum)
	}

	h, err := s.History(ctx, imgA)
	if err != nil {
		t.Fatal(err)
	}
	// Newest first: layer 1, the empty ENV step, layer 0.
	if len(h) != 3 {
		t.Fatalf("history = %+v", h)
	}
	for i, want := range []struct {
		id, by string
		size   int64
	}{{a.config.String(), "a layer 1", layerA[1]}, {"<missing>", "a env", 0}, {"<missing>", "a layer 0", layerA[0]}} {
		if h[i].ID != want.id || h[i].CreatedBy != want.by || h[i].Size != want.size {
			t.Errorf("history[%d] = %+v, want %+v", i, h[i], want)
		}
	}
	if !slices.Equal(h[0].Tags, []string{"localhost:5000/a:1"}) {
		t.Errorf("history tags = %v", h[0].Tags)
	}

	// system df: b is used by a container; the base layer is shared.
	du, err := s.Usage(ctx, func(id digest.Digest) int64 {
		if id == imgB.ID {
			return 1
		}
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	layerB1 := r.Layers[b.chain[1]]
	total := layerA[0] + layerA[1] + layerB1
	if du.TotalCount != 2 || du.ActiveCount != 1 || du.TotalSize != total || du.Reclaimable != layerA[1] {
		t.Errorf("usage = count %d active %d size %d reclaimable %d; want 2 1 %d %d",
			du.TotalCount, du.ActiveCount, du.TotalSize, du.Reclaimable, total, layerA[1])
	}
	for _, it := range du.Items {
		if it.SharedSize != layerA[0] {
			t.Errorf("%s shared size = %d, want %d", it.ID, it.SharedSize, layerA[0])
		}
	}
}
