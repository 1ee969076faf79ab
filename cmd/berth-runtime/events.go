//go:build linux

package main

import (
	"encoding/json"
	"os"
	"time"
)

type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func cmdEvents(g *globals, args []string) error {
	fs := newFlags("events")
	stats := fs.Bool("stats", false, "print statistics once and exit")
	interval := fs.Duration("interval", 5*time.Second, "statistics interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	r := rt(g)
	enc := json.NewEncoder(os.Stdout)
	if *stats {
		st, err := r.Stats(id)
		if err != nil {
			return err
		}
		return enc.Encode(event{Type: "stats", ID: id, Data: st})
	}
	// Stream: statistics every interval, and an "oom" event whenever the
	// kernel's OOM-kill count for the container grows.
	var lastOOM uint64
	if n, err := r.OOMKills(id); err == nil {
		lastOOM = n
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	oomTick := time.NewTicker(200 * time.Millisecond)
	defer oomTick.Stop()
	for {
		select {
		case <-oomTick.C:
			n, err := r.OOMKills(id)
			if err != nil {
				return nil // container gone
			}
			if n > lastOOM {
				lastOOM = n
				if err := enc.Encode(event{Type: "oom", ID: id}); err != nil {
					return err
				}
			}
		case <-tick.C:
			st, err := r.Stats(id)
			if err != nil {
				return nil
			}
			if err := enc.Encode(event{Type: "stats", ID: id, Data: st}); err != nil {
				return err
			}
		}
	}
}
