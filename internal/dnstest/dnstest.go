// Package dnstest serves DNS in tests: the upstreams of the embedded DNS
// server's tests, and the resolvers the end-to-end tests give containers.
package dnstest

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// Serve answers with h on pc and l (either may be nil) until the test
// ends, and returns once both are serving.
func Serve(t testing.TB, h dns.Handler, pc net.PacketConn, l net.Listener) {
	t.Helper()
	var servers []*dns.Server
	if pc != nil {
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: h})
	}
	if l != nil {
		servers = append(servers, &dns.Server{Listener: l, Handler: h})
	}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
}
