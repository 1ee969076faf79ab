package specwire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// dropped lists the fields the codec leaves out on purpose, by path from
// Spec. TestEveryFieldRoundTrips fails for any other field it loses, so a
// runtime-spec upgrade that adds a field makes a decision necessary.
var dropped = map[string]bool{
	"Solaris":          true,
	"Windows":          true,
	"VM":               true,
	"ZOS":              true,
	"FreeBSD":          true,
	"Linux.Resources":  true,
	"Linux.NetDevices": true,
	"Linux.IntelRdt":   true,
}

// withoutDropped is what decoding s must give: s less the dropped fields.
func withoutDropped(s *specs.Spec) *specs.Spec {
	if s == nil {
		return nil
	}
	c := *s
	c.Solaris, c.Windows, c.VM, c.ZOS, c.FreeBSD = nil, nil, nil, nil, nil
	if s.Linux != nil {
		l := *s.Linux
		l.Resources, l.NetDevices, l.IntelRdt = nil, nil, nil
		c.Linux = &l
	}
	return &c
}

func roundTrip(t *testing.T, s *specs.Spec) {
	t.Helper()
	trailer := []byte("trailer")
	b := AppendSpec([]byte("head"), s)
	if !bytes.HasPrefix(b, []byte("head")) {
		t.Fatalf("AppendSpec clobbered the bytes it appends to")
	}
	got, rest, err := DecodeSpec(append(b[len("head"):], trailer...))
	if err != nil {
		t.Fatalf("DecodeSpec: %v", err)
	}
	if !bytes.Equal(rest, trailer) {
		t.Errorf("rest = %q, want %q", rest, trailer)
	}
	want := withoutDropped(s)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip differs:\n%s", strings.Join(diff("Spec", reflect.ValueOf(got), reflect.ValueOf(want)), "\n"))
	}
}

func TestRoundTrip(t *testing.T) {
	uid := uint32(1000)
	tests := []struct {
		name string
		spec *specs.Spec
	}{
		{"nil", nil},
		{"zero", &specs.Spec{}},
		{"runc default", runcDefaultSpec()},
		{"docker", dockerSpec()},
		{
			name: "empty is not nil",
			spec: &specs.Spec{
				Process: &specs.Process{
					ConsoleSize:  &specs.Box{},
					User:         specs.User{Umask: new(uint32), AdditionalGids: []uint32{}},
					Args:         []string{},
					Env:          []string{""},
					Capabilities: &specs.LinuxCapabilities{Bounding: []string{}, Ambient: []string{}},
					Rlimits:      []specs.POSIXRlimit{},
					OOMScoreAdj:  new(int),
					Scheduler:    &specs.Scheduler{Flags: []specs.LinuxSchedulerFlag{}},
					IOPriority:   &specs.LinuxIOPriority{},
				},
				Root:        &specs.Root{},
				Mounts:      []specs.Mount{{Options: []string{}, UIDMappings: []specs.LinuxIDMapping{}}},
				Hooks:       &specs.Hooks{Prestart: []specs.Hook{}, Poststop: []specs.Hook{{Args: []string{}, Timeout: new(int)}}},
				Annotations: map[string]string{},
				Linux: &specs.Linux{
					UIDMappings: []specs.LinuxIDMapping{},
					Sysctl:      map[string]string{"": ""},
					Namespaces:  []specs.LinuxNamespace{},
					Devices:     []specs.LinuxDevice{{FileMode: new(os.FileMode), UID: new(uint32)}},
					Seccomp: &specs.LinuxSeccomp{
						DefaultErrnoRet: new(uint),
						Architectures:   []specs.Arch{},
						Syscalls:        []specs.LinuxSyscall{{Names: []string{}, ErrnoRet: new(uint), Args: []specs.LinuxSeccompArg{}}},
					},
					MaskedPaths:  []string{},
					Personality:  &specs.LinuxPersonality{Flags: []specs.LinuxPersonalityFlag{}},
					TimeOffsets:  map[string]specs.LinuxTimeOffset{},
					MemoryPolicy: &specs.LinuxMemoryPolicy{},
				},
			},
		},
		{
			name: "extremes",
			spec: &specs.Spec{
				Process: &specs.Process{
					ConsoleSize: &specs.Box{Height: math.MaxUint, Width: 0},
					User:        specs.User{UID: math.MaxUint32, GID: uid, Umask: ptr(uint32(0o777))},
					Rlimits:     []specs.POSIXRlimit{{Type: "RLIMIT_CORE", Hard: math.MaxUint64, Soft: 0}},
					OOMScoreAdj: ptr(-1000),
					Scheduler:   &specs.Scheduler{Nice: math.MinInt32, Priority: math.MaxInt32, Runtime: math.MaxUint64},
					IOPriority:  &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE, Priority: math.MinInt},
				},
				Linux: &specs.Linux{
					Devices: []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: math.MinInt64, Minor: math.MaxInt64}},
					TimeOffsets: map[string]specs.LinuxTimeOffset{
						"monotonic": {Secs: math.MinInt64, Nanosecs: math.MaxUint32},
						"boottime":  {Secs: -1},
					},
					Seccomp: &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{{
						Names: []string{"ioctl"},
						Args:  []specs.LinuxSeccompArg{{Index: math.MaxUint, Value: math.MaxUint64, ValueTwo: math.MaxUint64, Op: specs.OpMaskedEqual}},
					}}},
				},
				Hostname: strings.Repeat("h", 300) + "\x00\xff日本",
			},
		},
		{
			name: "dropped sections",
			spec: &specs.Spec{
				Version: specs.Version,
				Windows: &specs.Windows{LayerFolders: []string{`C:\layers`}},
				Solaris: &specs.Solaris{Milestone: "x"},
				VM:      &specs.VM{},
				ZOS:     &specs.ZOS{},
				FreeBSD: &specs.FreeBSD{},
				Linux: &specs.Linux{
					Resources:  &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(10))}},
					NetDevices: map[string]specs.LinuxNetDevice{"eth1": {Name: "eth0"}},
					IntelRdt:   &specs.LinuxIntelRdt{ClosID: "c"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { roundTrip(t, tt.spec) })
	}
}

// TestEveryFieldRoundTrips fills every field of a Spec, whatever the
// runtime-spec version, and checks that all but the dropped ones survive.
func TestEveryFieldRoundTrips(t *testing.T) {
	s := &specs.Spec{}
	n := 0
	fill(t, reflect.ValueOf(s).Elem(), "", &n)
	roundTrip(t, s)

	// The dropped fields were filled too: the codec must leave them out
	// rather than fail on them.
	for p := range dropped {
		if !strings.Contains(p, ".") && reflect.ValueOf(s).Elem().FieldByName(p).IsNil() {
			t.Errorf("fill left %s nil", p)
		}
	}
}

// fill sets v, and everything reachable from it, to non-zero values: the
// extremes of each integer type, alternating, so that varint edges are
// crossed. Slices and maps get two elements.
func fill(t testing.TB, v reflect.Value, path string, n *int) {
	*n++
	k := *n
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s#%d", path, k))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		if k%2 == 0 {
			v.SetInt(-1<<(bits-1) + int64(k))
		} else {
			v.SetInt(1<<(bits-1) - 1 - int64(k))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if k%2 == 0 {
			v.SetUint(uint64(k))
		} else {
			v.SetUint(math.MaxUint64>>(64-v.Type().Bits()) - uint64(k))
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path, n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(t, v.Index(i), path, n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 2 {
			key := reflect.New(v.Type().Key()).Elem()
			fill(t, key, path+"[key]", n)
			val := reflect.New(v.Type().Elem()).Elem()
			fill(t, val, path, n)
			v.SetMapIndex(key, val)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			p := f.Name
			if path != "" {
				p = path + "." + f.Name
			}
			fill(t, v.Field(i), p, n)
		}
	case reflect.Interface:
		// Windows.CredentialSpec is the only one; any value will do.
		v.Set(reflect.ValueOf(path))
	default:
		t.Fatalf("fill %s: unhandled kind %s", path, v.Kind())
	}
}

// diff lists the paths at which got and want differ, to name the field a
// failed round trip lost.
func diff(path string, got, want reflect.Value) []string {
	if !got.IsValid() || !want.IsValid() {
		if got.IsValid() != want.IsValid() {
			return []string{path + ": one side missing"}
		}
		return nil
	}
	switch got.Kind() {
	case reflect.Pointer, reflect.Interface:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return []string{fmt.Sprintf("%s: nil=%v, want nil=%v", path, got.IsNil(), want.IsNil())}
			}
			return nil
		}
		return diff(path, got.Elem(), want.Elem())
	case reflect.Struct:
		var d []string
		for i := range got.NumField() {
			d = append(d, diff(path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i))...)
		}
		return d
	case reflect.Slice:
		if got.IsNil() != want.IsNil() || got.Len() != want.Len() {
			return []string{fmt.Sprintf("%s: len %d nil=%v, want len %d nil=%v", path, got.Len(), got.IsNil(), want.Len(), want.IsNil())}
		}
		var d []string
		for i := range got.Len() {
			d = append(d, diff(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i))...)
		}
		return d
	case reflect.Map:
		if got.IsNil() != want.IsNil() || got.Len() != want.Len() {
			return []string{fmt.Sprintf("%s: len %d nil=%v, want len %d nil=%v", path, got.Len(), got.IsNil(), want.Len(), want.IsNil())}
		}
		var d []string
		for _, k := range want.MapKeys() {
			d = append(d, diff(fmt.Sprintf("%s[%v]", path, k), got.MapIndex(k), want.MapIndex(k))...)
		}
		return d
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			return []string{fmt.Sprintf("%s: %v, want %v", path, got.Interface(), want.Interface())}
		}
		return nil
	}
}

func TestEncodingIsDeterministic(t *testing.T) {
	// Maps are written in key order, so equal specs give equal bytes.
	a := AppendSpec(nil, dockerSpec())
	for range 20 {
		if b := AppendSpec(nil, dockerSpec()); !bytes.Equal(a, b) {
			t.Fatal("two encodings of one spec differ")
		}
	}
}

func TestDecodeSpecTruncated(t *testing.T) {
	b := AppendSpec(nil, dockerSpec())
	// Every field is always written, so no strict prefix is a spec.
	for n := range len(b) {
		s, rest, err := DecodeSpec(b[:n])
		if !errors.Is(err, ErrTruncated) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("DecodeSpec(first %d of %d bytes): err = %v, want ErrTruncated", n, len(b), err)
		}
		if s != nil || rest != nil {
			t.Fatalf("DecodeSpec(first %d bytes) returned a value with its error", n)
		}
	}
}

func TestDecodeSpecMalformed(t *testing.T) {
	valid := AppendSpec(nil, &specs.Spec{Process: &specs.Process{User: specs.User{UID: 5}}})
	// valid is: version, spec present, "" Version, process present,
	// terminal, console-size absent, UID, ...
	const uidAt = 6
	if valid[uidAt] != 5 {
		t.Fatalf("layout changed: byte %d is %d, not the UID", uidAt, valid[uidAt])
	}
	with := func(at int, repl ...byte) []byte {
		b := append([]byte(nil), valid[:at]...)
		b = append(b, repl...)
		return append(b, valid[at+1:]...)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"json", []byte(`{"ociVersion":"1.3.0"}`), ErrMalformed},
		{"future version", with(0, formatVersion+1), ErrMalformed},
		{"bool not 0 or 1", with(1, 2), ErrMalformed},
		{"uid over 32 bits", with(uidAt, 0x80, 0x80, 0x80, 0x80, 0x10), ErrMalformed},
		{"varint over 64 bits", with(uidAt, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), ErrMalformed},
		{"varint never ends", with(uidAt, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80), ErrMalformed},
		{"count beyond input", []byte{formatVersion, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrTruncated},
		{"string beyond input", []byte{formatVersion, 1, 0x10, 'a'}, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, err := DecodeSpec(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if s != nil {
				t.Fatal("spec returned with an error")
			}
		})
	}
}

// TestDecodeBoundsAllocation: a count the input cannot hold is refused
// before anything is allocated for it.
func TestDecodeBoundsAllocation(t *testing.T) {
	// A spec whose mount count claims 2^28 mounts (~50 GiB of specs.Mount)
	// in a few bytes.
	in := []byte{formatVersion, 1, 0, 0, 0, 0, 0, 0x81, 0x80, 0x80, 0x80, 0x01}
	allocs := testing.AllocsPerRun(10, func() {
		if _, _, err := DecodeSpec(in); !errors.Is(err, ErrTruncated) {
			t.Fatalf("err = %v, want ErrTruncated", err)
		}
	})
	if allocs > 6 { // the Decoder, the input copy, the Spec, the error
		t.Errorf("%v allocations for a hostile count", allocs)
	}
}

func TestPrimitivesRoundTrip(t *testing.T) {
	type value struct {
		u    uint64
		i    int64
		b    bool
		s    string
		ss   []string
		spec bool
	}
	tests := []struct {
		name string
		v    value
	}{
		{"zero", value{}},
		{"small", value{u: 1, i: -1, b: true, s: "x", ss: []string{"a", ""}}},
		{"extremes", value{u: math.MaxUint64, i: math.MinInt64, s: strings.Repeat("é", 1000), ss: []string{}}},
		{"max int", value{u: 127, i: math.MaxInt64, ss: nil}},
		{"followed by a spec", value{u: 128, i: 64, s: "id", spec: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Encoder
			e.Uvarint(tt.v.u)
			e.Varint(tt.v.i)
			e.Bool(tt.v.b)
			e.String(tt.v.s)
			e.Strings(tt.v.ss)
			if tt.v.spec {
				e.Spec(runcDefaultSpec())
				e.Process(dockerSpec().Process)
			}
			d := NewDecoder(e.B)
			got := value{u: d.ReadUvarint(), i: d.ReadVarint(), b: d.ReadBool(), s: d.ReadString(), ss: d.ReadStrings(), spec: tt.v.spec}
			if tt.v.spec {
				if s := d.ReadSpec(); !reflect.DeepEqual(s, withoutDropped(runcDefaultSpec())) {
					t.Error("spec differs")
				}
				if p := d.ReadProcess(); !reflect.DeepEqual(p, dockerSpec().Process) {
					t.Error("process differs")
				}
			}
			if err := d.Err(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.v) {
				t.Errorf("got %+v, want %+v", got, tt.v)
			}
			if rest := d.Rest(); len(rest) != 0 {
				t.Errorf("%d bytes left over", len(rest))
			}
			// Every truncation fails, and leaves the Decoder inert.
			for n := range len(e.B) {
				d := NewDecoder(e.B[:n])
				d.ReadUvarint()
				d.ReadVarint()
				d.ReadBool()
				d.ReadString()
				d.ReadStrings()
				if tt.v.spec {
					d.ReadSpec()
					d.ReadProcess()
				}
				if !errors.Is(d.Err(), ErrTruncated) {
					t.Fatalf("first %d of %d bytes: err = %v, want ErrTruncated", n, len(e.B), d.Err())
				}
				if d.Rest() != nil {
					t.Fatalf("Rest after an error is not nil")
				}
			}
		})
	}
}
