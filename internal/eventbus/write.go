package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// put stores a record: a new one when rev is 0, else a replacement of the
// record at revision rev. It returns the new revision without waiting for
// the registry.
func (s *Service) put(ctx context.Context, key string, rev uint64, v any) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", key, err)
	}
	if rev == 0 {
		return s.st.Create(ctx, key, data)
	}
	return s.st.Update(ctx, key, data, rev)
}

// save stores a record as put does and waits until this node's registry has
// seen it. A concurrent change to the same record is a
// ConcurrentModificationException, as AWS reports one.
func (s *Service) save(ctx context.Context, key string, rev uint64, v any) error {
	nrev, err := s.put(ctx, key, rev, v)
	if err != nil {
		return writeError(err)
	}
	s.seen(ctx, nrev)
	return nil
}

// seen waits, for a while, until this node's registry has applied a
// revision it wrote. The write is stored either way; if the watch lags
// (the store is overloaded), the request answers rather than hang.
func (s *Service) seen(ctx context.Context, rev uint64) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.reg.applied.WaitFor(wctx, rev); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "configuration change stored but not seen by this node yet", "revision", rev)
	}
}

// remove deletes the record at key, if still at revision rev, and waits
// until the registry has seen it.
func (s *Service) remove(ctx context.Context, key string, rev uint64) error {
	nrev, err := s.st.Delete(ctx, key, rev)
	if err != nil {
		return writeError(err)
	}
	s.seen(ctx, nrev)
	return nil
}

// lostRace reports whether a write failed because the record changed (or
// came to exist) since it was read.
func lostRace(err error) bool {
	return errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists)
}

func writeError(err error) error {
	if lostRace(err) {
		return awsapi.ConcurrentModification()
	}
	return err
}
