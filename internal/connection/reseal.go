package connection

import (
	"context"
	"encoding/json"
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
	changed, err = st.Rewrite(ctx, connPrefix, func(key string, value []byte) ([]byte, error) {
		var c Connection
		if err := json.Unmarshal(value, &c); err != nil {
			return nil, fmt.Errorf("connection record %s: %w", key, err)
		}
		n, lost := c.reseal(from, to)
		if lost {
			unreadable++
		}
		if n == 0 {
			return nil, nil
		}
		return json.Marshal(&c)
	})
	return changed, unreadable, err
}

// reseal seals the connection's secrets that open with from again with
// to, and returns how many; lost reports a secret that opens with neither.
func (c *Connection) reseal(from, to *secretbox.Box) (n int, lost bool) {
	return secretbox.Reseal(c.sealed(), from, to)
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
