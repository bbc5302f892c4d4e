package redistest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxyDialTimeout bounds the proxy's connect to its target.
const proxyDialTimeout = 5 * time.Second

// proxyBufSize is the read size per direction; a Redis command or pipeline
// that fits in it is forwarded as one chunk.
const proxyBufSize = 64 << 10

// Proxy is a TCP proxy on a loopback port that forwards every connection to
// a target address and can slow down, swallow or drop the traffic. Settings
// apply at once, to new and existing connections alike. All methods are safe
// for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	upDelay   atomic.Int64 // time.Duration slept before forwarding a client->server chunk
	downDelay atomic.Int64 // time.Duration slept before forwarding a server->client chunk
	blackHole atomic.Bool

	accepted atomic.Int64
	active   atomic.Int64
	upWrites atomic.Int64

	ctx    context.Context // canceled by Close: ends dials and delays
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection handler

	mu     sync.Mutex
	closed bool                  // guarded by mu; no conn is tracked once set
	conns  map[net.Conn]struct{} // both ends of every open connection; guarded by mu
}

// NewProxy starts a proxy on a free 127.0.0.1 port that forwards to target
// ("host:port"). It is closed in t.Cleanup, and by the time that cleanup
// returns every goroutine it started has returned.
//
// The target is dialled once per accepted connection. If the dial fails the
// client's connection is closed, unless the proxy is black-holed, in which
// case it is held open like any other.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln:     ln,
		target: target,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.Close)
	return p
}

// Addr returns the address clients connect to, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay sets the time slept before forwarding each chunk read from the
// client (upstream) and from the server (downstream), so one request and its
// reply cost about upstream+downstream extra. A chunk already sleeping keeps
// the delay it started with. Negative delays count as zero.
func (p *Proxy) SetDelay(upstream, downstream time.Duration) {
	p.upDelay.Store(int64(max(upstream, 0)))
	p.downDelay.Store(int64(max(downstream, 0)))
}

// SetBlackHole turns black-holing on or off. While on, the proxy still
// accepts connections and reads from both sides but forwards nothing, so
// clients wait until their own timeouts, as with a network partition that
// drops packets. Bytes read while black-holed are discarded, never delivered
// later; a connection that lost bytes is out of step with the server and
// should be thrown away by the client (go-redis does so after a timeout).
func (p *Proxy) SetBlackHole(on bool) { p.blackHole.Store(on) }

// Accepted returns the number of client connections accepted since the proxy
// started or since the last [Proxy.Reset].
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Active returns the number of client connections currently open through
// the proxy. A connection stops counting shortly after either side closes
// it, so poll rather than expect an exact value right after a close.
func (p *Proxy) Active() int64 { return p.active.Load() }

// UpstreamWrites returns the number of chunks forwarded from clients to the
// server since the proxy started or since the last [Proxy.Reset]. A chunk is
// what one read from the client returned; in practice one command or one
// pipeline is one chunk, so this counts round trips. Chunks discarded by
// the black hole are not counted. The count is raised before the chunk is
// written, so it already includes a command whose reply the client has seen.
func (p *Proxy) UpstreamWrites() int64 { return p.upWrites.Load() }

// Reset sets Accepted and UpstreamWrites to zero. Active is a gauge of open
// connections and is not reset.
func (p *Proxy) Reset() {
	p.accepted.Store(0)
	p.upWrites.Store(0)
}

// CloseConnections closes every connection currently open through the proxy,
// both the client's and the server's side; clients see EOF or a reset. The
// proxy keeps accepting new connections.
func (p *Proxy) CloseConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Close stops accepting, closes every connection and waits until all of the
// proxy's goroutines have returned. Clients connecting afterwards are
// refused. Close is idempotent and is called by t.Cleanup.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.cancel()
		_ = p.ln.Close()
		for c := range p.conns {
			_ = c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			// Accept on a loopback listener fails for good only when it is
			// closed; anything else would repeat, so stop either way.
			return
		}
		p.accepted.Add(1)
		p.active.Add(1)
		p.wg.Add(1)
		go p.handle(c)
	}
}

// track registers c so CloseConnections and Close reach it. It returns false,
// having closed c, when the proxy is already closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

// handle serves one client connection until either side closes it.
func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	defer p.active.Add(-1)
	if !p.track(client) {
		return
	}
	defer p.untrack(client)

	d := net.Dialer{Timeout: proxyDialTimeout}
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		if p.blackHole.Load() {
			// A black hole answers nothing, whether or not the target is up.
			p.drain(client)
		}
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)

	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pipe(server, client, &p.upDelay, true)
	}()
	p.pipe(client, server, &p.downDelay, false)
	<-done
}

// pipe copies src to dst chunk by chunk, applying the current delay and
// black hole to each chunk. When either side fails it closes both, which
// also ends the pipe running the other way.
func (p *Proxy) pipe(dst, src net.Conn, delay *atomic.Int64, upstream bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, proxyBufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(delay.Load()); d > 0 && !p.sleep(d) {
				return
			}
			if !p.blackHole.Load() {
				if upstream {
					p.upWrites.Add(1)
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// drain reads and discards from c until it is closed.
func (p *Proxy) drain(c net.Conn) {
	buf := make([]byte, proxyBufSize)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// sleep waits for d and reports false if the proxy was closed meanwhile.
func (p *Proxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}
