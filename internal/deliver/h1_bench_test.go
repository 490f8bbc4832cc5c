package deliver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkInvoke: invocations of 1 KB events from 32 goroutines to a
// keep-alive sink in the same process, through the invoker and, as the
// baseline of the same run, through net/http's client sending the same
// request. cpu-µs/op is the process's CPU per request, the sink's
// included.
//
//	go test -run '^$' -bench Invoke -benchtime 100000x ./internal/deliver
func BenchmarkInvoke(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer sink.Close()
	body := []byte(`{"detail":"` + strings.Repeat("x", 1000) + `"}`)
	run := func(b *testing.B, do func() error) {
		b.SetParallelism(16) // 32 goroutines on 2 cores
		c0, t0 := processCPU(), time.Now()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := do(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(processCPU()-c0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "req/s")
	}
	b.Run("bridgeport", func(b *testing.B) {
		iv := NewInvoker(Options{AllowPrivate: true, AllowHTTP: true})
		inv := &Invocation{Method: "POST", Endpoint: sink.URL + "/hook", Body: body, Auth: Auth{Type: "API_KEY", APIKeyName: "X-Key", APIKeyValue: "k"}}
		run(b, func() error {
			if res := iv.Invoke(context.Background(), inv); !res.OK() {
				return errors.New(res.Message)
			}
			return nil
		})
	})
	b.Run("net-http", func(b *testing.B) {
		cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}, Timeout: Timeout}
		run(b, func() error {
			req, err := http.NewRequest("POST", sink.URL+"/hook", bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header["Content-Type"] = []string{jsonContentType}
			req.Header["User-Agent"] = []string{UserAgent}
			req.Header["Range"] = []string{firstMiB}
			req.Header["Accept-Encoding"] = []string{gzipDeflate}
			req.Header["X-Key"] = []string{"k"}
			resp, err := cl.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return errors.New(resp.Status)
			}
			return nil
		})
	})
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
