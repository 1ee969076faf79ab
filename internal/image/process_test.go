package image

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/snapshot"
)

// These tests run Fetch in separate processes (this test binary re-executed
// as TestFetchChild), so the locks under test are the kernel's, not this
// process's memory.

const (
	childRoot   = "BERTH_IMAGE_TEST_ROOT"
	childDriver = "BERTH_IMAGE_TEST_DRIVER"
	childDelay  = "BERTH_IMAGE_TEST_DELAY"
	childMarker = "BERTH_IMAGE_TEST_MARKER"
)

// TestFetchChild is the child process: it fetches threeLayers into the
// store at $BERTH_IMAGE_TEST_ROOT and prints how many layer blobs it
// downloaded. It touches $BERTH_IMAGE_TEST_MARKER once a download is under
// way.
func TestFetchChild(t *testing.T) {
	root := os.Getenv(childRoot)
	if root == "" {
		t.Skip("helper process of the cross-process tests")
	}
	var d driver
	for _, x := range drivers {
		if x.name == os.Getenv(childDriver) {
			d = x
		}
	}
	s := openStore(t, root, d)
	ti := childImage(t)
	f := newFetcher(ti)
	delay, _ := strconv.Atoi(os.Getenv(childDelay))
	f.delay = time.Duration(delay) * time.Microsecond
	var once sync.Once
	_, err := s.Fetch(context.Background(), FetchOptions{Fetcher: f, Manifest: ti.manifest, Progress: func(p Progress) {
		if p.Action == "Downloading" {
			once.Do(func() { os.WriteFile(os.Getenv(childMarker), nil, 0o600) })
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range ti.layers {
		n += f.fetched(l.Digest)
	}
	fmt.Printf("LAYERS FETCHED %d\n", n)
}

// childImage is threeLayers with a fourth layer big enough (1 MiB, served
// slowly) to be killed in the middle of.
func childImage(t *testing.T) testImage {
	big := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(big)
	return buildImage(t, "three", append(threeLayerSpecs(), layer{comp: archive.Uncompressed, entries: []entry{file("big", string(big))}}), nil)
}

func child(t *testing.T, root string, d driver, delay time.Duration, marker string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFetchChild$", "-test.v")
	cmd.Env = append(os.Environ(),
		childRoot+"="+root, childDriver+"="+d.name,
		childDelay+"="+strconv.Itoa(int(delay/time.Microsecond)), childMarker+"="+marker)
	return cmd
}

func TestFetchTwoProcesses(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		root := t.TempDir()
		// Open the stores once first: a fresh root's first open is not
		// what this test is about.
		openStore(t, root, d)
		outs := make([]string, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := child(t, root, d, 100*time.Microsecond, filepath.Join(root, "marker")).CombinedOutput()
				outs[i], errs[i] = string(b), err
			}()
		}
		wg.Wait()
		fetched := 0
		for i := range 2 {
			if errs[i] != nil {
				t.Fatalf("child %d: %v\n%s", i, errs[i], outs[i])
			}
			var n int
			if _, err := fmt.Sscanf(outs[i][strings.Index(outs[i], "LAYERS FETCHED"):], "LAYERS FETCHED %d", &n); err != nil {
				t.Fatalf("child %d output: %s", i, outs[i])
			}
			fetched += n
		}
		s := openStore(t, root, d)
		ti := childImage(t)
		if fetched != len(ti.layers) {
			t.Errorf("two processes downloaded %d layer blobs, want each of %d once", fetched, len(ti.layers))
		}
		list, err := s.List(context.Background())
		if err != nil || len(list) != 1 || list[0].ID != ti.config || list[0].ChainID != ti.top() {
			t.Fatalf("images = %+v, %v", list, err)
		}
		snaps := snapshots(t, s)
		for _, c := range ti.chain {
			if snaps[c.String()] != snapshot.KindCommitted {
				t.Errorf("layer %s not committed", c)
			}
		}
		if len(snaps) != len(ti.chain) {
			t.Errorf("snapshots = %v, want one per layer", snaps)
		}
	})
}

// A pull killed at any instant leaves a store that GC cleans and the next
// pull completes.
func TestFetchKilled(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		root := t.TempDir()
		openStore(t, root, d)
		marker := filepath.Join(root, "marker")
		cmd := child(t, root, d, time.Millisecond, marker)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("child never started downloading")
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // mid-layer: ingests and active snapshots exist
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		s := openStore(t, root, d)
		if list, _ := s.List(context.Background()); len(list) != 0 {
			t.Fatalf("a killed pull left images: %+v", list)
		}
		t.Logf("left by the killed pull: snapshots %v, blobs %d", snapshots(t, s), len(blobs(t, s)))
		if _, err := s.GC(context.Background(), nil); err != nil {
			t.Fatalf("gc after kill: %v", err)
		}
		if n := len(snapshots(t, s)); n != 0 {
			t.Errorf("%d snapshots after gc", n)
		}
		if b := blobs(t, s); len(b) != 0 {
			t.Errorf("blobs after gc: %v", b)
		}
		if ingests, _ := os.ReadDir(filepath.Join(root, "content", "ingest")); len(ingests) != 0 {
			t.Errorf("ingests after gc: %v", ingests)
		}
		ti := childImage(t)
		img := fetch(t, s, newFetcher(ti), ti)
		if img.ChainID != ti.top() {
			t.Errorf("re-fetch = %+v", img)
		}
	})
}
