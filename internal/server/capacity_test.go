package server

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/natstest"
)

// BenchmarkCapacity measures what a layout of bridgeport and its store
// ingests and delivers, side by side in one run: one node on the embedded
// engine, one node on a three-server NATS cluster (every stream and
// bucket with 3 replicas), and two nodes on that cluster, the SDK's
// PutEvents calls (10 entries of about 1 KB, 8 callers) going to the
// nodes in turn. One rule sends every event to an API destination on a
// local keep-alive sink. It reports the events accepted per second while
// the calls ran (ingest, with routing and delivery running beside it) and
// the events delivered per second from the first call to the last
// delivery, and the CPU time the process (servers, nodes, callers and
// sink together) spent per event, from the first call to the last
// delivery. Everything shares this machine's cores: a floor for a cluster
// on machines of its own, not its capacity. Run it with
//
//	go test -run '^$' -bench Capacity -benchtime 1500x ./internal/server
func BenchmarkCapacity(b *testing.B) {
	var delivered atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		delivered.Add(1)
	}))
	defer sink.Close()
	var urls []string // the NATS cluster, started for the first layout that needs it
	for _, layout := range []struct {
		name    string
		nodes   int
		cluster bool
	}{{"embedded/nodes=1", 1, false}, {"cluster/nodes=1", 1, true}, {"cluster/nodes=2", 2, true}} {
		if layout.cluster && urls == nil {
			urls = natstest.Cluster(b, 3)
		}
		// The nodes of a layout; the first layout of each store creates the
		// route, which the cluster keeps for the next.
		var nodes []*env
		for i := range layout.nodes {
			e := &env{t: b, dir: b.TempDir()}
			e.cfg = testConfig(e.dir)
			e.cfg.AllowPrivateEndpoints, e.cfg.AllowHTTPEndpoints = true, true
			if layout.cluster {
				e.cfg.NATSURL = strings.Join(urls, ",")
				e.cfg.SecretKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
			}
			e.start()
			nodes = append(nodes, e)
			if i == 0 && (!layout.cluster || layout.nodes == 1) {
				e.routeThrough(e.basicConnection(), sink.URL+"/capacity", 1_000_000)
			}
		}
		detail := fmt.Sprintf(`{"orderId":"ord-1","note":%q}`, strings.Repeat("x", 900))
		entries := make([]types.PutEventsRequestEntry, 10)
		for i := range entries {
			entries[i] = types.PutEventsRequestEntry{Source: aws.String("t"), DetailType: aws.String("Order"), Detail: aws.String(detail)}
		}
		b.Run(layout.name, func(b *testing.B) {
			before, cpu0 := delivered.Load(), cpuTime()
			var next atomic.Int64
			b.SetParallelism(4) // 8 callers on 2 cores
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					eb := nodes[int(next.Add(1))%len(nodes)].eb
					out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
					if err != nil || out.FailedEntryCount != 0 {
						b.Error(out, err)
						return
					}
				}
			})
			ingest := time.Since(start)
			want := before + int64(b.N*len(entries))
			last, lastAt := delivered.Load(), time.Now()
			for last < want {
				time.Sleep(5 * time.Millisecond)
				if n := delivered.Load(); n > last {
					last, lastAt = n, time.Now()
				} else if time.Since(lastAt) > time.Minute {
					b.Fatalf("%d of %d events delivered, none for a minute", last-before, want-before)
				}
			}
			n := float64(b.N * len(entries))
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n, "cpu-µs/event")
			b.ReportMetric(n/ingest.Seconds(), "ingested/s")
			b.ReportMetric(n/lastAt.Sub(start).Seconds(), "delivered/s")
			b.ReportMetric(0, "ns/op")
		})
		for _, e := range nodes {
			e.stop()
		}
	}
	// The cluster's own ceilings for one stream of 3 replicas, 8
	// publishers: the events of a call as one message, each call waiting
	// for its acknowledgement, as PutEvents stores them (every event of a
	// bus goes through one such stream and its leader); and a message per
	// job, ten published together and then awaited, as the router queues a
	// call's deliveries (every delivery goes through the jobs stream).
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "CAPACITY", Subjects: []string{"capacity.>"},
		Storage: jetstream.FileStorage, Replicas: 3}); err != nil {
		b.Fatal(err)
	}
	for _, raw := range []struct {
		name      string
		size, per int // bytes a message, messages a call
	}{{"raw-events-stream/replicas=3", 10 * 1100, 1}, {"raw-jobs-stream/replicas=3", 1100, 10}} {
		b.Run(raw.name, func(b *testing.B) {
			msg := []byte(strings.Repeat("x", raw.size))
			cpu0 := cpuTime()
			b.SetParallelism(4)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				futures := make([]jetstream.PubAckFuture, raw.per)
				for pb.Next() {
					for i := range futures {
						f, err := js.PublishAsync("capacity.x", msg)
						if err != nil {
							b.Error(err)
							return
						}
						futures[i] = f
					}
					for _, f := range futures {
						select {
						case <-f.Ok():
						case err := <-f.Err():
							b.Error(err)
							return
						}
					}
				}
			})
			// Ten events a call either way: a call's worth in one message,
			// or a job each in ten.
			n := float64(b.N * 10)
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n, "cpu-µs/event")
			b.ReportMetric(n/time.Since(start).Seconds(), "ingested/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
