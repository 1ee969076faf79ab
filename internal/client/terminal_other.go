//go:build !unix

package client

// watchResize: without SIGWINCH the size sent at the start stays.
func watchResize(send func()) (stop func()) { return func() {} }
