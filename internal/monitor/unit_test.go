package monitor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain\n", `quote " backslash \`, "tab\tcr\r", "\x00\x1f ctrl",
		"<html>&amp;", "ünïcödé ✓", "bad \xff utf8", "line sep \u2028 \u2029",
	} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, []byte(s)); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestLineSplitter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   []string // log fields, in order
	}{
		{"lines", []string{"a\nb\n"}, []string{"a\n", "b\n"}},
		{"joined across writes", []string{"ab", "c\nd", "e\n"}, []string{"abc\n", "de\n"}},
		{"tail at EOF is partial", []string{"x\nno newline"}, []string{"x\n", "no newline"}},
		{"exactly 16 KiB with newline is cut", []string{strings.Repeat("a", maxLogLine) + "\n"},
			[]string{strings.Repeat("a", maxLogLine), "\n"}},
		{"just under fits", []string{strings.Repeat("a", maxLogLine-1) + "\n"},
			[]string{strings.Repeat("a", maxLogLine-1) + "\n"}},
		{"long line in pieces", []string{strings.Repeat("b", 10000), strings.Repeat("b", 10000) + "\n"},
			[]string{strings.Repeat("b", maxLogLine), strings.Repeat("b", 20000-maxLogLine) + "\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			l, err := openJSONLog(path, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			s := &lineSplitter{stream: "stdout", log: l}
			for _, w := range tc.writes {
				s.Write([]byte(w))
			}
			s.flush()
			l.close()
			got := logLines(t, path)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestJSONLogRotation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxFile int
		files   []string // that must exist
		absent  string
	}{
		{"max-file 1 truncates", 1, []string{"log"}, "log.1"},
		{"max-file 3 keeps two old files", 3, []string{"log", "log.1", "log.2"}, "log.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "log")
			l, err := openJSONLog(path, 500, tc.maxFile)
			if err != nil {
				t.Fatal(err)
			}
			for range 100 {
				if err := l.write("stdout", []byte("0123456789\n"), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			l.close()
			for _, f := range tc.files {
				fi, err := os.Stat(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() > 500+100 {
					t.Errorf("%s: %d bytes", f, fi.Size())
				}
			}
			if _, err := os.Stat(filepath.Join(dir, tc.absent)); err == nil {
				t.Errorf("%s exists", tc.absent)
			}
		})
	}
}

func TestRestartPolicy_Decisions(t *testing.T) {
	for _, tc := range []struct {
		spec        string
		code, count int
		userStopped bool
		want        bool
	}{
		{"no", 1, 0, false, false},
		{"always", 0, 5, false, true},
		{"always", 1, 0, true, false},
		{"unless-stopped", 0, 0, false, true},
		{"on-failure", 0, 0, false, false},
		{"on-failure", 3, 100, false, true},
		{"on-failure:2", 1, 1, false, true},
		{"on-failure:2", 1, 2, false, false},
	} {
		p, err := ParseRestartPolicy(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.shouldRestart(tc.code, tc.count, tc.userStopped); got != tc.want {
			t.Errorf("%s exit %d count %d stopped %v: restart %v, want %v", tc.spec, tc.code, tc.count, tc.userStopped, got, tc.want)
		}
	}
	for _, bad := range []string{"sometimes", "always:3", "on-failure:x", "on-failure:-1"} {
		if _, err := ParseRestartPolicy(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	var d time.Duration
	var got []time.Duration
	for range 4 {
		d = nextBackoff(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("back-off %v, want %v", got, want)
		}
	}
	if d := nextBackoff(800*time.Millisecond, 11*time.Second); d != backoffInitial {
		t.Errorf("after a long run: %v", d)
	}
	if d := nextBackoff(time.Minute, 0); d != time.Minute {
		t.Errorf("cap: %v", d)
	}
}

func TestHealthRecord(t *testing.T) {
	start := time.Now()
	ok := HealthResult{Start: start.Add(time.Minute), ExitCode: 0}
	fail := HealthResult{Start: start.Add(time.Minute), ExitCode: 1}
	early := HealthResult{Start: start.Add(time.Second), ExitCode: 1}
	for _, tc := range []struct {
		name       string
		results    []HealthResult
		wantStatus string
		wantStreak int
	}{
		{"success is healthy", []HealthResult{ok}, HealthHealthy, 0},
		{"failures below retries keep starting", []HealthResult{fail, fail}, HealthStarting, 2},
		{"retries failures are unhealthy", []HealthResult{fail, fail, fail}, HealthUnhealthy, 3},
		{"start period failures do not count", []HealthResult{early, early, early}, HealthStarting, 0},
		{"success resets the streak", []HealthResult{fail, fail, ok, fail}, HealthHealthy, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &HealthConfig{Test: []string{"CMD", "x"}, StartPeriod: 30 * time.Second}
			h := &Health{Status: HealthStarting}
			for _, r := range tc.results {
				hc.record(h, r, start)
			}
			if h.Status != tc.wantStatus || h.FailingStreak != tc.wantStreak {
				t.Errorf("status %s streak %d, want %s %d", h.Status, h.FailingStreak, tc.wantStatus, tc.wantStreak)
			}
		})
	}
	hc := &HealthConfig{Test: []string{"CMD", "x"}}
	h := &Health{Status: HealthStarting}
	for range 8 {
		hc.record(h, HealthResult{Output: strings.Repeat("o", 5000), ExitCode: 1}, start)
	}
	if len(h.Log) != maxHealthLog || len(h.Log[0].Output) != maxHealthOutput {
		t.Errorf("%d entries, output %d bytes", len(h.Log), len(h.Log[0].Output))
	}
}

// logEntry is one json-file line.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

func readLog(t *testing.T, path string) []logEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []logEntry
	dec := json.NewDecoder(strings.NewReader(string(data)))
	for dec.More() {
		var e logEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, e)
	}
	return out
}

func logLines(t *testing.T, path string) []string {
	var out []string
	for _, e := range readLog(t, path) {
		out = append(out, e.Log)
	}
	return out
}

func TestAppendStateMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		s    State
	}{
		{"zero", State{}},
		{"running", State{MonitorPid: 10, Pid: 11, Status: "running", StartedAt: at, RestartCount: 2}},
		{"exited", State{Status: "exited", StartedAt: at, FinishedAt: at.Add(time.Second), ExitCode: 137,
			OOMKilled: true, Error: `exec: "x" <not found>`, UserStopped: true}},
		{"health without log", State{Health: &Health{Status: HealthStarting}}},
		{"health", State{Health: &Health{Status: HealthUnhealthy, FailingStreak: 3, Log: []HealthResult{
			{Start: at, End: at.Add(time.Millisecond), ExitCode: -1, Output: "Health check exceeded timeout (1s)"},
			{Start: at, End: at, ExitCode: 1, Output: "bad\n\tstuff \u2028"},
		}}}},
		{"local time", State{StartedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendState(nil, &tc.s); string(got) != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestParseJSONObject(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		key      string
		want     jsonValue
		wantErr  bool
	}{
		{"string with escapes", `{"msg":"exec: \"x\": \u003cnot\u003e \ud83d\ude00\n"}`, "msg", jsonValue{str: "exec: \"x\": <not> 😀\n"}, false},
		{"number", `{ "height" : 42 , "op":"resize"}`, "height", jsonValue{num: 42, isNum: true}, false},
		{"big duration", `{"Interval":30000000000}`, "Interval", jsonValue{num: 3e10, isNum: true}, false},
		{"list", `{"Test":["CMD-SHELL","echo \"hi\""]}`, "Test", jsonValue{list: []string{"CMD-SHELL", `echo "hi"`}}, false},
		{"bool and null", `{"a":true,"b":null}`, "a", jsonValue{str: "true"}, false},
		{"runtime log line", `{"level":"error","msg":"boom","time":"2024-01-01T00:00:00Z"}` + "\n", "level", jsonValue{str: "error"}, false},
		{"truncated", `{"op":"sta`, "", jsonValue{}, true},
		{"nested object", `{"a":{"b":1}}`, "", jsonValue{}, true},
		{"not an object", `["a"]`, "", jsonValue{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseJSONObject([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			g := got[tc.key]
			if g.str != tc.want.str || g.num != tc.want.num || g.isNum != tc.want.isNum || strings.Join(g.list, "|") != strings.Join(tc.want.list, "|") {
				t.Errorf("%s = %+v, want %+v", tc.key, g, tc.want)
			}
		})
	}
}
