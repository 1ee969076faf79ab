package engine

import (
	"net"
	"time"
)

func dialUnix(path string, timeout time.Duration) (*net.UnixConn, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}
