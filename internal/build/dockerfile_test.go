package build

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

func TestParseErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, dockerfile, want string
	}{
		{"unknown instruction", "FROM busybox\nRUN true\nFROBNICATE\n", "Dockerfile:3"},
		{"instruction before FROM", "RUN true\nFROM busybox\n", "Dockerfile:1"},
		{"bad flag", "FROM busybox\nCOPY --bogus=1 a b\n", "Dockerfile:2"},
		{"empty", "# only a comment\n", "no instructions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDockerfile("Dockerfile", []byte(tc.dockerfile))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("err %v is not ErrInvalidArgument", err)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	df := `ARG BASE=busybox
FROM ${BASE} AS base
FROM base AS a
RUN true
FROM busybox AS unused
RUN false
FROM scratch AS b
COPY --from=a /x /x
FROM busybox AS c
RUN --mount=type=bind,from=b,target=/b true
COPY --from=0 /y /y
`
	cases := []struct {
		target string
		need   []int
		err    bool
	}{
		{target: "", need: []int{0, 1, 3, 4}},
		{target: "a", need: []int{0, 1}},
		{target: "UNUSED", need: []int{2}},
		{target: "b", need: []int{0, 1, 3}},
		{target: "nope", err: true},
	}
	d, err := parseDockerfile("Dockerfile", []byte(df))
	if err != nil {
		t.Fatal(err)
	}
	meta := newEnvMap()
	meta.Set("BASE", "busybox")
	for _, tc := range cases {
		t.Run("target="+tc.target, func(t *testing.T) {
			need, _, bases, err := d.plan(tc.target, meta)
			if tc.err {
				if !errors.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("err = %v, want not found", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(need, tc.need) {
				t.Errorf("need = %v, want %v", need, tc.need)
			}
			if bases[0] != "busybox" {
				t.Errorf("FROM ${BASE} expanded to %q", bases[0])
			}
		})
	}
}

func TestExposedPorts(t *testing.T) {
	cases := []struct {
		in   []string
		want []string
		err  bool
	}{
		{in: []string{"80"}, want: []string{"80/tcp"}},
		{in: []string{"53/UDP", "8000-8002/tcp"}, want: []string{"53/udp", "8000/tcp", "8001/tcp", "8002/tcp"}},
		{in: []string{"$P"}, want: []string{"9000/tcp"}},
		{in: []string{"http"}, err: true},
		{in: []string{"80/icmp"}, err: true},
		{in: []string{"90-80"}, err: true},
	}
	env := newEnvMap()
	env.Set("P", "9000")
	for _, tc := range cases {
		t.Run(strings.Join(tc.in, ","), func(t *testing.T) {
			got, err := exposedPorts(tc.in, shell.NewLex('\\'), env)
			if tc.err != (err != nil) {
				t.Fatalf("err = %v", err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStepKey(t *testing.T) {
	// Length-prefixed parts: moving a boundary changes the key.
	keys := map[string]string{
		"ab|c": stepKey("p", "ab", "c"),
		"a|bc": stepKey("p", "a", "bc"),
		"abc":  stepKey("p", "abc"),
		"q":    stepKey("q", "ab", "c"),
	}
	seen := map[string]string{}
	for name, k := range keys {
		if other, ok := seen[k]; ok {
			t.Errorf("%s and %s share key %s", name, other, k)
		}
		seen[k] = name
	}
	if stepKey("p", "ab", "c") != keys["ab|c"] {
		t.Error("stepKey is not deterministic")
	}
}

func TestCheckPlatform(t *testing.T) {
	for _, p := range []string{"", HostPlatform(), strings.ToUpper(HostPlatform())} {
		if err := checkPlatform(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	if err := checkPlatform("linux/s390x"); !errors.Is(err, errdefs.ErrNotSupported) && HostPlatform() != "linux/s390x" {
		t.Errorf("linux/s390x: %v", err)
	}
}

func TestSetEnv(t *testing.T) {
	env := []string{"PATH=/bin", "A=1"}
	got := setEnv(env, "A", "2")
	got = setEnv(got, "B", "x=y")
	if want := []string{"PATH=/bin", "A=2", "B=x=y"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if env[1] != "A=1" {
		t.Error("setEnv modified its input")
	}
}
