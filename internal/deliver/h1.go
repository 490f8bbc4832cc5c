package deliver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// h1Client sends invocations over HTTP/1.1, keeping connections open
// between them. It does what an invocation needs and no more: one request
// at a time on a connection, a response's status, its Retry-After and the
// first bytes of its body. net/http's client spends two goroutines on each
// connection and hands every request and response between them on
// channels; on this path that was 40-55 µs of CPU a request against 25 µs
// here (docs/BENCHMARKS.md, "Delivery: an HTTP/1.1 client of its own").
// OAuth token requests, which are rare, stay on net/http.
type h1Client struct {
	dialer      *net.Dialer
	tls         *tls.Config // cloned for each host, ServerName set
	maxIdle     int         // connections kept idle per host
	idleTimeout time.Duration
	// idleLimit bounds the connections kept idle over all hosts (each is
	// a file descriptor), idleTotal counts them.
	idleLimit int64
	idleTotal atomic.Int64

	mu    sync.Mutex
	pools map[string]*h1Pool // by scheme and host:port, while in use or keeping connections
}

// h1Pool holds the idle connections to one host, most recent last.
type h1Pool struct {
	c          *h1Client
	key, addr  string
	tls        *tls.Config // nil for plain http
	mu         sync.Mutex
	idle       []*h1Conn
	active     int // calls under way (h1Client.acquire to release)
	sweepArmed bool
}

type h1Conn struct {
	raw  net.Conn // the TCP connection, for the liveness check
	conn net.Conn // raw, or the TLS connection over it
	br   *bufio.Reader
	buf  []byte    // the request being written, kept between requests
	idle time.Time // since when the connection has been idle
	ex   [excerptLen]byte
}

// h1Request is an invocation's request, its header already checked.
type h1Request struct {
	method, scheme, host, target string // host: the Host header; target: the request-target (path and query)
	hostname, port               string // as url.URL's Hostname and Port give them
	header                       []h1Header
	body                         []byte
	close                        bool // send Connection: close and do not keep the connection
}

type h1Header struct{ name, value string }

// h1Response is what an invocation keeps of a response.
type h1Response struct {
	status     int
	retryAfter string
	excerpt    []byte // the body's first excerptLen bytes
}

const (
	// oneWrite bounds the request buffer a connection keeps: 16 KiB, so
	// that 1,024 idle connections to a host keep at most 16 MiB.
	oneWrite   = 16 << 10
	excerptLen = 512
	// bodyLimit is how much of a response body is read; a longer body
	// closes the connection instead.
	bodyLimit = excerptLen + 1<<20
	// headerLimit bounds a response's status line and header.
	headerLimit = 1 << 20
)

func newH1Client(dialer *net.Dialer, tlsConf *tls.Config, maxIdle int, idleLimit int64, idleTimeout time.Duration) *h1Client {
	return &h1Client{dialer: dialer, tls: tlsConf, maxIdle: maxIdle, idleLimit: idleLimit, idleTimeout: idleTimeout, pools: map[string]*h1Pool{}}
}

// acquire returns the pool of scheme://host (host with its port) for a
// call, which gives it back with release. A pool exists while calls use
// it or it keeps connections: hosts no destination calls any more cost
// nothing (an endpoint's host may come from its events).
func (c *h1Client) acquire(r *h1Request) *h1Pool {
	key := r.scheme + "://" + r.host
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[key]
	if p == nil {
		p = c.newPool(key, r)
		c.pools[key] = p
	}
	p.mu.Lock()
	p.active++
	p.mu.Unlock()
	return p
}

// release ends a call's use of p.
func (c *h1Client) release(p *h1Pool) {
	p.mu.Lock()
	p.active--
	unused := p.active == 0 && len(p.idle) == 0
	p.mu.Unlock()
	if unused {
		c.dropIfUnused(p)
	}
}

// dropIfUnused removes p while no call uses it and it keeps nothing.
func (c *h1Client) dropIfUnused(p *h1Pool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active == 0 && len(p.idle) == 0 && c.pools[p.key] == p {
		delete(c.pools, p.key)
	}
}

func (c *h1Client) newPool(key string, r *h1Request) *h1Pool {
	p := &h1Pool{c: c, key: key}
	port := r.port
	if port == "" {
		port = "80"
		if r.scheme == "https" {
			port = "443"
		}
	}
	p.addr = net.JoinHostPort(r.hostname, port)
	if r.scheme == "https" {
		p.tls = c.tls.Clone()
		p.tls.ServerName = r.hostname
		p.tls.NextProtos = []string{"http/1.1"}
	}
	return p
}

// do sends r and reads its response by deadline. A request that finds a
// kept connection closed by its server before any byte of an answer is
// sent once more on a new connection: servers close idle connections when
// they like, and the request most likely never reached the application
// (at-least-once delivery allows the rare duplicate).
func (c *h1Client) do(ctx context.Context, r *h1Request, deadline time.Time) (h1Response, error) {
	p := c.acquire(r)
	defer c.release(p)
	for try := 0; ; try++ {
		hc, reused, err := p.get(ctx, deadline, try > 0)
		if err != nil {
			return h1Response{}, err
		}
		_ = hc.conn.SetDeadline(deadline)
		// Cancelling ctx (shutdown) ends the call at once.
		stop := context.AfterFunc(ctx, func() { _ = hc.conn.SetDeadline(time.Unix(1, 0)) })
		resp, keep, answered, err := hc.roundTrip(r)
		if !stop() {
			if err == nil {
				err = ctx.Err()
			} else {
				err = fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
			keep = false
		}
		if err != nil {
			hc.close()
			if reused && !answered && try == 0 && brokenConn(err) && time.Now().Before(deadline) {
				continue
			}
			return h1Response{}, err
		}
		if keep && !r.close {
			p.put(hc)
		} else {
			hc.close()
		}
		return resp, nil
	}
}

// brokenConn reports whether err is a kept connection found closed.
func brokenConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// get returns a kept connection that is still open, or a new one (always
// a new one when fresh is set).
func (p *h1Pool) get(ctx context.Context, deadline time.Time, fresh bool) (*h1Conn, bool, error) {
	for !fresh {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		hc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		p.c.idleTotal.Add(-1)
		if time.Since(hc.idle) < p.c.idleTimeout && hc.alive() {
			return hc, true, nil
		}
		hc.close()
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	raw, err := p.c.dialer.DialContext(dctx, "tcp", p.addr)
	if err != nil {
		return nil, false, err
	}
	hc := &h1Conn{raw: raw, conn: raw}
	if p.tls != nil {
		tc := tls.Client(raw, p.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, false, err
		}
		hc.conn = tc
	}
	hc.br = bufio.NewReaderSize(hc.conn, 4096)
	return hc, false, nil
}

// put keeps hc for the next request, up to the pool's and the client's
// limits.
func (p *h1Pool) put(hc *h1Conn) {
	_ = hc.conn.SetDeadline(time.Time{})
	if hc.br.Buffered() > 0 { // bytes beyond the response: not a connection to trust
		hc.close()
		return
	}
	p.mu.Lock()
	full := len(p.idle) >= p.c.maxIdle
	if !full && p.c.idleTotal.Add(1) > p.c.idleLimit {
		p.c.idleTotal.Add(-1) // over the limit of all hosts
		full = true
	}
	if full {
		p.mu.Unlock()
		hc.close()
		return
	}
	hc.idle = time.Now()
	p.idle = append(p.idle, hc)
	arm := !p.sweepArmed
	p.sweepArmed = true
	p.mu.Unlock()
	if arm {
		time.AfterFunc(p.c.idleTimeout, p.sweep)
	}
}

// sweep closes the connections idle longer than the idle timeout (the
// oldest are first) and comes back while any are kept. No goroutine waits
// in between.
func (p *h1Pool) sweep() {
	p.mu.Lock()
	i := 0
	for i < len(p.idle) && time.Since(p.idle[i].idle) >= p.c.idleTimeout {
		i++
	}
	old := append([]*h1Conn(nil), p.idle[:i]...)
	p.idle = append(p.idle[:0], p.idle[i:]...)
	clear(p.idle[len(p.idle):cap(p.idle)])
	var next time.Duration
	if len(p.idle) > 0 {
		next = p.c.idleTimeout - time.Since(p.idle[0].idle) + time.Second
	}
	p.sweepArmed = next > 0
	unused := p.active == 0 && len(p.idle) == 0
	p.mu.Unlock()
	p.c.idleTotal.Add(-int64(len(old)))
	for _, hc := range old {
		hc.close()
	}
	if unused {
		p.c.dropIfUnused(p)
	}
	if next > 0 {
		time.AfterFunc(next, p.sweep)
	}
}

func (hc *h1Conn) close() { _ = hc.conn.Close() }

// alive reports whether a kept connection is still open and silent: the
// socket has nothing to read (a closed one reads its end; bytes no
// request asked for would be taken for the next request's answer), and
// over TLS, neither has the TLS connection read ahead.
func (hc *h1Conn) alive() bool {
	sc, ok := hc.raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var pending, closed bool
	var b [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n > 0:
			pending = true
		case err == nil || (err != syscall.EAGAIN && err != syscall.EINTR):
			closed = true
		}
		return true
	}); err != nil || closed || pending {
		return false
	}
	if hc.conn == hc.raw {
		return true
	}
	// A read that may not wait: the TLS connection's own buffers only.
	_ = hc.conn.SetReadDeadline(time.Unix(1, 0))
	_, err = hc.br.Peek(1)
	_ = hc.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// roundTrip writes r and reads its response. keep says whether the
// connection may carry another request; answered whether any byte of a
// response came.
func (hc *h1Conn) roundTrip(r *h1Request) (resp h1Response, keep, answered bool, err error) {
	b := hc.buf[:0]
	b = append(b, r.method...)
	b = append(b, ' ')
	b = append(b, r.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.host...)
	b = append(b, "\r\n"...)
	for _, h := range r.header {
		b = append(b, h.name...)
		b = append(b, ": "...)
		b = append(b, h.value...)
		b = append(b, "\r\n"...)
	}
	if len(r.body) > 0 || r.method == "POST" || r.method == "PUT" || r.method == "PATCH" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(r.body)), 10)
		b = append(b, "\r\n"...)
	}
	if r.close {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	// One write for a request of up to oneWrite bytes, two for a larger
	// one, whose body is not copied (nor kept with the connection).
	if len(b)+len(r.body) <= oneWrite {
		b = append(b, r.body...)
		_, err = hc.conn.Write(b)
	} else if _, err = hc.conn.Write(b); err == nil {
		_, err = hc.conn.Write(r.body)
	}
	if cap(b) <= oneWrite {
		hc.buf = b[:0]
	} else {
		hc.buf = nil
	}
	if err != nil {
		// A server may answer (401, 413) and close before it has read
		// the whole request: its answer, if it came, is the outcome.
		if resp, _, rerr := readResponse(hc.br, hc.ex[:], r.method == "HEAD", nil); rerr == nil {
			return resp, false, true, nil
		}
		return resp, false, false, err
	}
	resp, keep, err = readResponse(hc.br, hc.ex[:], r.method == "HEAD", func() { answered = true })
	return resp, keep, answered, err
}

// errMalformed wraps what is wrong with a response that is not HTTP/1.x.
var errMalformed = errors.New("malformed HTTP response")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// readResponse reads a response (skipping interim 1xx ones) to the end of
// its body, up to bodyLimit and within the connection's deadline, keeping
// the body's first len(ex) bytes of a status of 300 or more. keep says
// whether the connection may be used again. first runs when the first
// byte has come.
func readResponse(br *bufio.Reader, ex []byte, head bool, first func()) (resp h1Response, keep bool, err error) {
	budget := headerLimit
	for {
		line, err := readLine(br, &budget)
		if len(line) > 0 || err == nil {
			if first != nil {
				first()
				first = nil
			}
		}
		if err != nil {
			return resp, false, err
		}
		var minor int
		resp.status, minor, err = parseStatusLine(line)
		if err != nil {
			return resp, false, err
		}
		h, err := readHeader(br, &budget)
		if err != nil {
			return resp, false, err
		}
		if resp.status >= 100 && resp.status < 200 && resp.status != 101 {
			continue // interim: 100 Continue, 103 Early Hints
		}
		resp.retryAfter = h.retryAfter
		// HTTP/1.0 keeps the connection only when asked to, and never
		// with a Transfer-Encoding, which it does not have (RFC 9112, 6.1).
		keep = !h.close && (minor == 1 || h.keepAlive && !h.te)
		var body io.Reader
		switch {
		case head, resp.status < 200, resp.status == 204, resp.status == 304:
			if resp.status == 101 {
				keep = false
			}
			return resp, keep, nil
		case h.chunked:
			body = httputil.NewChunkedReader(br)
		case h.length >= 0:
			body = io.LimitReader(br, h.length)
		default: // delimited by the connection's end
			keep = false
			body = br
		}
		lr := &io.LimitedReader{R: body, N: bodyLimit}
		n := 0
		for n < len(ex) && err == nil {
			var k int
			k, err = lr.Read(ex[n:])
			n += k
		}
		total := int64(n)
		if err == nil {
			var m int64
			m, err = io.Copy(io.Discard, lr)
			total += m
		}
		if err == io.EOF {
			err = nil
		}
		if resp.status >= 300 {
			resp.excerpt = append([]byte(nil), ex[:n]...)
		}
		// Once the status has come, it is the answer: a body that fails
		// or ends short only costs the connection.
		switch {
		case err != nil, lr.N == 0, h.length >= 0 && total < h.length:
			return resp, false, nil
		case h.chunked && keep:
			// The trailer section after the last chunk.
			for {
				line, err := readLine(br, &budget)
				if err != nil {
					return resp, false, nil
				}
				if len(line) == 0 {
					break
				}
			}
		}
		return resp, keep, nil
	}
}

// parseStatusLine reads "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (status, minor int, err error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, 0, malformed("status line %q", truncate(line))
	}
	switch line[7] {
	case '0':
	case '1':
		minor = 1
	default:
		return 0, 0, malformed("version in %q", truncate(line))
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, 0, malformed("status code in %q", truncate(line))
		}
		status = status*10 + int(d-'0')
	}
	if status < 100 {
		return 0, 0, malformed("status code in %q", truncate(line))
	}
	return status, minor, nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

// h1Head is what a response's header says that the client uses.
type h1Head struct {
	length           int64 // -1: none
	chunked          bool
	close, keepAlive bool
	te               bool // a Transfer-Encoding
	retryAfter       string
	hasRetryAfter    bool
}

// readHeader reads header fields up to the empty line.
func readHeader(br *bufio.Reader, budget *int) (h1Head, error) {
	h := h1Head{length: -1}
	var te bool
	for {
		line, err := readLine(br, budget)
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || line[0] == ' ' || line[0] == '\t' || line[i-1] == ' ' || line[i-1] == '\t' {
			return h, malformed("header line %q", truncate(line))
		}
		name, value := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || len(value) == 0 || value[0] < '0' || value[0] > '9' {
				return h, malformed("Content-Length %q", truncate(value))
			}
			if h.length >= 0 && h.length != n {
				return h, malformed("two Content-Lengths")
			}
			h.length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te = true
			// Chunked when it is the last coding applied.
			last := value
			if j := bytes.LastIndexByte(value, ','); j >= 0 {
				last = bytes.TrimSpace(value[j+1:])
			}
			h.chunked = bytes.EqualFold(last, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			for _, tok := range bytes.Split(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				if bytes.EqualFold(tok, []byte("close")) {
					h.close = true
				} else if bytes.EqualFold(tok, []byte("keep-alive")) {
					h.keepAlive = true
				}
			}
		case bytes.EqualFold(name, []byte("Retry-After")):
			if !h.hasRetryAfter { // the first, as net/http's Header.Get
				h.retryAfter, h.hasRetryAfter = string(value), true
			}
		}
	}
	h.te = te
	if te {
		// Transfer-Encoding wins over Content-Length (RFC 9112, 6.3);
		// a message with both is not one to keep the connection after,
		// nor is one whose body ends only with the connection.
		if h.length >= 0 || !h.chunked {
			h.close = true
		}
		h.length = -1
	}
	return h, nil
}

// readLine reads a line ending in LF (CRLF or bare LF) without its end,
// counting its bytes against budget. The slice is valid until the next
// read.
func readLine(br *bufio.Reader, budget *int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(long) > *budget {
				return nil, malformed("header larger than %d bytes", headerLimit)
			}
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	*budget -= len(line)
	if *budget < 0 {
		return nil, malformed("header larger than %d bytes", headerLimit)
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return line, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
