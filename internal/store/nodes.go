package store

import (
	"context"
	"fmt"
	"strconv"
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
		if n, err := s.countKeys(ctx, s.nodesKV); err == nil && n > 0 {
			s.nodes.Store(int64(n))
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
