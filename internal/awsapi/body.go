package awsapi

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Budget bounds the bytes of request bodies held in memory at once, across
// requests: a body takes its bytes as they arrive (its buffer grows by
// doubling, from 4 KiB, so a body holds at most twice what its client has
// sent) and gives them back when its request ends. A request that cannot
// get the bytes it needs within budgetWait is refused as busy, so a few
// clients that send part of a body and stall cannot hold the rest back for
// long. A nil *Budget bounds nothing. Safe for concurrent use.
type Budget struct {
	mu   sync.Mutex
	size int64
	used int64
	// waiters are the requests waiting for bytes, in arrival order; each
	// gets its bytes as soon as they fit, even before earlier ones that
	// still do not (a large body does not hold small ones back).
	waiters list.List
	refused atomic.Int64
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

// NewBudget returns a Budget of size bytes.
func NewBudget(size int64) *Budget { return &Budget{size: size} }

// InUse returns the bytes held now.
func (b *Budget) InUse() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Refused returns the number of requests refused as busy.
func (b *Budget) Refused() int64 {
	if b == nil {
		return 0
	}
	return b.refused.Load()
}

func (b *Budget) refuse() {
	if b != nil {
		b.refused.Add(1)
	}
}

// acquire takes n bytes, waiting for them until ctx ends or, when wait is
// not 0, at most wait (the timer is made only when it has to wait). More
// than the whole budget is granted when nothing else is held, so that
// such a request runs alone rather than never.
func (b *Budget) acquire(ctx context.Context, n int64, wait time.Duration) error {
	if b == nil || n <= 0 {
		return nil
	}
	b.mu.Lock()
	if b.fitsLocked(n) {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	e := b.waiters.PushBack(w)
	b.mu.Unlock()
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted meanwhile: given back
		b.used -= n
		b.grantLocked()
	default:
		b.waiters.Remove(e)
	}
	return ctx.Err()
}

// release gives back n bytes.
func (b *Budget) release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.grantLocked()
}

func (b *Budget) fitsLocked(n int64) bool { return b.used+n <= b.size || b.used == 0 }

func (b *Budget) grantLocked() {
	for e := b.waiters.Front(); e != nil; {
		next := e.Next()
		if w := e.Value.(*budgetWaiter); b.fitsLocked(w.n) {
			b.used += w.n
			b.waiters.Remove(e)
			close(w.ready)
		}
		e = next
	}
}

// The ways reading a request's body fails before its signature is
// verified; each protocol answers them in its own words.
var (
	errBodyTooLarge = errors.New("request body over the limit")
	errBodyTimeout  = errors.New("request body not received before the read deadline")
	errBodyBusy     = errors.New("too many request body bytes in flight")
)

const (
	// budgetWait is how long a request waits for bytes of the Budget
	// before it is refused as busy.
	budgetWait = time.Second
	// firstChunk is the size a body's buffer starts at; a body announced
	// at up to wholeBody bytes gets its whole buffer at once (a PutEvents
	// call of ten 1 KB events grew it three times, each a copy).
	firstChunk = 4 << 10
	wholeBody  = 16 << 10
)

// admit does, for either protocol, what comes before an operation: a body
// announced over limit is refused, then the signature's headers are
// checked, and only then the body is read (within the Budget) and the
// whole signature verified. It returns the body, the caller, and the
// Budget bytes the body holds, to be released when the request ends
// (also on error).
func (s *Server) admit(w http.ResponseWriter, r *http.Request, limit int64, service string, regions ...string) ([]byte, Identity, int64, error) {
	if r.ContentLength > limit {
		return nil, Identity{}, 0, errBodyTooLarge
	}
	p, err := s.Verifier.CheckHeaders(r, service, regions...)
	if err != nil {
		return nil, Identity{}, 0, err
	}
	body, held, err := s.readBody(w, r, limit)
	if err != nil {
		return nil, Identity{}, held, err
	}
	id, err := p.Verify(body)
	return body, id, held, err
}

// readBody reads r's body, at most limit bytes, taking Budget bytes as
// its buffer grows. It returns the body and the bytes it holds.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int64, error) {
	most := r.ContentLength
	if most < 0 { // unknown (chunked): up to the limit, and one byte to see it passed
		most = limit + 1
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var held int64
	buf := []byte{}
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= most {
				// Every byte announced is in; read on to the end.
				var one [1]byte
				n, err := body.Read(one[:])
				if n > 0 {
					return nil, held, errBodyTooLarge
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					return nil, held, readError(err)
				}
				continue
			}
			next := min(max(2*int64(cap(buf)), firstChunk), most)
			if most <= wholeBody {
				next = most
			}
			err := s.Budget.acquire(r.Context(), next-int64(cap(buf)), budgetWait)
			if err != nil {
				if r.Context().Err() != nil {
					return nil, held, r.Context().Err()
				}
				s.Budget.refuse()
				return nil, held, errBodyBusy
			}
			held += next - int64(cap(buf))
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, held, readError(err)
		}
	}
	// The body is in: from here on the time is the operation's, not the
	// client's. A read deadline left in place would, once passed, cancel
	// the request's context (net/http watches the idle connection with a
	// read), even in the middle of a 20-second long poll.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	return buf, held, nil
}

// admitError is how a protocol (query: the Query protocol, else AWS JSON)
// answers a request refused by admit. The codes of the timeout and busy
// answers are UNVERIFIED; the SDKs retry both, and every 503.
func admitError(err error, limit int64, query bool) *Error {
	var aerr *AuthError
	if errors.As(err, &aerr) {
		if query {
			return aerr.QueryError()
		}
		return aerr.JSONError()
	}
	pick := func(jsonCode, queryCode string) string {
		if query {
			return queryCode
		}
		return jsonCode
	}
	switch {
	case errors.Is(err, errBodyTooLarge):
		// UNVERIFIED: AWS's front end answers 413 for oversized bodies.
		return &Error{Code: pick("RequestEntityTooLargeException", "ValidationError"),
			Message: fmt.Sprintf("Request body is larger than %d bytes.", limit), Status: http.StatusRequestEntityTooLarge}
	case errors.Is(err, errBodyTimeout):
		return &Error{Code: pick("RequestTimeoutException", "RequestTimeout"), Message: "The request body was not received in time.",
			Status: http.StatusRequestTimeout}
	case errors.Is(err, errBodyBusy):
		return &Error{Code: pick("ServiceUnavailableException", "ServiceUnavailable"), Message: "Service is unable to handle request.",
			Status: http.StatusServiceUnavailable}
	}
	return &Error{Code: pick(CodeSerialization, "ValidationError"), Message: "Could not read the request body."}
}

// refuseUnread marks the answer to a request refused before its operation,
// whose body may be unread, as the last on its connection: the answer goes
// out at once, where net/http would first read up to 256 KiB of an unread
// body to keep the connection. After the answer it reads no more than that
// (within the read deadline), and of a larger body nothing.
func refuseUnread(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
}

func readError(err error) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errBodyTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errBodyTimeout
	}
	return fmt.Errorf("read request body: %w", err)
}

// waiting returns the number of requests waiting for bytes.
func (b *Budget) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiters.Len()
}
