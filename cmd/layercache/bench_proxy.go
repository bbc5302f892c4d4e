package main

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is a TCP proxy in front of Redis that delays every reply or
// answers nothing at all, to show the cache with a slow or stalled server.
// (The test harness has a richer one, but it belongs to tests; this one is
// what a command needs.)
type proxy struct {
	ln      net.Listener
	target  string
	delay   atomic.Int64 // added before each chunk of a reply, in ns
	stalled atomic.Bool  // forward nothing, as a paused server answers nothing
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// newProxy starts a proxy on a free loopback port forwarding to target.
func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is where clients connect.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay makes every reply d late (new and open connections alike).
func (p *proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// SetStalled stops (or resumes) forwarding: connections stay open and
// nothing is answered, as with a paused server. Bytes sent meanwhile are
// dropped, so clients must drop those connections, as go-redis does after
// a timeout.
func (p *proxy) SetStalled(on bool) { p.stalled.Store(on) }

// Close stops the proxy and waits for its goroutines.
func (p *proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.conns, c)
		return true
	}
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) accept() {
	defer func() {
		p.mu.Lock()
		p.conns = nil // no connection is tracked after Close
		p.mu.Unlock()
	}()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client, true) || !p.track(server, true) {
			_ = client.Close()
			_ = server.Close()
			return
		}
		p.wg.Go(func() { p.pump(server, client, false) })
		p.wg.Go(func() { p.pump(client, server, true) })
	}
}

// pump copies from src to dst, dropping everything while stalled. Replies
// go through a delay line: each chunk is written its delay after it was
// read, so the delay adds latency without limiting throughput.
func (p *proxy) pump(dst, src net.Conn, reply bool) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	line := make(chan chunk, 1024)
	var writer sync.WaitGroup
	writer.Go(func() {
		for c := range line {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.data); err != nil {
				_ = src.Close()
				for range line {
				}
				return
			}
		}
	})
	defer func() {
		close(line)
		writer.Wait()
		_ = dst.Close()
		_ = src.Close()
		p.track(dst, false)
		p.track(src, false)
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.stalled.Load() {
			c := chunk{at: time.Now(), data: append([]byte(nil), buf[:n]...)}
			if reply {
				c.at = c.at.Add(time.Duration(p.delay.Load()))
			}
			line <- c
		}
		if err != nil {
			return
		}
	}
}
