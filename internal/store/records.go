package store

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// Records is a watcher's copy of records of the configuration bucket by
// key, decoded when read. Safe for concurrent use; the zero value is ready
// once Log is set (nil logs nothing).
type Records struct {
	Log  *slog.Logger
	mu   sync.RWMutex
	objs map[string]record
	rev  uint64
}

type record struct {
	value []byte
	rev   uint64
}

// Apply records one change from a watch.
func (r *Records) Apply(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.objs == nil {
		r.objs = map[string]record{}
	}
	if e.Deleted {
		delete(r.objs, e.Key)
	} else {
		r.objs[e.Key] = record{value: e.Value, rev: e.Revision}
	}
	r.rev = max(r.rev, e.Revision)
}

// Get decodes the record at key into v and returns its revision; ok is
// false when there is none or it does not decode (which is logged).
func (r *Records) Get(key string, v any) (uint64, bool) {
	r.mu.RLock()
	o, ok := r.objs[key]
	r.mu.RUnlock()
	if !ok {
		return 0, false
	}
	if err := json.Unmarshal(o.value, v); err != nil {
		if r.Log != nil {
			r.Log.Error("unreadable record", "key", key, "error", err)
		}
		return 0, false
	}
	return o.rev, true
}

// Keys returns the keys that start with prefix, sorted.
func (r *Records) Keys(prefix string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var keys []string
	for k := range r.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Revision is the newest revision applied.
func (r *Records) Revision() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rev
}
