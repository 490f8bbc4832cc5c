package store

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/wait"
)

// consume hands every message of cons to handle, one at a time, until ctx
// ends. When the message iterator fails (a missed heartbeat under load, a
// reconnect), it is logged and replaced: a consumer loop that ends on its
// own would leave its messages waiting forever.
//
// Pull requests expire after pullExpiry rather than nats.go's 30 s: a
// request that waits while the consumer is at its MaxAckPending is at
// times not served after the acknowledgement that frees a slot, and only
// the next request gets the message. A delay tier (MaxAckPending 1) then
// held its jobs for up to 30 s; TestRateLimit caught it.
const pullExpiry = 5 * time.Second

func (s *Store) consume(ctx context.Context, what string, cons jetstream.Consumer, batch int, handle func(jetstream.Msg)) {
	for ctx.Err() == nil {
		it, err := cons.Messages(jetstream.PullMaxMessages(batch), jetstream.PullExpiry(pullExpiry))
		if err != nil {
			s.log.Warn("start consumer", "consumer", what, "error", err)
			wait.For(ctx, time.Second)
			continue
		}
		stop := context.AfterFunc(ctx, it.Stop)
		for {
			m, err := it.Next()
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("consumer interrupted; resuming", "consumer", what, "error", err)
				}
				break
			}
			handle(m)
		}
		stop()
		it.Stop()
		wait.For(ctx, 200*time.Millisecond)
	}
}

// consumeParallel is consume with workers handlers at a time, for work
// whose order does not matter and whose time goes to waiting (on a cluster,
// each acknowledgement of a write waits for a quorum of servers).
func (s *Store) consumeParallel(ctx context.Context, what string, cons jetstream.Consumer, batch, workers int, handle func(jetstream.Msg)) {
	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				handle(m)
			}
		}()
	}
	s.consume(ctx, what, cons, batch, func(m jetstream.Msg) { work <- m })
	close(work)
	wg.Wait()
}
