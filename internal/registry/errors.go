package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// regError is a registry failure: a message for people, a berth category
// for errors.Is, and the underlying error for errors.As (transport.Error).
type regError struct {
	kind  error
	msg   string
	cause error
}

func (e *regError) Error() string   { return e.msg }
func (e *regError) Unwrap() []error { return []error{e.kind, e.cause} }

func invalid(what string, err error) error {
	return &regError{kind: errdefs.ErrInvalidArgument, msg: fmt.Sprintf("invalid reference %q: %v", what, err), cause: err}
}

// classify turns a transport or HTTP failure about subject ("manifest
// unknown: REF" reads as docker does) into a categorized error.
func classify(err error, subject string) error {
	if err == nil {
		return nil
	}
	var re *regError
	if errors.As(err, &re) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		kind, msg := kindOf(te)
		if msg == "" {
			msg = err.Error()
		}
		return &regError{kind: kind, msg: msg + ": " + subject, cause: err}
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		return &regError{kind: errdefs.ErrUnavailable, msg: fmt.Sprintf("%s: %v", subject, err), cause: err}
	}
	return fmt.Errorf("%s: %w", subject, err)
}

// kindOf maps the registry's error codes (preferred: they are specific)
// and else the HTTP status to a berth category, with the registry's own
// words as the message.
func kindOf(te *transport.Error) (error, string) {
	var msgs []string
	var kind error
	for _, d := range te.Errors {
		m := strings.ToLower(strings.ReplaceAll(string(d.Code), "_", " "))
		if d.Message != "" && !strings.EqualFold(d.Message, m) {
			m += ": " + d.Message
		}
		msgs = append(msgs, m)
		if kind != nil {
			continue
		}
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			kind = errdefs.ErrNotFound
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			kind = errdefs.ErrPermission
		case transport.NameInvalidErrorCode, transport.TagInvalidErrorCode, transport.ManifestInvalidErrorCode,
			transport.DigestInvalidErrorCode, transport.SizeInvalidErrorCode, transport.ManifestBlobUnknownErrorCode:
			kind = errdefs.ErrInvalidArgument
		case transport.TooManyRequestsErrorCode, transport.UnavailableErrorCode:
			kind = errdefs.ErrUnavailable
		case transport.UnsupportedErrorCode:
			kind = errdefs.ErrNotSupported
		}
	}
	if kind == nil {
		kind = kindOfStatus(te.StatusCode)
	}
	msg := strings.Join(msgs, "; ")
	if msg == "" {
		switch kind {
		case errdefs.ErrNotFound:
			msg = "not found"
		case errdefs.ErrPermission:
			msg = fmt.Sprintf("unauthorized (HTTP %d)", te.StatusCode)
		}
	}
	return kind, msg
}

func kindOfStatus(status int) error {
	switch {
	case status == http.StatusNotFound:
		return errdefs.ErrNotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return errdefs.ErrPermission
	case status == http.StatusBadRequest:
		return errdefs.ErrInvalidArgument
	case status == http.StatusTooManyRequests || status >= 500:
		return errdefs.ErrUnavailable
	}
	return errdefs.ErrUnavailable
}

// checkResponse returns nil when resp has one of the wanted statuses, else
// a classified error (the body is read for the registry's error JSON).
func checkResponse(resp *http.Response, subject string, want ...int) error {
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	return classify(transport.CheckError(resp, want...), subject)
}
