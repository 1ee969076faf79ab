package imagearchive

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ApplyChanges applies `docker import --change` and `docker commit
// --change` instructions to cfg. Only the instructions that change image
// metadata are accepted, in the forms a Dockerfile allows for them.
func ApplyChanges(cfg *ocispec.ImageConfig, changes []string) error {
	for _, change := range changes {
		if err := applyChange(cfg, change); err != nil {
			return fmt.Errorf("change %q: %w", change, err)
		}
	}
	return nil
}

func applyChange(cfg *ocispec.ImageConfig, change string) error {
	change = strings.TrimSpace(change)
	instr, rest, _ := strings.Cut(change, " ")
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return fmt.Errorf("%w: missing arguments", errdefs.ErrInvalidArgument)
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		cfg.Cmd = commandForm(rest)
	case "ENTRYPOINT":
		cfg.Entrypoint = commandForm(rest)
	case "ENV":
		kvs, err := keyValues(rest)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		kvs, err := keyValues(rest)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range kvs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		ports, err := words(rest)
		if err != nil {
			return err
		}
		for _, p := range ports {
			key, err := exposedPort(p)
			if err != nil {
				return err
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			cfg.ExposedPorts[key] = struct{}{}
		}
	case "USER":
		cfg.User = rest
	case "VOLUME":
		vols, ok := jsonArray(rest)
		if !ok {
			var err error
			if vols, err = words(rest); err != nil {
				return err
			}
		}
		for _, v := range vols {
			if v == "" {
				return fmt.Errorf("%w: empty volume path", errdefs.ErrInvalidArgument)
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "WORKDIR":
		// A relative WORKDIR continues from the previous one, as in a
		// Dockerfile.
		dir := rest
		if !path.IsAbs(dir) {
			dir = path.Join("/", cfg.WorkingDir, dir)
		}
		cfg.WorkingDir = path.Clean(dir)
	default:
		return fmt.Errorf("%w: %s is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR are)", errdefs.ErrInvalidArgument, instr)
	}
	return nil
}

// commandForm returns the exec form of CMD/ENTRYPOINT: a JSON array as
// given, anything else run by /bin/sh -c (the shell form).
func commandForm(s string) []string {
	if args, ok := jsonArray(s); ok {
		return args
	}
	return []string{"/bin/sh", "-c", s}
}

func jsonArray(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil {
		return nil, false
	}
	return args, true
}

// keyValues parses `k=v k2="v 2"`, or the legacy one-pair form `k v w`
// (value is the rest of the line).
func keyValues(s string) ([][2]string, error) {
	first, _, _ := strings.Cut(s, " ")
	if !strings.Contains(first, "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	ws, err := words(s)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, w := range ws {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %q is not key=value", errdefs.ErrInvalidArgument, w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// words splits on unquoted spaces; double and single quotes group and are
// removed, a backslash escapes the next character (outside single quotes).
func words(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	var quote rune
	inWord, escaped := false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, fmt.Errorf("%w: unterminated quote or escape", errdefs.ErrInvalidArgument)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// exposedPort normalizes "80" to "80/tcp" and checks "53/udp".
func exposedPort(p string) (string, error) {
	num, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
		return "", fmt.Errorf("%w: invalid port %q", errdefs.ErrInvalidArgument, p)
	}
	return fmt.Sprintf("%d/%s", n, proto), nil
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
