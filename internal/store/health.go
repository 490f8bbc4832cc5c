package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The health of API destinations, shared by the nodes: a destination that
// keeps failing has a record (its circuit is open) until an attempt through
// it succeeds. While it has one, its jobs are parked rather than tried, and
// one node at a time probes it.
const healthBucket = "bridgeport_health"

// Health is the record of a failing destination.
type Health struct {
	Destination string    `json:"destination"` // its ARN
	Since       time.Time `json:"since"`       // when its circuit opened
	Code        string    `json:"code"`        // the error of its last failed attempt
	Message     string    `json:"message"`
	// LastFailed is when an attempt through it last failed (the one that
	// opened the circuit, then failed probes).
	LastFailed time.Time `json:"lastFailed"`
	// NextProbe is when the destination is tried again; Probes counts the
	// probes that failed.
	NextProbe time.Time `json:"nextProbe"`
	Probes    int       `json:"probes"`
}

func (s *Store) ensureHealth(ctx context.Context) error {
	var err error
	s.healthKV, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      healthBucket,
		Description: "API destinations whose circuit is open, shared by the nodes",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("health bucket: %w", err)
	}
	return nil
}

// WatchHealth calls fn with every record of a failing destination, first
// the current ones, then each change; a destination whose circuit closed
// comes with a nil record. It returns when ctx ends.
func (s *Store) WatchHealth(ctx context.Context, fn func(dest string, h *Health)) error {
	w, err := s.healthKV.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch health: %w", err)
	}
	names := map[string]string{} // key to destination, for deletions
	return s.watch(ctx, w, func(e Entry) {
		if e.Deleted {
			if dest, ok := names[e.Key]; ok {
				delete(names, e.Key)
				fn(dest, nil)
			}
			return
		}
		var h Health
		if err := json.Unmarshal(e.Value, &h); err != nil {
			s.log.Error("unreadable health record", "key", e.Key, "error", err)
			return
		}
		names[e.Key] = h.Destination
		fn(h.Destination, &h)
	}, nil, nil)
}

// OpenCircuit records a destination as failing, unless it already is.
func (s *Store) OpenCircuit(ctx context.Context, h Health) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	_, err = s.healthKV.Create(ctx, Token(h.Destination), data)
	if err != nil && !conflict(err) {
		return fmt.Errorf("open circuit: %w", err)
	}
	return nil
}

// CloseCircuit records a destination as answering again.
func (s *Store) CloseCircuit(ctx context.Context, dest string) error {
	if err := s.healthKV.Delete(ctx, Token(dest)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("close circuit: %w", err)
	}
	return nil
}

// ClaimProbe takes the turn to probe a failing destination: when its probe
// is due at now, it moves the next one to next and reports true; the node
// that gets true probes. It reports false when the probe is not due, or
// another node took it, or the circuit closed.
func (s *Store) ClaimProbe(ctx context.Context, dest string, now, next time.Time) (bool, error) {
	key := Token(dest)
	h, rev, err := s.health(ctx, key)
	if err != nil || h == nil {
		return false, err
	}
	if now.Before(h.NextProbe) {
		return false, nil
	}
	h.NextProbe = next
	h.Probes++
	data, err := json.Marshal(h)
	if err != nil {
		return false, err
	}
	if _, err := s.healthKV.Update(ctx, key, data, rev); err != nil {
		if conflict(err) {
			return false, nil
		}
		return false, fmt.Errorf("probe: %w", err)
	}
	return true, nil
}

// NoteFailure records a failed attempt through a destination whose circuit
// is open (a failed probe): when, and the error.
func (s *Store) NoteFailure(ctx context.Context, dest string, at time.Time, code, message string) error {
	key := Token(dest)
	for range 8 {
		h, rev, err := s.health(ctx, key)
		if err != nil || h == nil {
			return err
		}
		h.LastFailed, h.Code, h.Message = at, code, message
		data, err := json.Marshal(h)
		if err != nil {
			return err
		}
		if _, err = s.healthKV.Update(ctx, key, data, rev); err == nil || !conflict(err) {
			return err
		}
	}
	return nil
}

// CircuitOf returns the health record of a destination whose circuit is
// open, or nil.
func (s *Store) CircuitOf(ctx context.Context, dest string) (*Health, error) {
	h, _, err := s.health(ctx, Token(dest))
	return h, err
}

// health reads the record at key, with its revision; nil when there is
// none.
func (s *Store) health(ctx context.Context, key string) (*Health, uint64, error) {
	e, err := s.healthKV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("health: %w", err)
	}
	var h Health
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		return nil, 0, fmt.Errorf("health: %w", err)
	}
	return &h, e.Revision(), nil
}

// OpenCircuits returns the destinations whose circuits are open.
func (s *Store) OpenCircuits(ctx context.Context) ([]Health, error) {
	keys, err := s.keysOf(ctx, s.healthKV, "")
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	var out []Health
	for _, key := range keys {
		if h, _, err := s.health(ctx, key); err == nil && h != nil {
			out = append(out, *h)
		}
	}
	return out, nil
}
