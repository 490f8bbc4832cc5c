package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkQueueReceiveDelete receives and deletes one message at a time
// from a queue holding n messages: the cost must not grow with n.
func BenchmarkQueueReceiveDelete(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, Config{DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const q = "bench"
			if err := s.OpenQueue(ctx, q); err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 1024)
			fill := func(count int) {
				for i := range count {
					if _, _, err := s.SendToQueue(ctx, q, QueueMessage{ID: fmt.Sprint("m", i, "-", time.Now().UnixNano()), Data: body}); err != nil {
						b.Fatal(err)
					}
				}
			}
			fill(n + b.N)
			o := ReceiveOptions{Max: 1, Visibility: 30 * time.Second}
			b.ResetTimer()
			for range b.N {
				got, err := s.Receive(ctx, q, o)
				if err != nil || len(got) != 1 {
					b.Fatalf("receive: %d, %v", len(got), err)
				}
				if err := s.DeleteReceived(ctx, q, got[0].Handle); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
