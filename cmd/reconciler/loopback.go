package main

import (
	"fmt"
	"net"
)

// checkLoopback refuses an address that is not on loopback, unless allowed:
// the simulator answers anyone, with no authentication.
func checkLoopback(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address (use --allow-remote to serve on it)", addr)
	}
	return nil
}
