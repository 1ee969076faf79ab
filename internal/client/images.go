package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/imagearchive"
	berthregistry "github.com/berth-dev/berth/internal/registry"
	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	volumetypes "github.com/moby/moby/api/types/volume"
)

func ipath(ref, action string) string {
	p := "/images/" + ref
	if action != "" {
		p += "/" + action
	}
	return p
}

// readProgress consumes a JSON progress stream: progress goes to events,
// statuses to status, the aux result into aux; an error message ends it.
func readProgress(r io.Reader, events func(enginetypes.Event), status func(string), aux any) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("progress stream: %w", err)
		}
		switch {
		case m.Error != nil:
			return statusError(m.Error.Code, m.Error.Message)
		case m.Aux != nil && aux != nil:
			if err := json.Unmarshal(*m.Aux, aux); err != nil {
				return fmt.Errorf("progress stream result: %w", err)
			}
		case m.ID != "" && events != nil:
			ev := enginetypes.Event{ID: m.ID, Status: m.Status}
			if m.Progress != nil {
				ev.Current, ev.Total = m.Progress.Current, m.Progress.Total
			}
			events(ev)
		case m.Status != "" && status != nil:
			status(m.Status)
		}
	}
}

// Pull fetches an image into the daemon's store.
func (c *Client) Pull(ctx context.Context, ref string, o enginetypes.PullOptions) (enginetypes.PullResult, error) {
	// Always with a tag (or digest): fromImage without one asks the
	// daemon for every tag of the repository (PullAllTags).
	name, err := berthregistry.Normalize(ref)
	if err != nil {
		return enginetypes.PullResult{}, err
	}
	return c.pull(ctx, name, o, false)
}

// PullAllTags is `pull -a` through the daemon: fromImage is the bare
// repository. The daemon's lines between the tags come to o.Events as
// events without ID.
func (c *Client) PullAllTags(ctx context.Context, repo string, o enginetypes.PullOptions) (enginetypes.PullResult, error) {
	name, err := berthregistry.Repository(repo)
	if err != nil {
		return enginetypes.PullResult{}, err
	}
	return c.pull(ctx, name, o, true)
}

// pull reads the daemon's progress; lines is whether its lines without a
// layer ID (but its closing status) go to o.Events too.
func (c *Client) pull(ctx context.Context, ref string, o enginetypes.PullOptions, lines bool) (enginetypes.PullResult, error) {
	q := url.Values{"fromImage": {ref}}
	if o.Platform != "" {
		q.Set("platform", o.Platform)
	}
	h, err := authHeader(ctx, ref)
	if err != nil {
		return enginetypes.PullResult{}, err
	}
	resp, err := c.doHeader(ctx, http.MethodPost, "/images/create", q, nil, "", h)
	if err != nil {
		return enginetypes.PullResult{}, err
	}
	defer resp.Body.Close()
	var res enginetypes.PullResult
	var status func(string)
	if lines && o.Events != nil {
		status = func(s string) {
			// The daemon's closing lines are the CLI's to print.
			if !strings.HasPrefix(s, "Status: ") {
				o.Events(enginetypes.Event{Status: s})
			}
		}
	}
	if err := readProgress(resp.Body, o.Events, status, &res); err != nil {
		return res, err
	}
	if res.Name == "" {
		return res, fmt.Errorf("pull %s: the daemon sent no result", ref)
	}
	return res, nil
}

// Push uploads an image from the daemon's store.
func (c *Client) Push(ctx context.Context, ref string, events func(enginetypes.Event)) (enginetypes.PushResult, error) {
	// Always with a tag: a bare repository asks the daemon to push every
	// tag (PushAllTags).
	ref, err := berthregistry.Normalize(ref)
	if err != nil {
		return enginetypes.PushResult{}, err
	}
	h, err := authHeader(ctx, ref)
	if err != nil {
		return enginetypes.PushResult{}, err
	}
	resp, err := c.doHeader(ctx, http.MethodPost, ipath(ref, "push"), nil, nil, "", h)
	if err != nil {
		return enginetypes.PushResult{}, err
	}
	defer resp.Body.Close()
	var res enginetypes.PushResult
	return res, readProgress(resp.Body, events, nil, &res)
}

// PushAllTags is `push -a` through the daemon: the bare repository. The
// daemon's "<tag>: digest: …" lines come to events as events without ID.
func (c *Client) PushAllTags(ctx context.Context, repo string, events func(enginetypes.Event)) ([]enginetypes.PushResult, error) {
	name, err := berthregistry.Repository(repo)
	if err != nil {
		return nil, err
	}
	h, err := authHeader(ctx, name)
	if err != nil {
		return nil, err
	}
	resp, err := c.doHeader(ctx, http.MethodPost, ipath(name, "push"), nil, nil, "", h)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var status func(string)
	if events != nil {
		status = func(s string) {
			// The CLI prints the repository line itself.
			if !strings.HasPrefix(s, "The push refers to repository") {
				events(enginetypes.Event{Status: s})
			}
		}
	}
	var res []enginetypes.PushResult
	return res, readProgress(resp.Body, events, status, &res)
}

// Login works as Docker's CLI does with a daemon: the daemon checks the
// credentials against the registry (POST /auth) and keeps nothing, and we
// store what it accepted in our own config.json ($DOCKER_CONFIG, else
// ~/.docker; internal/registry's StoreLogin) — the identity token /auth returns for a token
// registry in place of the password — where `logout` finds them and from
// where pulls, pushes and builds send them along (X-Registry-Auth,
// X-Registry-Config).
func (c *Client) Login(ctx context.Context, server, user, password string) error {
	var resp registry.AuthResponse
	if err := c.doJSON(ctx, http.MethodPost, "/auth", nil, registry.AuthConfig{ServerAddress: server, Username: user, Password: password}, &resp); err != nil {
		return err
	}
	if err := berthregistry.New(berthregistry.Options{}).StoreLogin(server, user, password, resp.IdentityToken); err != nil {
		return fmt.Errorf("the daemon accepted the login, but storing it here failed: %w", err)
	}
	return nil
}

// Logout is client-side, as in Docker: it forgets the credentials in our
// config.json; the daemon is not involved.
func (c *Client) Logout(server string) error {
	return berthregistry.New(berthregistry.Options{}).Logout(server)
}

// Images lists stored images.
func (c *Client) Images(ctx context.Context) ([]imagetypes.Summary, error) {
	var out []imagetypes.Summary
	return out, c.doJSON(ctx, http.MethodGet, "/images/json", nil, nil, &out)
}

// ImageInspect is `inspect` of an image.
func (c *Client) ImageInspect(ctx context.Context, ref string) (imagetypes.InspectResponse, error) {
	var out imagetypes.InspectResponse
	return out, c.doJSON(ctx, http.MethodGet, ipath(ref, "json"), nil, nil, &out)
}

// History lists an image's layers' history.
func (c *Client) History(ctx context.Context, ref string) ([]imagetypes.HistoryResponseItem, error) {
	var out []imagetypes.HistoryResponseItem
	return out, c.doJSON(ctx, http.MethodGet, ipath(ref, "history"), nil, nil, &out)
}

// Tag names an image.
func (c *Client) Tag(ctx context.Context, src, target string) error {
	return c.doJSON(ctx, http.MethodPost, ipath(src, "tag"), url.Values{"repo": {target}}, nil, nil)
}

func deleteItems(in []imagetypes.DeleteResponse) []image.DeleteItem {
	out := make([]image.DeleteItem, 0, len(in))
	for _, d := range in {
		out = append(out, image.DeleteItem{Untagged: d.Untagged, Deleted: d.Deleted})
	}
	return out
}

// RemoveImage untags (and deletes when unreferenced) an image.
func (c *Client) RemoveImage(ctx context.Context, ref string, force bool) ([]image.DeleteItem, error) {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	var out []imagetypes.DeleteResponse
	if err := c.doJSON(ctx, http.MethodDelete, ipath(ref, ""), q, nil, &out); err != nil {
		return nil, err
	}
	return deleteItems(out), nil
}

// PruneImages is POST /images/prune with the filters (see engine.PruneImages).
func (c *Client) PruneImages(ctx context.Context, filters map[string][]string) ([]image.DeleteItem, int64, error) {
	q := url.Values{}
	if len(filters) > 0 {
		q.Set("filters", filtersParam(filters))
	}
	var rep imagetypes.PruneReport
	if err := c.doJSON(ctx, http.MethodPost, "/images/prune", q, nil, &rep); err != nil {
		return nil, 0, err
	}
	return deleteItems(rep.ImagesDeleted), int64(rep.SpaceReclaimed), nil
}

// Save writes images as an archive.
func (c *Client) Save(ctx context.Context, w io.Writer, refs []string, format imagearchive.Format) error {
	q := url.Values{"names": refs}
	if format == imagearchive.OCIArchive {
		q.Set("format", "oci")
	}
	resp, err := c.do(ctx, http.MethodGet, "/images/get", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// Load reads an image archive into the daemon's store.
func (c *Client) Load(ctx context.Context, r io.Reader, events func(enginetypes.Event)) ([]string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/images/load", nil, r, "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var names []string
	return names, readProgress(resp.Body, events, nil, &names)
}

// Import makes a one-layer image from a rootfs tarball.
func (c *Client) Import(ctx context.Context, r io.Reader, ref string, o imagearchive.ImportOptions) (string, error) {
	q := url.Values{"fromSrc": {"-"}}
	if ref != "" {
		q.Set("repo", ref)
	}
	if o.Message != "" {
		q.Set("message", o.Message)
	}
	for _, ch := range o.Changes {
		q.Add("changes", ch)
	}
	if o.Platform.OS != "" {
		p := o.Platform.OS + "/" + o.Platform.Architecture
		if o.Platform.Variant != "" {
			p += "/" + o.Platform.Variant
		}
		q.Set("platform", p)
	}
	resp, err := c.do(ctx, http.MethodPost, "/images/create", q, r, "application/x-tar")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var id string
	err = readProgress(resp.Body, nil, func(s string) {
		if strings.HasPrefix(s, "sha256:") {
			id = s
		}
	}, nil)
	return id, err
}

// DiskUsage is `system df`'s data.
func (c *Client) DiskUsage(ctx context.Context) (enginetypes.DiskUsage, error) {
	var du system.DiskUsage
	if err := c.doJSON(ctx, http.MethodGet, "/system/df", nil, nil, &du); err != nil {
		return enginetypes.DiskUsage{}, err
	}
	var out enginetypes.DiskUsage
	if du.ImageUsage != nil {
		out.Images = *du.ImageUsage
	}
	cu := du.ContainerUsage
	if cu == nil {
		cu = &container.DiskUsage{}
	}
	out.ContainersSize = cu.TotalSize
	for _, s := range cu.Items {
		ctr := &enginetypes.Container{ID: s.ID, ImageRef: s.Image, ImageID: s.ImageID}
		if len(s.Names) > 0 {
			ctr.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		out.Containers = append(out.Containers, ctr)
	}
	return out, nil
}

// VolumeCreate creates a named volume.
func (c *Client) VolumeCreate(ctx context.Context, o volumetypes.CreateRequest) (volumetypes.Volume, error) {
	var v volumetypes.Volume
	return v, c.doJSON(ctx, http.MethodPost, "/volumes/create", nil, o, &v)
}

// VolumeInspect describes a volume.
func (c *Client) VolumeInspect(ctx context.Context, name string) (volumetypes.Volume, error) {
	var v volumetypes.Volume
	return v, c.doJSON(ctx, http.MethodGet, "/volumes/"+url.PathEscape(name), nil, nil, &v)
}

// VolumeList lists volumes.
func (c *Client) VolumeList(ctx context.Context) ([]volumetypes.Volume, error) {
	var l volumetypes.ListResponse
	return l.Volumes, c.doJSON(ctx, http.MethodGet, "/volumes", nil, nil, &l)
}

// VolumeRemove deletes a volume.
func (c *Client) VolumeRemove(ctx context.Context, name string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.doJSON(ctx, http.MethodDelete, "/volumes/"+url.PathEscape(name), q, nil, nil)
}

// VolumePrune removes unused volumes (anonymous ones unless all).
func (c *Client) VolumePrune(ctx context.Context, all bool, labels, notLabels []string) ([]string, uint64, error) {
	f := map[string][]string{}
	if all {
		f["all"] = []string{"true"}
	}
	if len(labels) > 0 {
		f["label"] = labels
	}
	if len(notLabels) > 0 {
		f["label!"] = notLabels
	}
	q := url.Values{}
	if len(f) > 0 {
		q.Set("filters", filtersParam(f))
	}
	var rep volumetypes.PruneReport
	if err := c.doJSON(ctx, http.MethodPost, "/volumes/prune", q, nil, &rep); err != nil {
		return nil, 0, err
	}
	return rep.VolumesDeleted, rep.SpaceReclaimed, nil
}
