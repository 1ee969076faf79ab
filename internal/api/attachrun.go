package api

import (
	"context"
	"errors"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
)

// attachedRun is Docker's `run` sequence over the API — attach to a created
// container, start it, wait for it — carried out by one in-process
// engine.StartAttached, exactly as the local `berth run` does: output from
// the json-file log from the first byte, the exit code taken before a --rm
// container is removed (in process, under the engine's --rm lock, so its
// monitor does not race us), and Docker's 126/127 start errors returned by
// the start request.
//
// The attach request registers the run and waits; the start request
// triggers it and returns once the container runs (or the start failed);
// wait requests answer with the code StartAttached returned.
type attachedRun struct {
	trigger chan struct{} // closed by the start request
	started chan error    // the start's outcome, sent once
	done    chan struct{} // closed when StartAttached returned
	code    int
	err     error
	ended   time.Time
}

// registerRun records a pending attached run for id; false when one is
// already pending (a second attach streams the log instead).
func (s *Server) registerRun(id string) (*attachedRun, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range s.runs {
		if !r.ended.IsZero() && time.Since(r.ended) > time.Minute {
			delete(s.runs, k)
		}
	}
	if old, ok := s.runs[id]; ok && old.ended.IsZero() {
		return nil, false
	}
	r := &attachedRun{trigger: make(chan struct{}), started: make(chan error, 1), done: make(chan struct{})}
	s.runs[id] = r
	return r, true
}

// dropRun forgets run, registered for id by an attach that failed before
// it could wait for its start.
func (s *Server) dropRun(id string, run *attachedRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs[id] == run {
		delete(s.runs, id)
	}
}

func (s *Server) lookupRun(id string) *attachedRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

// triggerRun starts a pending attached run of id and returns the start's
// outcome; ok is false when no attach is pending.
func (s *Server) triggerRun(ctx context.Context, id string) (ok bool, err error) {
	s.mu.Lock()
	r := s.runs[id]
	if r == nil {
		s.mu.Unlock()
		return false, nil
	}
	select {
	case <-r.trigger:
		s.mu.Unlock()
		return false, nil // already started by another request
	default:
		close(r.trigger)
	}
	s.mu.Unlock()
	select {
	case err := <-r.started:
		return true, err
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// runAttached waits for the start request and runs StartAttached with the
// attach connection's streams. It reports false when the container was
// started some other way (the caller then streams the log).
func (s *Server) runAttached(ctx context.Context, id string, r *attachedRun, opts engine.AttachOptions) bool {
	defer func() {
		s.mu.Lock()
		if r.ended.IsZero() {
			r.ended = time.Now()
		}
		s.mu.Unlock()
		select {
		case <-r.done:
		default:
			close(r.done)
		}
	}()
	for {
		select {
		case <-r.trigger:
			s.startAttached(ctx, id, r, opts)
			return true
		case <-ctx.Done():
			r.err = ctx.Err()
			return true
		case <-time.After(20 * time.Millisecond):
		}
		info, err := s.e.ContainerInspect(ctx, id, false)
		if err != nil {
			r.err = err
			return true
		}
		if info.State == nil || info.State.Status != container.StateCreated {
			// Started without us (POST /start raced the registration,
			// or another client): the log has the output.
			s.mu.Lock()
			delete(s.runs, id)
			s.mu.Unlock()
			return false
		}
	}
}

func (s *Server) startAttached(ctx context.Context, id string, r *attachedRun, opts engine.AttachOptions) {
	// The start request learns the outcome as soon as the container runs,
	// or when StartAttached returns.
	finished := make(chan struct{})
	go func() {
		for {
			select {
			case <-finished:
				if errors.Is(r.err, engine.ErrDetached) {
					r.started <- nil
				} else {
					r.started <- r.err
				}
				return
			case <-time.After(5 * time.Millisecond):
			}
			// Running means started. A failed start records an exit
			// too, so "exited" proves nothing: that outcome, and a
			// workload too quick to be seen running, come from
			// StartAttached's return.
			if info, err := s.e.ContainerInspect(ctx, id, false); err == nil && info.State != nil && info.State.Running {
				r.started <- nil
				return
			}
		}
	}()
	r.code, r.err = s.e.StartAttached(ctx, id, opts)
	close(finished)
}

// waitRun answers a wait for a container whose attached run is pending or
// in progress; ok is false when there is none.
func (s *Server) waitRun(ctx context.Context, id string) (code int, err error, ok bool) {
	r := s.lookupRun(id)
	if r == nil {
		return 0, nil, false
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return 0, ctx.Err(), true
	}
	var ee *engine.ExitError
	if errors.As(r.err, &ee) {
		// The start failed (and said so to the start request); the
		// container's status is Docker's 125/126/127.
		return ee.Code, nil, true
	}
	if errors.Is(r.err, engine.ErrDetached) {
		// Detached: the container runs on; wait the ordinary way.
		code, err := s.e.Wait(ctx, id)
		return code, err, true
	}
	return r.code, r.err, true
}
