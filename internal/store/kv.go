package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors of the configuration bucket.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("changed concurrently")
)

// Entry is one configuration record.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Deleted  bool
}

// Get returns the record at key, as the bucket's leader has it: a write
// made through any node is seen.
func (s *Store) Get(ctx context.Context, key string) (Entry, error) {
	value, rev, err := s.leaderGet(ctx, s.kv, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("get %s: %w", key, err)
	}
	return Entry{Key: key, Value: value, Revision: rev}, nil
}

// Create stores a new record, failing with ErrExists if key is taken.
func (s *Store) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := s.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrExists
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", key, err)
	}
	return rev, nil
}

// conflict reports whether err is a compare-and-set conflict of a KV
// write. A replicated bucket reports it with another error code than a
// single-replica one, so nats.go maps it to ErrKeyRevisionMismatch, and
// to ErrKeyExists only when the key was not expected to exist.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// Update replaces the record at key if it is still at revision rev, failing
// with ErrConflict otherwise.
func (s *Store) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	nrev, err := s.kv.Update(ctx, key, value, rev)
	if conflict(err) {
		return 0, ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("update %s: %w", key, err)
	}
	return nrev, nil
}

// Delete removes the record at key if it is still at revision rev, failing
// with ErrConflict otherwise. It returns the revision of the deletion, so
// that callers can wait for watchers to see it. It writes the same deletion
// marker as the KV API's Delete, which does not return the revision.
func (s *Store) Delete(ctx context.Context, key string, rev uint64) (uint64, error) {
	msg := nats.NewMsg("$KV." + configBucket + "." + key)
	msg.Header.Set("KV-Operation", "DEL")
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(rev))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, ErrConflict
		}
		return 0, fmt.Errorf("delete %s: %w", key, err)
	}
	return ack.Sequence, nil
}

// Watch calls fn with every record, first the current ones, then each
// change (deletions with Deleted set), until ctx ends. It calls ready once
// the current records have been delivered. fn runs on one goroutine, in
// revision order.
func (s *Store) Watch(ctx context.Context, fn func(Entry), ready func()) error {
	return s.WatchPrefix(ctx, "", fn, ready)
}

// WatchPrefix is Watch for the records whose keys start with prefix (which
// ends with a dot); "" watches all.
//
// ready comes once every key the bucket held when the watch's first pass
// ended has been handed over, at some revision. The KV API's own signal
// (the watcher's first nil) can come before a key that was written again
// meanwhile: its revision current at the start was gone before the watch
// reached it, and the newer one comes after the signal. A router started
// then would route without that rule.
func (s *Store) WatchPrefix(ctx context.Context, prefix string, fn func(Entry), ready func()) error {
	w, err := s.kv.Watch(ctx, prefix+">")
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	return s.watch(ctx, w, fn, ready, func() ([]string, error) { return s.keysOf(ctx, s.kv, prefix) })
}

// watchCatchUp bounds how long a watch waits for keys its first pass left
// out (one removed from the stream meanwhile never comes).
const watchCatchUp = 5 * time.Second

// watch hands fn each update of w until ctx ends, and calls ready (if not
// nil) once the records current at the start have been handed over: the
// watcher's first pass has ended and, when keys is not nil, every key it
// returns then has been handed over at some revision, or watchCatchUp has
// passed.
func (s *Store) watch(ctx context.Context, w jetstream.KeyWatcher, fn func(Entry), ready func(), keys func() ([]string, error)) error {
	defer w.Stop()
	// seen: the keys handed over in the first pass; missing: after it,
	// those still to come.
	var seen, missing map[string]bool
	if ready != nil && keys != nil {
		seen = map[string]bool{}
	}
	var late <-chan time.Time
	done := func() {
		if ready != nil {
			ready()
		}
		ready, seen, missing, late = nil, nil, nil, nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-late:
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("watch: keys not handed over in time; going on", "missing", len(missing))
			done()
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				if ready == nil || missing != nil {
					continue
				}
				if seen == nil {
					done()
					continue
				}
				missing = map[string]bool{}
				ks, err := keys()
				// A stream without a leader for a moment (a NATS server
				// lost) does not answer: asked again until watchCatchUp.
				for until := time.Now().Add(watchCatchUp); err != nil && ctx.Err() == nil && time.Now().Before(until); {
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
					ks, err = keys()
				}
				if ctx.Err() != nil {
					return nil
				}
				if err != nil {
					s.log.Warn("watch: listing the keys to wait for", "error", err)
				}
				for _, k := range ks {
					if !seen[k] {
						missing[k] = true
					}
				}
				seen = nil
				if len(missing) == 0 {
					done()
				} else {
					late = time.After(watchCatchUp)
				}
				continue
			}
			op := e.Operation()
			fn(Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(),
				Deleted: op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge})
			switch {
			case seen != nil:
				seen[e.Key()] = true
			case missing != nil:
				delete(missing, e.Key())
				if len(missing) == 0 {
					done()
				}
			}
		}
	}
}

// Token encodes a name for use as one token of a key or subject: letters,
// digits, '-' and '_' stay, every other byte becomes '=' and two hex digits.
// Distinct names give distinct tokens.
func Token(name string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	if b.Len() == 0 {
		return "="
	}
	return b.String()
}

// List returns the records whose keys start with prefix (which ends with a
// dot), in key order.
func (s *Store) List(ctx context.Context, prefix string) ([]Entry, error) {
	keys, err := s.keysOf(ctx, s.kv, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	var out []Entry
	for _, key := range keys {
		e, err := s.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// keysOf returns the keys of bucket kv that start with prefix ("" for
// all), sorted: every key with a message in the bucket's stream, as the
// stream's state names them (the STREAM.INFO API with a subject filter,
// asked of the stream's leader). A key deleted or purged may be among them
// (its marker is kept); callers read each.
//
// It does not use the KV API's key listing, which reads the bucket through
// a consumer and stops once it has seen as many messages as were pending
// when it began: a key written again meanwhile (its earlier message gone
// before the consumer reached it) can be left out, and was, in about a
// quarter of the listings taken while one key was being updated.
//
// Beyond 100,000 keys the server answers in pages, by offset into its
// sorted list of them at each request, so keys created or removed between
// two pages shift the pages: a listing whose keys do not add up to the
// server's total is taken again, up to three times, then returned as it is.
func (s *Store) keysOf(ctx context.Context, kv jetstream.KeyValue, prefix string) ([]string, error) {
	bucket := kv.Bucket()
	base := "$KV." + bucket + "."
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	var seen map[string]bool
	for range 3 {
		seen = map[string]bool{}
		total := 0
		for {
			req, _ := json.Marshal(map[string]any{"subjects_filter": base + prefix + ">", "offset": len(seen)})
			msg, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.INFO.KV_"+bucket, req)
			if err != nil {
				return nil, fmt.Errorf("keys of %s: %w", bucket, err)
			}
			var resp struct {
				Error *struct {
					Code        int    `json:"code"`
					Description string `json:"description"`
				} `json:"error"`
				Total int `json:"total"`
				State struct {
					Subjects map[string]uint64 `json:"subjects"`
				} `json:"state"`
			}
			if err := json.Unmarshal(msg.Data, &resp); err != nil {
				return nil, fmt.Errorf("keys of %s: %w", bucket, err)
			}
			if e := resp.Error; e != nil {
				return nil, fmt.Errorf("keys of %s: %s (%d)", bucket, e.Description, e.Code)
			}
			before := len(seen)
			for subj := range resp.State.Subjects {
				seen[subj] = true
			}
			total = resp.Total
			if len(seen) >= total || len(seen) == before {
				break
			}
		}
		if len(seen) == total {
			break
		}
	}
	keys := make([]string, 0, len(seen))
	for subj := range seen {
		if key, ok := strings.CutPrefix(subj, base); ok {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// countKeys counts the keys of bucket kv that hold a value.
func (s *Store) countKeys(ctx context.Context, kv jetstream.KeyValue) (int, error) {
	keys, err := s.keysOf(ctx, kv, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, key := range keys {
		_, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			n++
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		default:
			return 0, err
		}
	}
	return n, nil
}

// Rewrite passes each record whose key starts with prefix to change and
// stores what it returns in its place (nil: unchanged), by compare-and-set,
// reading a record again when it changed meanwhile. It returns how many
// records it changed.
func (s *Store) Rewrite(ctx context.Context, prefix string, change func(key string, value []byte) ([]byte, error)) (int, error) {
	entries, err := s.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	changed := 0
	for _, e := range entries {
		for {
			v, err := change(e.Key, e.Value)
			if err != nil || v == nil {
				if err != nil {
					return changed, err
				}
				break
			}
			_, err = s.Update(ctx, e.Key, v, e.Revision)
			if err == nil {
				changed++
				break
			}
			if !errors.Is(err, ErrConflict) {
				return changed, err
			}
			if e, err = s.Get(ctx, e.Key); err != nil {
				return changed, err
			}
		}
	}
	return changed, nil
}

// leaderGet reads the value and revision of key in bucket kv from the
// bucket's stream leader (ErrKeyNotFound when it is absent or deleted).
// The KV API's reads are direct gets, which on a cluster any replica within
// reach of the leader's log may answer, so a read right after a write can
// be stale; a receipt handle checked that way could be refused just after
// it was issued.
func (s *Store) leaderGet(ctx context.Context, kv jetstream.KeyValue, key string) ([]byte, uint64, error) {
	if s.cfg.Replicas <= 1 {
		// One replica: the direct get is the leader's, and quicker.
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil, 0, jetstream.ErrKeyNotFound
		}
		if err != nil {
			return nil, 0, err
		}
		return e.Value(), e.Revision(), nil
	}
	bucket := kv.Bucket()
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + bucket + "." + key})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	msg, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, req)
	if err != nil {
		return nil, 0, err
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", key, err)
	}
	if e := resp.Error; e != nil {
		if e.Code == 404 {
			return nil, 0, jetstream.ErrKeyNotFound
		}
		return nil, 0, fmt.Errorf("read %s: %s (%d)", key, e.Description, e.ErrCode)
	}
	// A deletion or a purge is a record whose operation header says so.
	if op := string(resp.Message.Hdrs); strings.Contains(op, "KV-Operation: DEL") || strings.Contains(op, "KV-Operation: PURGE") {
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return resp.Message.Data, resp.Message.Seq, nil
}
