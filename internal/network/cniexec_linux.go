package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/errdefs"
	cnicreate "github.com/containernetworking/cni/pkg/types/create"
)

// The CNI executor: what libcni's AddNetworkList, DelNetworkList and
// result cache do, for the CNI specification's plugin protocol (config on
// stdin, CNI_* environment, result or error JSON on stdout). berth keeps
// libcni itself out of its binaries because libcni's plugin invoker links
// OpenTelemetry, whose package initialisation costs every berth process
// (even `run --network none`) about 1.7 ms. The cache files keep libcni's
// format (<cache>/results/<network>-<container>-<ifname>, kind cniCacheV1),
// so attachments an earlier berth made through libcni are torn down.

// cniList is a parsed network configuration list.
type cniList struct {
	CNIVersion string           `json:"cniVersion"`
	Name       string           `json:"name"`
	Plugins    []map[string]any `json:"plugins"`
	raw        []byte
}

func parseConfList(b []byte) (*cniList, error) {
	var l cniList
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("conflist: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if l.Name == "" || len(l.Plugins) == 0 {
		return nil, fmt.Errorf("conflist: no name or no plugins: %w", errdefs.ErrInvalidArgument)
	}
	for _, p := range l.Plugins {
		if t, _ := p["type"].(string); t == "" || strings.ContainsAny(t, "/\\") {
			return nil, fmt.Errorf("conflist %s: plugin type %q: %w", l.Name, p["type"], errdefs.ErrInvalidArgument)
		}
	}
	l.raw = b
	return &l, nil
}

// cniRuntime is libcni's RuntimeConf: who is attached, and the runtime's
// arguments and capability arguments.
type cniRuntime struct {
	ContainerID, NetNS, IfName string
	Args                       [][2]string
	CapabilityArgs             map[string]any
}

// cniCached is libcni's cache record (cachedInfo), field for field.
type cniCached struct {
	Kind           string         `json:"kind"`
	ContainerID    string         `json:"containerId"`
	Config         []byte         `json:"config"`
	IfName         string         `json:"ifName"`
	Network        string         `json:"networkName"`
	NetNS          string         `json:"netns,omitempty"`
	CniArgs        [][2]string    `json:"cniArgs,omitempty"`
	CapabilityArgs map[string]any `json:"capabilityArgs,omitempty"`
	Result         map[string]any `json:"result,omitempty"`
}

const cniCacheKind = "cniCacheV1"

func (s *Store) cniCachePath(network, containerID, ifName string) string {
	return filepath.Join(s.cacheDir(), "results", network+"-"+containerID+"-"+ifName)
}

// cniAdd runs ADD of every plugin in order, each given the previous one's
// result, caches the last result and returns it (in the list's version).
func (s *Store) cniAdd(ctx context.Context, l *cniList, rt *cniRuntime) ([]byte, error) {
	var prev json.RawMessage
	for _, p := range l.Plugins {
		out, err := s.execPlugin(ctx, "ADD", l, p, prev, rt)
		if err != nil {
			return nil, err
		}
		prev = out
	}
	c := cniCached{
		Kind: cniCacheKind, ContainerID: rt.ContainerID, Config: l.raw, IfName: rt.IfName,
		Network: l.Name, NetNS: rt.NetNS, CniArgs: rt.Args, CapabilityArgs: rt.CapabilityArgs,
	}
	if err := json.Unmarshal(prev, &c.Result); err != nil {
		return nil, fmt.Errorf("network %s: result of the last plugin: %w", l.Name, err)
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	p := s.cniCachePath(l.Name, rt.ContainerID, rt.IfName)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(p, b, 0o600); err != nil {
		return nil, fmt.Errorf("network %s: cache result: %w", l.Name, err)
	}
	return prev, nil
}

// cniDel runs DEL of every plugin in reverse order with the cached result
// as prevResult (CNI 0.4.0 and later), then drops the cache entry.
func (s *Store) cniDel(ctx context.Context, l *cniList, rt *cniRuntime) error {
	p := s.cniCachePath(l.Name, rt.ContainerID, rt.IfName)
	var prev json.RawMessage
	if !strings.HasPrefix(l.CNIVersion, "0.1.") && !strings.HasPrefix(l.CNIVersion, "0.2.") && !strings.HasPrefix(l.CNIVersion, "0.3.") {
		if b, err := os.ReadFile(p); err == nil {
			var c cniCached
			if json.Unmarshal(b, &c) == nil && c.Result != nil {
				prev, _ = json.Marshal(c.Result)
			}
		}
	}
	for i := len(l.Plugins) - 1; i >= 0; i-- {
		if _, err := s.execPlugin(ctx, "DEL", l, l.Plugins[i], prev, rt); err != nil {
			return err
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// execPlugin runs one plugin: its configuration with the list's name and
// version, prevResult and the runtimeConfig entries of the capabilities
// it declares, on stdin.
func (s *Store) execPlugin(ctx context.Context, command string, l *cniList, plugin map[string]any, prev json.RawMessage, rt *cniRuntime) ([]byte, error) {
	typ, _ := plugin["type"].(string)
	conf := make(map[string]any, len(plugin)+4)
	for k, v := range plugin {
		conf[k] = v
	}
	conf["name"], conf["cniVersion"] = l.Name, l.CNIVersion
	if prev != nil {
		conf["prevResult"] = prev
	}
	if caps, ok := plugin["capabilities"].(map[string]any); ok {
		rc := map[string]any{}
		for c, on := range caps {
			if b, _ := on.(bool); b {
				if v, ok := rt.CapabilityArgs[c]; ok {
					rc[c] = v
				}
			}
		}
		if len(rc) > 0 {
			conf["runtimeConfig"] = rc
		}
	}
	// Static addresses for a plugin that does not take the "ips"
	// capability: CNI_ARGS has room for one, so two (IPv4 and IPv6) go
	// where the CNI conventions put runtime-provided arguments,
	// args.cni.ips, which host-local reads (a plugin that does not know
	// it ignores it).
	if ips, ok := rt.CapabilityArgs["ips"].([]string); ok && len(ips) > 1 && command == "ADD" {
		rc, _ := conf["runtimeConfig"].(map[string]any)
		if _, declared := rc["ips"]; !declared {
			args, _ := conf["args"].(map[string]any)
			merged := make(map[string]any, len(args)+1)
			for k, v := range args {
				merged[k] = v
			}
			cni, _ := merged["cni"].(map[string]any)
			mc := make(map[string]any, len(cni)+1)
			for k, v := range cni {
				mc[k] = v
			}
			mc["ips"] = ips
			merged["cni"] = mc
			conf["args"] = merged
		}
	}
	stdin, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	bin := ""
	for _, d := range s.opts.CNIPath {
		if st, err := os.Stat(filepath.Join(d, typ)); err == nil && st.Mode().IsRegular() {
			bin = filepath.Join(d, typ)
			break
		}
	}
	if bin == "" {
		return nil, fmt.Errorf("network %s: CNI plugin %q not found in %s: %w", l.Name, typ, strings.Join(s.opts.CNIPath, ":"), errdefs.ErrNotFound)
	}
	var args []string
	for _, a := range rt.Args {
		args = append(args, a[0]+"="+a[1])
	}
	cmd := exec.CommandContext(ctx, bin)
	env := make([]string, 0, len(os.Environ())+6)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "CNI_") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env,
		"CNI_COMMAND="+command, "CNI_CONTAINERID="+rt.ContainerID, "CNI_NETNS="+rt.NetNS,
		"CNI_IFNAME="+rt.IfName, "CNI_ARGS="+strings.Join(args, ";"), "CNI_PATH="+strings.Join(s.opts.CNIPath, ":"))
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var perr struct {
			Code    int    `json:"code"`
			Msg     string `json:"msg"`
			Details string `json:"details"`
		}
		msg := strings.TrimSpace(stderr.String())
		if json.Unmarshal(stdout.Bytes(), &perr) == nil && perr.Msg != "" {
			msg = perr.Msg
			if perr.Details != "" {
				msg += "; " + perr.Details
			}
		}
		return nil, fmt.Errorf("network %s: plugin type=%q failed (%s): %s: %w", l.Name, typ, strings.ToLower(command), msg, err)
	}
	if command != "ADD" {
		return nil, nil
	}
	// The result must parse in the version the plugin claims.
	if _, err := cnicreate.CreateFromBytes(stdout.Bytes()); err != nil {
		return nil, fmt.Errorf("network %s: plugin type=%q: result: %w", l.Name, typ, err)
	}
	return stdout.Bytes(), nil
}

// cniCachedAttachments lists the cache records of containerID (every
// container's for "").
func (s *Store) cniCachedAttachments(containerID string) ([]*cniCached, error) {
	dir := filepath.Join(s.cacheDir(), "results")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cni cache: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if containerID == "" || strings.Contains(e.Name(), "-"+containerID+"-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []*cniCached
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		var c cniCached
		if json.Unmarshal(b, &c) != nil || c.Kind != cniCacheKind || c.IfName == "" || c.Network == "" {
			continue
		}
		if containerID != "" && c.ContainerID != containerID {
			continue
		}
		out = append(out, &c)
	}
	return out, nil
}
