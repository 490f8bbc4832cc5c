package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Live nodes: each node writes a heartbeat to a bucket whose entries expire
// a few seconds after their last write, and counts the entries. Limits
// that hold for the whole cluster (a destination's rate limit) are shared
// out by that count.
const (
	nodesBucket   = "bridgeport_nodes"
	nodesTTL      = 5 * time.Second
	heartbeatStep = time.Second
)

func (s *Store) ensureNodes(ctx context.Context) error {
	var err error
	s.nodesKV, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      nodesBucket,
		Description: "bridgeport nodes alive (heartbeats)",
		History:     1,
		TTL:         nodesTTL,
		Storage:     jetstream.MemoryStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("nodes bucket: %w", err)
	}
	s.nodes.Store(1)
	return nil
}

// RunHeartbeat announces this node as alive until ctx ends, and keeps the
// count of live nodes current.
func (s *Store) RunHeartbeat(ctx context.Context, nodeID string) {
	tick := time.NewTicker(heartbeatStep)
	defer tick.Stop()
	for {
		if _, err := s.nodesKV.Put(ctx, Token(nodeID), []byte(strconv.FormatInt(time.Now().UnixNano(), 10))); err != nil && ctx.Err() == nil {
			s.log.Warn("heartbeat", "error", err)
		}
		if lister, err := s.nodesKV.ListKeys(ctx); err == nil {
			n := 0
			for range lister.Keys() {
				n++
			}
			if n > 0 {
				s.nodes.Store(int64(n))
			}
		}
		select {
		case <-ctx.Done():
			// Gone: the others stop counting this node at once.
			_ = s.nodesKV.Purge(context.Background(), Token(nodeID))
			return
		case <-tick.C:
		}
	}
}

// LiveNodes returns the number of nodes alive (at least 1).
func (s *Store) LiveNodes() int { return int(max(s.nodes.Load(), 1)) }

// Rate limits shared by the nodes: a destination's allowance for each
// one-second window is a record the nodes claim tokens from, a batch at a
// time, with compare-and-set. Over any span of whole seconds the nodes
// together invoke at most the rate (plus one window at the edges).
const ratesBucket = "bridgeport_rates"

func (s *Store) ensureRates(ctx context.Context) error {
	var err error
	s.ratesKV, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ratesBucket,
		Description: "rate-limit windows of API destinations, shared by the nodes",
		History:     1,
		TTL:         10 * time.Second,
		Storage:     jetstream.MemoryStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("rates bucket: %w", err)
	}
	return nil
}

// ClaimRate claims up to want tokens of dest's window (unix second) at the
// given rate and returns how many it got (0 when the window is spent).
func (s *Store) ClaimRate(ctx context.Context, dest string, rate, want int, window int64) (int, error) {
	key := Token(dest)
	for range 8 {
		e, err := s.ratesKV.Get(ctx, key)
		used, rev := 0, uint64(0)
		switch {
		case err == nil:
			rev = e.Revision()
			w, u, _ := strings.Cut(string(e.Value()), " ")
			stored, _ := strconv.ParseInt(w, 10, 64)
			switch {
			case stored > window:
				// A node has moved on to a later window: this one is over
				// (a claim that started late must not reset the count).
				return 0, nil
			case stored == window:
				used, _ = strconv.Atoi(u)
			}
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		default:
			return 0, err
		}
		grant := min(want, rate-used)
		if grant <= 0 {
			return 0, nil
		}
		val := []byte(strconv.FormatInt(window, 10) + " " + strconv.Itoa(used+grant))
		if rev == 0 {
			_, err = s.ratesKV.Create(ctx, key, val)
		} else {
			_, err = s.ratesKV.Update(ctx, key, val, rev)
		}
		if err == nil {
			return grant, nil
		}
		if !conflict(err) {
			return 0, err
		}
	}
	return 0, nil // contended: try again in the next attempt
}
