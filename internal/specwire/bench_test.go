package specwire

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// benchSpecs are the specs the benchmarks and the fresh-process timing
// decode, less the dropped fields so that both codecs do the same work.
var benchSpecs = []struct {
	name string
	spec func() *specs.Spec
}{
	{"runc-default", runcDefaultSpec},
	{"docker", dockerSpec},
}

func BenchmarkDecodeSpec(b *testing.B) {
	for _, bs := range benchSpecs {
		s := withoutDropped(bs.spec())
		wire := AppendSpec(nil, s)
		js, err := json.Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name+"/specwire", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				if _, _, err := DecodeSpec(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bs.name+"/json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(js)))
			for b.Loop() {
				var s specs.Spec
				if err := json.Unmarshal(js, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendSpec(b *testing.B) {
	for _, bs := range benchSpecs {
		s := bs.spec()
		b.Run(bs.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := AppendSpec(nil, s)
			for b.Loop() {
				buf = AppendSpec(buf[:0], s)
			}
		})
	}
}

// The number that matters is the first decode in a process that has never
// decoded anything: that is the container init's situation, and where
// encoding/json pays for building its per-type decoders by reflection.
// BenchmarkFreshProcessDecode re-executes this test binary, once per
// iteration, to run TestFreshProcessChild, which times one decode (and then
// a second, warm one) and prints the durations; the benchmark reports their
// medians as first-ns and warm-ns. A benchmark, not a test: timings are
// measured on request (go test -run '^$' -bench FreshProcess), never
// asserted in CI.
const (
	envFreshCodec   = "SPECWIRE_FRESH_CODEC"
	envFreshPayload = "SPECWIRE_FRESH_PAYLOAD"
	freshMarker     = "specwire-fresh:"
)

func TestFreshProcessChild(t *testing.T) {
	codec := os.Getenv(envFreshCodec)
	if codec == "" {
		t.Skip("run by BenchmarkFreshProcessDecode in a fresh process")
	}
	data, err := os.ReadFile(os.Getenv(envFreshPayload))
	if err != nil {
		t.Fatal(err)
	}
	decode := func() error {
		switch codec {
		case "json":
			var s specs.Spec
			return json.Unmarshal(data, &s)
		case "specwire":
			_, _, err := DecodeSpec(data)
			return err
		}
		return fmt.Errorf("unknown codec %q", codec)
	}
	var d [2]time.Duration
	for i := range d {
		start := time.Now()
		err := decode()
		d[i] = time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("%s %d %d\n", freshMarker, d[0].Nanoseconds(), d[1].Nanoseconds())
}

func BenchmarkFreshProcessDecode(b *testing.B) {
	dir := b.TempDir()
	for _, bs := range benchSpecs {
		s := withoutDropped(bs.spec())
		js, err := json.Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		payloads := map[string][]byte{"json": js, "specwire": AppendSpec(nil, s)}
		for _, codec := range []string{"json", "specwire"} {
			path := filepath.Join(dir, bs.name+"."+codec)
			if err := os.WriteFile(path, payloads[codec], 0o600); err != nil {
				b.Fatal(err)
			}
			b.Run(bs.name+"/"+codec, func(b *testing.B) {
				var first, warm []time.Duration
				for range b.N {
					cmd := exec.Command(os.Args[0], "-test.run=^TestFreshProcessChild$", "-test.count=1")
					cmd.Env = append(os.Environ(), envFreshCodec+"="+codec, envFreshPayload+"="+path)
					out, err := cmd.CombinedOutput()
					if err != nil {
						b.Fatalf("child: %v\n%s", err, out)
					}
					f, w, err := parseFresh(out)
					if err != nil {
						b.Fatalf("%v\n%s", err, out)
					}
					first, warm = append(first, f), append(warm, w)
				}
				b.ReportMetric(float64(median(first)), "first-ns")
				b.ReportMetric(float64(median(warm)), "warm-ns")
				b.ReportMetric(float64(len(payloads[codec])), "bytes")
			})
		}
	}
}

func parseFresh(out []byte) (first, warm time.Duration, err error) {
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != freshMarker {
			continue
		}
		a, err1 := strconv.ParseInt(f[1], 10, 64)
		b, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			break
		}
		return time.Duration(a), time.Duration(b), nil
	}
	return 0, 0, fmt.Errorf("no %q line in the child's output", freshMarker)
}

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	return s[len(s)/2]
}
