// Package connection implements EventBridge's connections and API
// destinations: their operations, their secrets (sealed at rest, opened
// only to invoke), OAuth's token flow with the delivery worker, and what
// delivery needs of a destination. The event bus resolves a rule's API
// destination target through it.
package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/secretbox"
	"bridgeport/internal/store"
)

// Quotas are the limits the service enforces.
type Quotas struct {
	Connections     int
	ApiDestinations int
}

// Config builds a Service.
type Config struct {
	Store     *store.Store
	Region    string
	AccountID string
	Quotas    Quotas
	// Secrets seals connection secrets at rest.
	Secrets *secretbox.Box
	// AllowHTTPEndpoints lets API destinations and OAuth token endpoints
	// use plain http.
	AllowHTTPEndpoints bool
	// AllowPrivateEndpoints says that private addresses may be reached
	// (the invoker enforces it; the service only mentions it in messages).
	AllowPrivateEndpoints bool
	Logger                *slog.Logger
	Now                   func() time.Time // nil means time.Now
}

// Service holds the operations on connections and API destinations. Start
// it before serving requests; it is safe for concurrent use.
type Service struct {
	st           *store.Store
	arns         arns
	quotas       Quotas
	box          *secretbox.Box
	allowHTTP    bool
	allowPrivate bool
	log          *slog.Logger
	now          func() time.Time
	reg          *records

	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Service; Start loads the records.
func New(cfg Config) *Service {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{st: cfg.Store, arns: arns{region: cfg.Region, account: cfg.AccountID}, quotas: cfg.Quotas, box: cfg.Secrets,
		allowHTTP: cfg.AllowHTTPEndpoints, allowPrivate: cfg.AllowPrivateEndpoints, log: log, now: now,
		reg: &records{Records: store.Records{Log: log}}}
}

// arns builds the ARNs of one account and region.
type arns struct{ region, account string }

func (a arns) prefix() string { return fmt.Sprintf("arn:aws:events:%s:%s:", a.region, a.account) }

// Operations returns the operations by name.
func (s *Service) Operations() map[string]awsapi.JSONOperation {
	return map[string]awsapi.JSONOperation{
		"CreateConnection":       s.createConnection,
		"DescribeConnection":     s.describeConnection,
		"UpdateConnection":       s.updateConnection,
		"DeleteConnection":       s.deleteConnection,
		"ListConnections":        s.listConnections,
		"DeauthorizeConnection":  s.deauthorizeConnection,
		"CreateApiDestination":   s.createApiDestination,
		"DescribeApiDestination": s.describeApiDestination,
		"UpdateApiDestination":   s.updateApiDestination,
		"DeleteApiDestination":   s.deleteApiDestination,
		"ListApiDestinations":    s.listApiDestinations,
	}
}

// watched are the key prefixes of the records the service keeps, each
// watched on its own.
var watched = []string{connPrefix, destPrefix}

// Start watches the connections and API destinations until Stop, and
// returns once the current ones are loaded.
func (s *Service) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	loaded := make(chan error, len(watched))
	for i, prefix := range watched {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			ready := func() { once.Do(func() { loaded <- nil }) }
			for {
				err := s.st.WatchPrefix(wctx, prefix, func(e store.Entry) { s.reg.apply(i, e) }, ready)
				if wctx.Err() != nil {
					return
				}
				// Watching again replays every record; applying one
				// twice is harmless.
				s.log.Error("connection watch ended; watching again", "prefix", prefix, "error", err)
				select {
				case <-wctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	for range watched {
		select {
		case <-loaded:
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("load connections: %w", ctx.Err())
		}
	}
	return nil
}

// Stop stops watching.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// Revision changes whenever a connection or API destination does.
func (s *Service) Revision() uint64 { return s.reg.Revision() }

// records is this node's view of the connections and API destinations,
// kept by watching their keys; writes wait until it has seen them.
type records struct {
	store.Records
	applied [2]store.Applied // per watched prefix
}

func (g *records) apply(watch int, e store.Entry) {
	g.Apply(e)
	g.applied[watch].Advance(e.Revision)
}

func (g *records) getObj(key string, v any) (uint64, bool) { return g.Get(key, v) }

func (g *records) listObjs(prefix string) []string { return g.Keys(prefix) }

// seen waits, for a while, until the watch of key's prefix has applied a
// revision this node wrote. The write is stored either way; if the watch
// lags (the store is overloaded), the request answers rather than hang.
func (s *Service) seen(ctx context.Context, key string, rev uint64) {
	a := &s.reg.applied[0]
	if strings.HasPrefix(key, destPrefix) {
		a = &s.reg.applied[1]
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.WaitFor(wctx, rev); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "configuration change stored but not seen by this node yet", "revision", rev)
	}
}

// save stores a record (a new one when rev is 0, else a replacement of
// the record at revision rev) and waits until this node has seen it. A
// concurrent change is a ConcurrentModificationException.
func (s *Service) save(ctx context.Context, key string, rev uint64, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = s.st.Create(ctx, key, data)
	} else {
		nrev, err = s.st.Update(ctx, key, data, rev)
	}
	if err != nil {
		return writeError(err)
	}
	s.seen(ctx, key, nrev)
	return nil
}

// remove deletes the record at key, if still at revision rev, and waits
// until this node has seen it.
func (s *Service) remove(ctx context.Context, key string, rev uint64) error {
	nrev, err := s.st.Delete(ctx, key, rev)
	if err != nil {
		return writeError(err)
	}
	s.seen(ctx, key, nrev)
	return nil
}

func limitExceeded() *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeLimitExceeded, "The requested resource exceeds the maximum number allowed.")
}

// States counts connections by state.
func (s *Service) States() map[string]int {
	out := map[string]int{}
	for _, key := range s.reg.listObjs(connPrefix) {
		var c Connection
		if _, ok := s.reg.getObj(key, &c); ok {
			out[c.State]++
		}
	}
	return out
}

// writeError reports a write that lost a race as AWS does.
func writeError(err error) error {
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) {
		return awsapi.ConcurrentModification()
	}
	return err
}
