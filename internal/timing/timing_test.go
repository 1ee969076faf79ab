package timing

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestMark checks the line format bench/lib/stages.py parses:
// "[<ms>ms +<ms>ms pid N] who: stage", and that nothing is printed when off.
func TestMark(t *testing.T) {
	capture := func(on bool) string {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		saved, savedOn := os.Stderr, On
		os.Stderr, On = w, on
		Mark("image", "fetch: start")
		os.Stderr, On = saved, savedOn
		w.Close()
		b := make([]byte, 512)
		n, _ := r.Read(b)
		r.Close()
		return string(b[:max(n, 0)])
	}
	if got := capture(false); got != "" {
		t.Errorf("off: printed %q", got)
	}
	line := capture(true)
	want := regexp.MustCompile(`^\[[0-9]+\.[0-9]{2}ms \+[0-9]+\.[0-9]{2}ms pid ` + strconv.Itoa(os.Getpid()) + `\] image: fetch: start\n$`)
	if !want.MatchString(line) {
		t.Errorf("on: printed %q, want %v", line, want)
	}
}
