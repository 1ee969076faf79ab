package cli

import (
	"bufio"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// createFlags are the flags `create` and `run` share.
type createFlags struct {
	name, workdir, user, hostname, entrypoint, pull, platform string
	env, envFile, labels                                      []string
	tty, interactive, readOnly                                bool
	entrypointSet                                             bool
}

func (f *createFlags) register(fl *pflag.FlagSet) {
	// -h is --hostname here, as in Docker; help is --help only.
	fl.Bool("help", false, "print usage")
	fl.StringVar(&f.name, "name", "", "assign a name to the container")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fl.StringVar(&f.pull, "pull", "missing", `pull image before running ("always", "missing", "never")`)
	fl.StringVar(&f.platform, "platform", "", "set platform if server is multi-platform capable")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fl.StringArrayVar(&f.envFile, "env-file", nil, "read in a file of environment variables")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set meta data on a container")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
}

// options turns flags and positional args (IMAGE [COMMAND] [ARG...]) into a create request.
func (f *createFlags) options(cmd *cobra.Command, args []string) (engine.CreateOptions, error) {
	o := engine.CreateOptions{Name: f.name}
	cfg := &o.Config
	cfg.Image = args[0]
	if len(args) > 1 {
		cfg.Cmd = args[1:]
	}
	if cmd.Flags().Changed("entrypoint") {
		cfg.Entrypoint = []string{f.entrypoint}
	}
	cfg.WorkingDir, cfg.User, cfg.Hostname = f.workdir, f.user, f.hostname
	cfg.Tty, cfg.OpenStdin, cfg.AttachStdin = f.tty, f.interactive, f.interactive
	cfg.AttachStdout, cfg.AttachStderr = true, true
	for _, file := range f.envFile {
		vars, err := readEnvFile(file)
		if err != nil {
			return o, err
		}
		cfg.Env = append(cfg.Env, vars...)
	}
	for _, kv := range f.env {
		cfg.Env = append(cfg.Env, expandEnv(kv)...)
	}
	cfg.Labels = map[string]string{}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	o.HostConfig = container.HostConfig{ReadonlyRootfs: f.readOnly}
	return o, nil
}

// expandEnv handles `-e NAME` (take the value from our environment; unset
// means skip, as in Docker).
func expandEnv(kv string) []string {
	if strings.Contains(kv, "=") {
		return []string{kv}
	}
	if v, ok := os.LookupEnv(kv); ok {
		return []string{kv + "=" + v}
	}
	return nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, expandEnv(line)...)
	}
	return out, sc.Err()
}
