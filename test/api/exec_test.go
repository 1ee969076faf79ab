//go:build linux

package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// TestExecResize runs a Tty exec over a hijacked connection the way the
// docker CLI does, sized at creation, resizes it with POST
// /exec/{id}/resize and watches `stty size` inside follow.
func TestExecResize(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	d.ok("run", "-d", "--name", "tty", "busybox", "sleep", "1000")
	hc := d.http()
	post := func(path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		resp, err := hc.Post("http://berth/v1.43"+path, "application/json", rd)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, b := post("/containers/tty/exec", container.ExecCreateRequest{
		Cmd: []string{"sh", "-c", "stty size; while read x; do stty size; done"}, Tty: true,
		AttachStdin: true, AttachStdout: true, AttachStderr: true, ConsoleSize: &[2]uint{20, 70},
	})
	if code != http.StatusCreated {
		t.Fatalf("exec create: %d %s", code, b)
	}
	var created struct{ Id string }
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"no such exec", "/exec/nope/resize?h=10&w=10", http.StatusNotFound},
		{"zero size", "/exec/" + created.Id + "/resize?h=0&w=10", http.StatusBadRequest},
		{"not a number", "/exec/" + created.Id + "/resize?h=x&w=10", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, b := post(tc.path, nil); code != tc.status {
				t.Errorf("POST %s: %d (want %d) %s", tc.path, code, tc.status, b)
			}
		})
	}

	conn, err := net.Dial("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"Detach":false,"Tty":true}`
	fmt.Fprintf(conn, "POST /v1.43/exec/%s/start HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: %d\r\n\r\n%s", created.Id, len(body), body)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("exec start: %v %v", resp, err)
	}
	out := readTerminal(br)
	out.waitFor(t, d, conn, "\n", "20 70")
	if code, b := post("/exec/"+created.Id+"/resize?h=41&w=101", nil); code != http.StatusOK {
		t.Fatalf("resize: %d %s", code, b)
	}
	out.waitFor(t, d, conn, "\n", "41 101")
}

// terminalOutput collects what an exec's terminal prints.
type terminalOutput struct {
	mu  sync.Mutex
	out strings.Builder
}

// readTerminal copies r into a terminalOutput until r fails.
func readTerminal(r io.Reader) *terminalOutput {
	o := &terminalOutput{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			o.mu.Lock()
			o.out.Write(buf[:n])
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return o
}

// waitFor pokes the `stty size` loop with a line (newline: what Enter
// sends on that stream) until it prints want: the runtime applies a resize
// asynchronously, on its SIGWINCH.
func (o *terminalOutput) waitFor(t *testing.T, d *daemon, in io.Writer, newline, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		o.mu.Lock()
		got := o.out.String()
		o.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal never reported %q; output %q\nberthd: %s", want, got, d.daemonLog())
		}
		_, _ = in.Write([]byte(newline))
		time.Sleep(100 * time.Millisecond)
	}
}
