// Package errdefs is the small set of error categories every berth layer
// classifies its errors against. Front doors (CLI, API, CRI) map these to
// exit codes and status codes; nothing below them does.
package errdefs

import "errors"

var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotRunning: the operation needs a live container.
	ErrNotRunning = errors.New("not running")
	// ErrConflict: the object's current state forbids the operation.
	ErrConflict     = errors.New("conflict")
	ErrNotSupported = errors.New("not supported")
	ErrPermission   = errors.New("permission denied")
	ErrUnavailable  = errors.New("unavailable")
)

// IsNotFound and friends read better at call sites than errors.Is.
func IsNotFound(err error) bool        { return errors.Is(err, ErrNotFound) }
func IsAlreadyExists(err error) bool   { return errors.Is(err, ErrAlreadyExists) }
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }
func IsNotRunning(err error) bool      { return errors.Is(err, ErrNotRunning) }
func IsConflict(err error) bool        { return errors.Is(err, ErrConflict) }
