//go:build !unix

package client

// WatchResize: without SIGWINCH the size sent at the start stays.
func WatchResize(send func()) (stop func()) { return func() {} }
