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

// Rate limits shared by the nodes: each API destination has a token bucket,
// a record in a memory bucket that the nodes take tokens from, a batch at a
// time, with compare-and-set. It fills at the rate, up to a burst; so over
// any span of time T the nodes together take at most burst + rate*T
// tokens, and traffic within the limit never waits.
const ratesBucket = "bridgeport_rates"

func (s *Store) ensureRates(ctx context.Context) error {
	var err error
	s.ratesKV, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ratesBucket,
		Description: "token buckets of API destinations' rate limits, shared by the nodes",
		History:     1,
		// An idle bucket is full again after burst/rate (a second): the
		// record can go.
		TTL:      10 * time.Second,
		Storage:  jetstream.MemoryStorage,
		Replicas: s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("rates bucket: %w", err)
	}
	return nil
}

// ClaimTokens takes up to want tokens from dest's bucket, which fills at
// rate tokens a second up to burst, at the time now. It returns how many it
// got, and, when none, how long until one is there. Nodes' clocks may
// differ a little: a claim whose now is before the bucket's last update
// adds nothing and never moves the bucket back.
func (s *Store) ClaimTokens(ctx context.Context, dest string, rate, burst, want int, now time.Time) (int, time.Duration, error) {
	const micro = 1_000_000 // tokens are kept in millionths
	key := Token(dest)
	for range 8 {
		e, err := s.ratesKV.Get(ctx, key)
		tokens, last, rev := int64(burst)*micro, now.UnixNano(), uint64(0)
		switch {
		case err == nil:
			rev = e.Revision()
			t, l, _ := strings.Cut(string(e.Value()), " ")
			stored, err1 := strconv.ParseInt(t, 10, 64)
			at, err2 := strconv.ParseInt(l, 10, 64)
			if err1 == nil && err2 == nil {
				if elapsed := now.UnixNano() - at; elapsed > 0 {
					elapsed = min(elapsed, int64(time.Minute)) // the bucket is full long before
					stored += elapsed * int64(rate) / 1000     // nanoseconds * tokens/s, in millionths
				} else {
					last = at
				}
				tokens = min(stored, int64(burst)*micro)
			}
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		default:
			return 0, 0, err
		}
		grant := min(int64(want), tokens/micro)
		if grant <= 0 {
			return 0, time.Duration((micro - tokens) * 1000 / int64(rate)), nil
		}
		val := []byte(strconv.FormatInt(tokens-grant*micro, 10) + " " + strconv.FormatInt(last, 10))
		if rev == 0 {
			_, err = s.ratesKV.Create(ctx, key, val)
		} else {
			_, err = s.ratesKV.Update(ctx, key, val, rev)
		}
		if err == nil {
			return int(grant), 0, nil
		}
		if !conflict(err) {
			return 0, 0, err
		}
	}
	return 0, time.Second / time.Duration(max(rate, 1)), nil // contended: try again shortly
}
