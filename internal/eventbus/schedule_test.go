package eventbus

import (
	"container/heap"
	"context"
	"fmt"
	"testing"
	"time"

	"bridgeport/internal/schedule"
	"bridgeport/internal/store"
)

// BenchmarkScheduleFire fires 10,000 schedules due at the same minute, as
// the lease holder does (events built, stored in batches, heap moved on),
// against the raw engine storing the same events in the same batches.
// Reported per due time; run with -benchtime 5x or more.
func BenchmarkScheduleFire(b *testing.B) {
	const schedules = 10000
	s := newTestService(b)
	expr, err := schedule.Parse("cron(0 * * * ? *)")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	due := time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)
	b.Run("raw-append", func(b *testing.B) {
		for i := range b.N {
			var batch []store.Event
			for j := range schedules {
				batch = append(batch, s.scheduledEvent(fmt.Sprintf("%s%d-%d", s.arns.prefix()+"rule/raw", i, j), due))
				if len(batch) == schedBatch {
					if err := s.st.AppendEvents(ctx, batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*schedules), "ns/due")
	})
	b.Run("scheduler", func(b *testing.B) {
		for i := range b.N {
			sc := &scheduler{s: s, leader: true, until: due.Add(time.Hour), entries: map[schedRef]*schedEntry{}}
			for j := range schedules {
				e := &schedEntry{ref: schedRef{"default", fmt.Sprint(j)}, arn: fmt.Sprintf("%s%d-%d", s.arns.prefix()+"rule/s", i, j), expr: expr, due: due}
				sc.entries[e.ref] = e
				heap.Push(&sc.heap, e)
			}
			sc.fire(ctx, due)
			// The service's own scheduler holds the lease, so this one's
			// renewal fails and it stops; it fired first.
			if !sc.fired.Equal(due) {
				b.Fatalf("not fired: mark %v", sc.fired)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*schedules), "ns/due")
	})
}
