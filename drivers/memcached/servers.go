package memcached

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/dgryski/go-rendezvous"
	"github.com/zeebo/xxh3"
)

// serverList is the layer's memcache.ServerSelector. gomemcache's own
// ServerList resolves host names when it is built and spreads keys by a
// hash modulo the number of servers, which moves nearly every key when one
// server is added or removed; this one keeps addresses as given (the
// dialer resolves them) and picks by rendezvous hashing, which moves only
// that server's share.
type serverList struct {
	addrs  []net.Addr          // in the order given
	byName map[string]net.Addr // the same, by address
	rdv    *rendezvous.Rendezvous
}

// addr is a server address that has not been resolved.
type addr struct{ network, address string }

func (a addr) Network() string { return a.network }
func (a addr) String() string  { return a.address }

// newServerList returns the selector for addrs, already checked by
// checkAddr and free of duplicates.
func newServerList(addrs []string) (*serverList, error) {
	s := &serverList{byName: make(map[string]net.Addr, len(addrs))}
	for _, a := range addrs {
		na := addr{"tcp", a}
		if isSocketPath(a) {
			na.network = "unix"
		}
		s.addrs = append(s.addrs, na)
		s.byName[a] = na
	}
	if len(s.addrs) == 0 {
		return nil, memcache.ErrNoServers
	}
	s.rdv = rendezvous.New(addrs, xxh3.HashString)
	return s, nil
}

// PickServer returns the server that holds key.
func (s *serverList) PickServer(key string) (net.Addr, error) {
	if len(s.addrs) == 1 {
		return s.addrs[0], nil
	}
	return s.byName[s.rdv.Lookup(key)], nil
}

// Each calls f for every server in turn, stopping at the first error,
// which it returns with the server's address.
func (s *serverList) Each(f func(net.Addr) error) error {
	for _, a := range s.addrs {
		if err := f(a); err != nil {
			return fmt.Errorf("server %s: %w", a, err)
		}
	}
	return nil
}

// isSocketPath reports whether a names a Unix socket, as gomemcache reads
// addresses.
func isSocketPath(a string) bool { return strings.Contains(a, "/") }

// checkAddr reports why a is not a server address.
func checkAddr(a string) error {
	if a == "" {
		return errors.New("empty address")
	}
	if isSocketPath(a) {
		return nil
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port or a socket path: %w", a, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 1..65535", a, port)
	}
	return nil
}

var _ memcache.ServerSelector = (*serverList)(nil)
