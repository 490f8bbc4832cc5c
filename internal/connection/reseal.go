package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"bridgeport/internal/secretbox"
	"bridgeport/internal/store"
)

// Reseal seals every connection secret that opens with from (the previous
// key) again with to (a key rotation) and returns how many connections it
// changed, and how many hold secrets that open with neither key (they stay
// as they are: unreadable, as they were). Secrets that open with to are
// left alone, so a rotation interrupted by a crash is finished by running
// it again. The records are changed in the store directly, by
// compare-and-set; it runs before the service starts.
func Reseal(ctx context.Context, st *store.Store, from, to *secretbox.Box) (changed, unreadable int, err error) {
	entries, err := st.List(ctx, "conn.")
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		n, lost, err := resealRecord(ctx, st, e, from, to)
		if err != nil {
			return changed, unreadable, err
		}
		if n > 0 {
			changed++
		}
		if lost {
			unreadable++
		}
	}
	return changed, unreadable, nil
}

// resealRecord reseals one connection record, reading it again when it
// changed meanwhile.
func resealRecord(ctx context.Context, st *store.Store, e store.Entry, from, to *secretbox.Box) (n int, lost bool, err error) {
	for {
		var c Connection
		if err := json.Unmarshal(e.Value, &c); err != nil {
			return 0, false, fmt.Errorf("connection record %s: %w", e.Key, err)
		}
		if n, lost = c.reseal(from, to); n == 0 {
			return 0, lost, nil
		}
		data, err := json.Marshal(&c)
		if err != nil {
			return 0, false, err
		}
		_, err = st.Update(ctx, e.Key, data, e.Revision)
		if !errors.Is(err, store.ErrConflict) {
			return n, lost, err
		}
		if e, err = st.Get(ctx, e.Key); err != nil {
			return 0, false, err
		}
	}
}

// reseal seals the connection's secrets that open with from again with
// to, and returns how many; lost reports a secret that opens with neither.
func (c *Connection) reseal(from, to *secretbox.Box) (n int, lost bool) {
	for _, p := range c.sealed() {
		if *p == "" {
			continue
		}
		if _, err := to.Open(*p); err == nil {
			continue
		}
		plain, err := from.Open(*p)
		if err != nil {
			lost = true
			continue
		}
		*p = to.Seal(plain)
		n++
	}
	return n, lost
}

// sealed points at every sealed value of the connection.
func (c *Connection) sealed() []*string {
	var out []*string
	if c.Basic != nil {
		out = append(out, &c.Basic.SealedPassword)
	}
	if c.APIKey != nil {
		out = append(out, &c.APIKey.SealedValue)
	}
	if c.OAuth != nil {
		out = append(out, &c.OAuth.SealedClientSecret)
		out = append(out, c.OAuth.Params.sealed()...)
	}
	return append(out, c.Invocation.sealed()...)
}

// sealed points at the values of the parameters marked secret.
func (p *Params) sealed() []*string {
	if p == nil {
		return nil
	}
	var out []*string
	for _, list := range [][]Param{p.Header, p.Query, p.Body} {
		for i := range list {
			if list[i].Secret {
				out = append(out, &list[i].Value)
			}
		}
	}
	return out
}
