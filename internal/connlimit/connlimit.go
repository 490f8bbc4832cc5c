// Package connlimit caps the connections an HTTP server holds open, so that
// clients that connect and send nothing, or send slowly, cannot use up the
// process's file descriptors.
//
// At the cap, a new connection takes the place of the open one that has
// waited longest without a request in hand: idle between requests, or
// still sending its first request's headers (net/http counts a connection
// as active only once a request's headers are in). Connections with a
// request in hand are never closed; when every connection has one, the
// new connection waits, in the kernel's backlog, until one ends or goes
// idle.
package connlimit

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener that holds at most max connections open (one
// more waits in Accept). Give its ConnState to the http.Server that serves
// it, so that it knows which connections are idle. Safe for concurrent
// use.
type Listener struct {
	net.Listener
	max int

	mu   sync.Mutex
	open int
	// waiting are the connections without a request in hand, the one that
	// has waited longest first.
	waiting list.List
	// changed is signalled when a connection closes or starts waiting.
	changed   chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	evicted   atomic.Int64
}

// New returns ln capped at max connections.
func New(ln net.Listener, max int) *Listener {
	return &Listener{Listener: ln, max: max, changed: make(chan struct{}, 1), closed: make(chan struct{})}
}

// conn is a connection of a Listener.
type conn struct {
	net.Conn
	l *Listener
	// elem is the connection's place in l.waiting, nil when it has a
	// request in hand; closed is set once it is closed. Both guarded by
	// l.mu.
	elem   *list.Element
	closed bool
}

// Accept waits for a connection and for room for it.
func (l *Listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	for l.open >= l.max {
		if e := l.waiting.Front(); e != nil {
			victim := e.Value.(*conn)
			l.mu.Unlock()
			_ = victim.Close()
			l.evicted.Add(1)
			l.mu.Lock()
			continue
		}
		l.mu.Unlock()
		select {
		case <-l.changed:
		case <-l.closed:
			_ = nc.Close()
			return nil, net.ErrClosed
		}
		l.mu.Lock()
	}
	l.open++
	c := &conn{Conn: nc, l: l}
	c.elem = l.waiting.PushBack(c) // no request yet
	l.mu.Unlock()
	return c, nil
}

// Close stops accepting; open connections stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// ConnState is the http.Server hook that tells the Listener which
// connections have a request in hand.
func (l *Listener) ConnState(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*conn)
	if !ok || c.l != l {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed {
		return
	}
	switch s {
	case http.StateNew, http.StateIdle:
		if c.elem == nil {
			c.elem = l.waiting.PushBack(c)
			l.signal()
		}
	default: // active, hijacked, closed
		l.stopWaitingLocked(c)
	}
}

// Open returns the number of open connections.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Evicted returns the number of connections closed to make room for new
// ones.
func (l *Listener) Evicted() int64 { return l.evicted.Load() }

func (l *Listener) stopWaitingLocked(c *conn) {
	if c.elem != nil {
		l.waiting.Remove(c.elem)
		c.elem = nil
	}
}

func (l *Listener) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Close closes the connection and makes room for another.
func (c *conn) Close() error {
	l := c.l
	l.mu.Lock()
	if c.closed {
		l.mu.Unlock()
		return nil
	}
	c.closed = true
	l.stopWaitingLocked(c)
	l.open--
	l.signal()
	l.mu.Unlock()
	return c.Conn.Close()
}

// DefaultMax is the cap when none is set: half the process's limit of
// open files, leaving the other half to the store, deliveries and the rest
// of the process, and at most 10,000 (an open connection that sends
// nothing costs about 15 KB of memory). 10,000 when the limit is not
// known.
func DefaultMax() int {
	const most = 10000
	n := fileLimit()
	if n <= 0 {
		return most
	}
	return max(min(n/2, most), 16)
}
