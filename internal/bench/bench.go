// Package bench is bridgeport's load tool: against a running server it
// creates its own bus, rules, connection, role and API destinations aimed at
// a local HTTP sink, and measures PutEvents throughput, ingestion-to-
// invocation latency at a fixed offered rate (open loop), delivery
// throughput, and a healthy target's latency while a dead target holds a
// retry backlog. It talks to the server through the same AWS APIs as any
// client.
package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
	"bridgeport/internal/wait"
)

// Config says what to measure and where.
type Config struct {
	// Client makes the configuration calls and reads the metrics.
	Client *awsapi.Client
	// Spread, when set, are the nodes PutEvents calls go to, in turn (the
	// nodes of a cluster); empty means Client.
	Spread []*awsapi.Client
	// AccountID is the server's account, for ARNs.
	AccountID string
	Region    string
	// Duration is how long each measurement runs.
	Duration time.Duration
	// Warmup is how long the latency scenario offers its rate before it
	// measures, its figures kept apart (WarmupLatency): a destination
	// nothing has called yet takes a burst in at 16 calls in flight until
	// its calls have proven fast, and some of the first events wait for
	// their slots up to a second. 0: none.
	Warmup time.Duration
	// Batch is the number of entries per PutEvents call; EventSize the
	// approximate size of each event's detail, in bytes.
	Batch, EventSize int
	// Concurrency is the number of PutEvents callers of the closed-loop
	// measurements (ingest, delivery).
	Concurrency int
	// Rate is the offered load of the latency measurements, events/s.
	Rate int
	// RateLimit is the InvocationRateLimitPerSecond of the destinations
	// bench creates (0: 1,000,000, none to speak of).
	RateLimit int
	// Targets is the number of targets of the delivery rule (1 to 5).
	Targets int
	// Backlog is the number of events left waiting on dead destinations,
	// spread over DeadDestinations of them (half refusing connections,
	// half never answering; default 2).
	Backlog          int
	DeadDestinations int
	// Archive is the number of events the replay scenario archives and
	// replays.
	Archive int
	// Rules is the number of rules the rules scenario loads on its bus (the
	// server's --max-rules-per-bus must allow them).
	Rules int
	// Connections and Events are what the restart scenario stores
	// besides Rules rules: connections, and events put (10 a call).
	Connections, Events int
	// Restart, when set, kills the server (SIGKILL) and starts it again on
	// the same data; it returns the new server's client and when the new
	// process started. Nil: the restart scenario cannot run (a server
	// bench did not start).
	Restart func(ctx context.Context) (*awsapi.Client, time.Time, error)
	// RawEngine, when set, is where the ingest scenario opens a store of
	// its own (the engine bridgeport embeds, with the server's settings)
	// to measure the engine's own rate in the same run: the same envelopes
	// published to the same stream by as many callers, with no HTTP, no
	// SigV4, no decoding and no router. Nil: not measured (a server
	// bench did not start).
	RawEngine *store.Config
	// ServerPID, when known, lets the backlog measurement read the server's
	// memory.
	ServerPID int
	// Progress receives a line a second while a measurement runs;
	// ProgressInPlace rewrites one line (for a terminal).
	Progress        io.Writer
	ProgressInPlace bool
}

// Result is one measurement.
type Result struct {
	Scenario string  `json:"scenario"`
	Seconds  float64 `json:"seconds"`
	// ingest
	Entries       int     `json:"entries,omitempty"`
	EntriesPerSec float64 `json:"entriesPerSecond,omitempty"`
	CallP50Ms     float64 `json:"callP50Ms,omitempty"`
	CallP99Ms     float64 `json:"callP99Ms,omitempty"`
	// The CPU time per event accepted of the server (when bench started
	// it) and of the load tool itself, which share the machine.
	ServerCPUMicros float64 `json:"serverCpuMicrosPerEvent,omitempty"`
	ToolCPUMicros   float64 `json:"toolCpuMicrosPerEvent,omitempty"`
	Failed          int     `json:"failedEntries,omitempty"`
	// latency (ingestion to arrival at the sink)
	OfferedRate int           `json:"offeredRate,omitempty"`
	Latency     *Distribution `json:"latency,omitempty"`
	// SendLag is how late the load tool's timer started each call after
	// its due time: latencies are timed from the start (see openLoop).
	SendLag *Distribution `json:"sendLag,omitempty"`
	Missing int           `json:"missing,omitempty"`
	// WarmupLatency is the latency scenario's warm-up (Config.Warmup),
	// measured apart.
	WarmupLatency *Distribution `json:"warmupLatency,omitempty"`
	// delivery: Deliveries over Seconds, from the first PutEvents call to
	// the last delivery, whether or not the server kept up with ingest.
	Deliveries       int     `json:"deliveries,omitempty"`
	DeliveriesPerSec float64 `json:"deliveriesPerSecond,omitempty"`
	// The deliveries left when ingest stopped, how long they took to
	// arrive, and their rate (with nothing else running: the delivery rate,
	// when the backlog is large; none when the server kept up).
	DrainedDeliveries int     `json:"drainedDeliveries,omitempty"`
	DrainSeconds      float64 `json:"drainSeconds,omitempty"`
	DrainedPerSec     float64 `json:"drainedPerSecond,omitempty"`
	// backlog
	BacklogEvents      int           `json:"backlogEvents,omitempty"`
	BaselineLatency    *Distribution `json:"baselineLatency,omitempty"`
	ServerRSSBytes     int64         `json:"serverRssBytes,omitempty"`
	ServerPeakBytes    int64         `json:"serverPeakRssBytes,omitempty"`
	P99RatioToBaseline float64       `json:"p99RatioToBaseline,omitempty"`
	DeadDestinations   int           `json:"deadDestinations,omitempty"`
	// replay: the archive's events, the replay's time from start to end
	// (as DescribeReplay reports it) and its rate, then how long the
	// replayed deliveries took to arrive.
	ArchivedEvents   int     `json:"archivedEvents,omitempty"`
	ReplaySeconds    float64 `json:"replaySeconds,omitempty"`
	ReplayedPerSec   float64 `json:"replayedPerSecond,omitempty"`
	ReplayDeliveries int     `json:"replayDeliveries,omitempty"`
	ReplayDrainSecs  float64 `json:"replayDeliveredSeconds,omitempty"`
	// The server's resident memory when the replay started, and its peak
	// from then until every replayed delivery arrived (the fill's peak
	// apart; none where the kernel cannot reset a process's peak).
	ReplayStartRSSBytes int64 `json:"replayStartRssBytes,omitempty"`
	ReplayPeakRSSBytes  int64 `json:"replayPeakRssBytes,omitempty"`
	// ingest and delivery, with RawEngine: the engine's own rate in the
	// same run (storing the events; consuming and acknowledging as many
	// jobs), and bridgeport's as a ratio of it.
	RawEntriesPerSec float64 `json:"rawEntriesPerSecond,omitempty"`
	// delivery: this machine's plain HTTP rate to the sink in the same run
	// (as many keep-alive clients as the targets' calls in flight).
	HTTPCeilingPerSec float64 `json:"httpCeilingPerSecond,omitempty"`
	RawRatio          float64 `json:"ratioToRaw,omitempty"`
	// RawBatchedPerSec is the engine's rate storing each call's events as
	// one message, as bridgeport does (measured after, for half the
	// duration).
	RawBatchedPerSec float64 `json:"rawBatchedEntriesPerSecond,omitempty"`
	// iam: ingest signed by the root key against the same signed by an
	// IAM user's key, whose every entry is authorized.
	RootEntriesPerSec float64 `json:"rootEntriesPerSecond,omitempty"`
	UserToRootRatio   float64 `json:"userToRootRatio,omitempty"`
	// rules: loading Rules rules one PutRule at a time (every call, and
	// the last tenth), then each kind of change on the full bus, while
	// events flow to a rule of the same bus (Latency, against
	// BaselineLatency before the changes).
	Rules       int                      `json:"rules,omitempty"`
	LoadSeconds float64                  `json:"loadSeconds,omitempty"`
	LoadCalls   *Distribution            `json:"loadCalls,omitempty"`
	LoadLast    *Distribution            `json:"loadLastTenth,omitempty"`
	Changes     map[string]*Distribution `json:"changes,omitempty"`
	// restart: the state stored (Rules, Connections, Events), then the
	// time from the new process's start to its first answer to an API
	// call (DescribeRule).
	Connections    int     `json:"connections,omitempty"`
	Events         int     `json:"events,omitempty"`
	FillSeconds    float64 `json:"fillSeconds,omitempty"`
	RestartSeconds float64 `json:"restartSeconds,omitempty"`
	// Checks are pass/fail lines against the project's targets.
	Checks []Check `json:"checks,omitempty"`
}

// Check is one pass/fail line of a measurement.
type Check struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// Distribution summarises latencies, in milliseconds.
type Distribution struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

func distribution(samples []time.Duration) *Distribution {
	if len(samples) == 0 {
		return &Distribution{}
	}
	s := append([]time.Duration(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		i = min(max(i, 0), len(s)-1)
		return float64(s[i].Microseconds()) / 1000
	}
	return &Distribution{Count: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(s[len(s)-1].Microseconds()) / 1000}
}

// Runner runs measurements against one server.
type Runner struct {
	cfg  Config
	sink *sink
	id   string // this run's suffix for resource names
	role string
	conn string
	hang net.Listener // the endpoint that never answers, once made
	// putAs, when set, makes the PutEvents calls instead of the root
	// client (the iam scenario's IAM user).
	putAs *awsapi.Client
	pad   string // the filler of each event's detail, to EventSize
}

// New starts the sink and returns a Runner; Close stops the sink.
func New(cfg Config) (*Runner, error) {
	if cfg.Batch < 1 || cfg.Batch > 10 {
		return nil, errors.New("batch must be 1 to 10")
	}
	if cfg.Targets < 1 || cfg.Targets > 5 {
		return nil, errors.New("targets must be 1 to 5")
	}
	s, err := newSink()
	if err != nil {
		return nil, err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Runner{cfg: cfg, sink: s, id: hex.EncodeToString(b[:]), pad: strings.Repeat("x", max(cfg.EventSize-60, 0))}, nil
}

// Close stops the sink.
func (r *Runner) Close() {
	r.sink.close()
	if r.hang != nil {
		r.hang.Close()
	}
}

func (r *Runner) call(ctx context.Context, op string, in, out any) error {
	return r.cfg.Client.Call(ctx, "events", "1.1", "AWSEvents."+op, in, out)
}

// put makes the n-th PutEvents call of a measurement, through the node
// whose turn it is.
func (r *Runner) put(ctx context.Context, n int, entries json.RawMessage, out any) error {
	c := r.cfg.Client
	switch {
	case r.putAs != nil:
		c = r.putAs
	case len(r.cfg.Spread) > 0:
		c = r.cfg.Spread[n%len(r.cfg.Spread)]
	}
	return c.Call(ctx, "events", "1.1", "AWSEvents.PutEvents", entries, out)
}

func (r *Runner) progress(format string, args ...any) {
	switch {
	case r.cfg.Progress == nil:
	case r.cfg.ProgressInPlace:
		fmt.Fprintf(r.cfg.Progress, "\r"+format+"\033[K", args...)
	default:
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

func (r *Runner) endProgress() {
	if r.cfg.Progress != nil && r.cfg.ProgressInPlace {
		fmt.Fprintln(r.cfg.Progress)
	}
}

// setup creates what every measurement shares: a connection and a role
// that may invoke every API destination.
func (r *Runner) setup(ctx context.Context) error {
	if r.conn != "" {
		return nil
	}
	var conn struct{ ConnectionArn string }
	if err := r.call(ctx, "CreateConnection", map[string]any{"Name": "bench-" + r.id, "AuthorizationType": "API_KEY",
		"AuthParameters": map[string]any{"ApiKeyAuthParameters": map[string]any{"ApiKeyName": "x-bench", "ApiKeyValue": "bench-" + r.id}}}, &conn); err != nil {
		return fmt.Errorf("create connection: %w", err)
	}
	r.conn = conn.ConnectionArn
	role := "bench-" + r.id
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	perm := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:InvokeApiDestination","Resource":"*"}]}`
	if err := r.iam(ctx, "CreateRole", "RoleName", role, "AssumeRolePolicyDocument", trust); err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	if err := r.iam(ctx, "PutRolePolicy", "RoleName", role, "PolicyName", "invoke", "PolicyDocument", perm); err != nil {
		return fmt.Errorf("role policy: %w", err)
	}
	r.role = "arn:aws:iam::" + r.cfg.AccountID + ":role/" + role
	// Wait until the connection is AUTHORIZED (BASIC and API_KEY are at
	// once; the check keeps this honest).
	var desc struct{ ConnectionState string }
	if err := r.call(ctx, "DescribeConnection", map[string]any{"Name": "bench-" + r.id}, &desc); err != nil {
		return err
	}
	if desc.ConnectionState != "AUTHORIZED" {
		return fmt.Errorf("connection is %s", desc.ConnectionState)
	}
	return nil
}

// iam calls an IAM action with form parameters given as name, value pairs.
func (r *Runner) iam(ctx context.Context, action string, kv ...string) error {
	form := "Action=" + action + "&Version=2010-05-08"
	for i := 0; i+1 < len(kv); i += 2 {
		form += "&" + kv[i] + "=" + urlEscape(kv[i+1])
	}
	return r.cfg.Client.Form(ctx, "iam", form)
}

func urlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// rule creates a bus-wide rule for source with a target per path of the
// sink (or per endpoint given), and returns the bus name.
func (r *Runner) rule(ctx context.Context, name, source string, endpoints []string) (string, error) {
	return r.ruleOn(ctx, "bench-"+r.id, name, source, endpoints)
}

// ruleOn is rule on the given bus.
func (r *Runner) ruleOn(ctx context.Context, bus, name, source string, endpoints []string) (string, error) {
	if err := r.call(ctx, "CreateEventBus", map[string]any{"Name": bus}, nil); err != nil {
		var aerr *awsapi.Error
		if !errors.As(err, &aerr) || aerr.Code != awsapi.CodeAlreadyExists {
			return "", fmt.Errorf("create bus: %w", err)
		}
	}
	if err := r.call(ctx, "PutRule", map[string]any{"Name": name, "EventBusName": bus, "EventPattern": `{"source":["` + source + `"]}`}, nil); err != nil {
		return "", fmt.Errorf("put rule: %w", err)
	}
	var targets []map[string]any
	for i, ep := range endpoints {
		dname := fmt.Sprintf("%s-%s-%d", name, r.id, i)
		var dest struct{ ApiDestinationArn string }
		if err := r.call(ctx, "CreateApiDestination", map[string]any{"Name": dname, "ConnectionArn": r.conn, "InvocationEndpoint": ep,
			"HttpMethod": "POST", "InvocationRateLimitPerSecond": cmp.Or(r.cfg.RateLimit, 1000000)}, &dest); err != nil {
			return "", fmt.Errorf("create API destination: %w", err)
		}
		targets = append(targets, map[string]any{"Id": strconv.Itoa(i), "Arn": dest.ApiDestinationArn, "RoleArn": r.role})
	}
	if len(targets) > 0 {
		var out struct{ FailedEntryCount int }
		if err := r.call(ctx, "PutTargets", map[string]any{"Rule": name, "EventBusName": bus, "Targets": targets}, &out); err != nil || out.FailedEntryCount != 0 {
			return "", fmt.Errorf("put targets: %v (%d failed)", err, out.FailedEntryCount)
		}
	}
	return bus, nil
}

// entries builds a PutEvents batch whose details carry sent (unix
// nanoseconds) and are padded to the event size.
func (r *Runner) entries(bus, source string, sent time.Time) json.RawMessage {
	return r.entriesOf(r.cfg.Batch, bus, source, sent)
}

// entriesOf is entries with n of them.
func (r *Runner) entriesOf(n int, bus, source string, sent time.Time) json.RawMessage {
	// Built as bytes rather than with encoding/json: the load tool shares
	// the machine with the server, and what it spends is not the server's.
	entry := func(b []byte) []byte {
		b = append(b, `{"EventBusName":`...)
		b = strconv.AppendQuote(b, bus)
		b = append(b, `,"Source":`...)
		b = strconv.AppendQuote(b, source)
		b = append(b, `,"DetailType":"bench","Detail":"{\"sent\":`...)
		b = strconv.AppendInt(b, sent.UnixNano(), 10)
		b = append(b, `,\"pad\":\"`...)
		b = append(b, r.pad...)
		return append(b, `\"}"}`...)
	}
	body := make([]byte, 0, n*(len(r.pad)+len(bus)+len(source)+120)+16)
	body = append(body, `{"Entries":[`...)
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		body = entry(body)
	}
	return append(body, "]}"...)
}

type putResult struct {
	FailedEntryCount int
	Entries          []struct{ EventId, ErrorCode string }
}

// closedLoop runs PutEvents callers as fast as they go for the duration,
// and returns the entries accepted and failed, and the call latencies.
func (r *Runner) closedLoop(ctx context.Context, label, bus, source string) (int, int, []time.Duration, time.Duration, error) {
	var accepted, failed atomic.Int64
	var mu sync.Mutex
	var calls []time.Duration
	var firstErr error
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for caller := range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				var out putResult
				err := r.put(ctx, caller, r.entries(bus, source, t0), &out)
				if ctx.Err() != nil {
					return
				}
				d := time.Since(t0)
				mu.Lock()
				calls = append(calls, d)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					failed.Add(int64(r.cfg.Batch))
					continue
				}
				accepted.Add(int64(r.cfg.Batch - out.FailedEntryCount))
				failed.Add(int64(out.FailedEntryCount))
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			el := time.Since(start)
			r.progress("%s: %s, %d entries, %.0f/s, %d deliveries", label, el.Round(time.Second), accepted.Load(),
				float64(accepted.Load())/el.Seconds(), r.sink.count())
		}
	}
	r.endProgress()
	elapsed := time.Since(start)
	if accepted.Load() == 0 && firstErr != nil {
		return 0, 0, nil, elapsed, firstErr
	}
	return int(accepted.Load()), int(failed.Load()), calls, elapsed, nil
}

// Ingest measures PutEvents throughput: closed-loop callers, a bus with no
// rules, so that what is measured is durable acceptance.
func (r *Runner) Ingest(ctx context.Context) (Result, error) {
	if err := r.setup(ctx); err != nil {
		return Result{}, err
	}
	bus, err := r.rule(ctx, "ingest", "bench.ingest.unmatched", nil)
	if err != nil {
		return Result{}, err
	}
	var raw *store.Store
	if r.cfg.RawEngine != nil {
		if raw, err = store.Open(ctx, *r.cfg.RawEngine); err != nil {
			return Result{}, fmt.Errorf("raw engine: %w", err)
		}
		defer raw.Close()
	}
	// With the raw engine: its first half, bridgeport, its second half,
	// so that the machine's drift falls on both alike.
	var rawN int
	var rawTime time.Duration
	rawHalf := func() error {
		n, d, err := r.rawIngest(ctx, raw, bus, raw.AppendEventsSingly)
		rawN, rawTime = rawN+n, rawTime+d
		return err
	}
	if raw != nil {
		if err := rawHalf(); err != nil {
			return Result{}, err
		}
	}
	server0, tool0 := cpuTime(r.cfg.ServerPID), cpuTime(os.Getpid())
	n, failed, calls, elapsed, err := r.closedLoop(ctx, "ingest", bus, "bench.ingest")
	if err != nil {
		return Result{}, err
	}
	server1, tool1 := cpuTime(r.cfg.ServerPID), cpuTime(os.Getpid())
	d := distribution(calls)
	res := Result{Scenario: "ingest", Seconds: elapsed.Seconds(), Entries: n, Failed: failed, EntriesPerSec: float64(n) / elapsed.Seconds(),
		CallP50Ms: d.P50, CallP99Ms: d.P99}
	if n > 0 {
		if r.cfg.ServerPID > 0 {
			res.ServerCPUMicros = float64((server1 - server0).Microseconds()) / float64(n)
		}
		res.ToolCPUMicros = float64((tool1 - tool0).Microseconds()) / float64(n)
	}
	res.Checks = []Check{{Name: "ingest of at least 50,000 events/s", Pass: res.EntriesPerSec >= 50000, Detail: fmt.Sprintf("%.0f events/s", res.EntriesPerSec)}}
	if raw != nil {
		if err := rawHalf(); err != nil {
			return Result{}, err
		}
		res.RawEntriesPerSec = float64(rawN) / rawTime.Seconds()
		res.RawRatio = res.EntriesPerSec / res.RawEntriesPerSec
		// And the engine storing a call's events as bridgeport does, one
		// message per bus: what is left is bridgeport's own cost.
		n, d, err := r.rawIngest(ctx, raw, bus, raw.AppendEvents)
		if err != nil {
			return Result{}, err
		}
		res.RawBatchedPerSec = float64(n) / d.Seconds()
		res.Checks = append(res.Checks, Check{Name: "ingest at least half the raw engine's rate", Pass: res.RawRatio >= 0.5,
			Detail: fmt.Sprintf("x%.3f of %.0f events/s", res.RawRatio, res.RawEntriesPerSec)})
	}
	return res, nil
}

// rawIngest is closedLoop against the raw engine, for half the duration:
// as many callers, each storing calls' worth of the same envelopes (an id,
// a time, the same detail) with appendFn and waiting for their
// acknowledgements, as PutEvents does. It returns the events stored and
// the time taken.
func (r *Runner) rawIngest(ctx context.Context, st *store.Store, bus string, appendFn func(context.Context, []store.Event) error) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration/2)
	defer cancel()
	pad := r.pad
	var stored atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for caller := range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id [16]byte
			for i := 0; ctx.Err() == nil; i++ {
				now := time.Now()
				events := make([]store.Event, r.cfg.Batch)
				for k := range events {
					eid, data := r.rawEnvelope(&id, "bench.ingest", now, pad)
					events[k] = store.Event{ID: eid, Bus: bus, Ingested: now, Data: data}
				}
				if err := appendFn(ctx, events); err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
					}
					return
				}
				stored.Add(int64(len(events)))
				if caller == 0 && i%200 == 0 {
					r.progress("ingest, raw engine: %s, %d events stored", time.Since(start).Round(time.Second), stored.Load())
				}
			}
		}()
	}
	wg.Wait()
	r.endProgress()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, 0, fmt.Errorf("raw engine: %w", err)
	}
	return int(stored.Load()), time.Since(start), nil
}

// IngestIAM measures what authorization costs PutEvents: the ingest
// measurement signed by the root key (never authorized) and by an IAM
// user's key (each entry authorized against the user's policy, with a
// condition on events:source), in four alternating quarters of the
// duration (root, user, user, root), so that the machine's drift falls on
// both alike.
func (r *Runner) IngestIAM(ctx context.Context) (Result, error) {
	if err := r.setup(ctx); err != nil {
		return Result{}, err
	}
	bus, err := r.rule(ctx, "ingest-iam", "bench.ingest.unmatched", nil)
	if err != nil {
		return Result{}, err
	}
	user := "bench-" + r.id
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:PutEvents","Resource":"arn:aws:events:` + r.cfg.Region + `:` +
		r.cfg.AccountID + `:event-bus/` + bus + `","Condition":{"StringLike":{"events:source":"bench.*"}}}]}`
	if err := r.iam(ctx, "CreateUser", "UserName", user); err != nil {
		return Result{}, fmt.Errorf("create user: %w", err)
	}
	if err := r.iam(ctx, "PutUserPolicy", "UserName", user, "PolicyName", "put", "PolicyDocument", doc); err != nil {
		return Result{}, fmt.Errorf("user policy: %w", err)
	}
	var key struct {
		ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := r.cfg.Client.FormXML(ctx, "iam", "Action=CreateAccessKey&Version=2010-05-08&UserName="+user, &key); err != nil {
		return Result{}, fmt.Errorf("create access key: %w", err)
	}
	userClient := *r.cfg.Client
	userClient.AccessKeyID, userClient.SecretAccessKey = key.ID, key.Secret
	defer func() { r.putAs = nil }()
	quarter := r.cfg
	quarter.Duration = r.cfg.Duration / 4
	saved := r.cfg
	r.cfg = quarter
	defer func() { r.cfg = saved }()
	var entries [2]int
	var seconds [2]float64
	var failed int
	for i, asUser := range []bool{false, true, true, false} {
		r.putAs = nil
		label := fmt.Sprintf("ingest-iam %d/4 as root", i+1)
		if asUser {
			r.putAs = &userClient
			label = fmt.Sprintf("ingest-iam %d/4 as an IAM user", i+1)
		}
		n, f, _, elapsed, err := r.closedLoop(ctx, label, bus, "bench.ingest")
		if err != nil {
			return Result{}, err
		}
		k := 0
		if asUser {
			k = 1
		}
		entries[k] += n
		seconds[k] += elapsed.Seconds()
		failed += f
	}
	root, asUser := float64(entries[0])/seconds[0], float64(entries[1])/seconds[1]
	res := Result{Scenario: "iam", Seconds: seconds[0] + seconds[1], Entries: entries[1], Failed: failed, EntriesPerSec: asUser,
		RootEntriesPerSec: root, UserToRootRatio: asUser / root}
	res.Checks = append(res.Checks, Check{Name: "authorization costs PutEvents at most 5%", Pass: res.UserToRootRatio >= 0.95,
		Detail: fmt.Sprintf("%.0f events/s as an IAM user, %.0f as root: x%.3f", asUser, root, res.UserToRootRatio)})
	return res, nil
}

// maxTimerLag is the most of a call's lag after its due time that is the
// timer's (see openLoop): over 99% of the lags measured on the idle machine
// were under 1.3 ms.
const maxTimerLag = 2 * time.Millisecond

// openLoop offers rate events/s for the duration: calls leave at fixed
// times whatever the previous ones took, and each event is timed from its
// call's due time (give or take the timer's lag, below), so a slow server
// cannot hide its delays (no coordinated omission). It returns the number
// of events sent.
//
// Each event carries its latency's zero: the moment the loop woke for its
// call, which is its due time plus the lag of this process's timer, but
// at most maxTimerLag after the due time. Go's timers on Linux wake up to
// a millisecond late (the runtime's wait has millisecond resolution),
// which is the load tool's, not the server's; the lags are returned, for
// the report. Any later start counts in the latency: a loop held back
// because 512 calls are in flight (a server too slow to answer), or a
// machine that stalled, is measured, not hidden.
func (r *Runner) openLoop(ctx context.Context, label, bus, source string, rate int, d time.Duration) (int, []time.Duration, error) {
	callsPerSec := float64(rate) / float64(r.cfg.Batch)
	interval := time.Duration(float64(time.Second) / callsPerSec)
	total := int(d.Seconds() * callsPerSec)
	start := time.Now()
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 512)
	var firstErr atomic.Value
	lags := make([]time.Duration, 0, total)
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return int(sent.Load()), lags, ctx.Err()
			}
		}
		at := time.Now()
		lags = append(lags, at.Sub(due))
		if limit := due.Add(maxTimerLag); at.After(limit) {
			at = limit
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var out putResult
			if err := r.put(ctx, i, r.entries(bus, source, at), &out); err != nil {
				failed.Add(int64(r.cfg.Batch))
				firstErr.CompareAndSwap(nil, err)
				return
			}
			sent.Add(int64(r.cfg.Batch - out.FailedEntryCount))
		}()
		if i%int(max(callsPerSec, 1)) == 0 {
			r.progress("%s: %s, %d events sent, %d arrived", label, time.Since(start).Round(time.Second), sent.Load(), r.sink.count())
		}
	}
	wg.Wait()
	r.endProgress()
	if err, _ := firstErr.Load().(error); err != nil && sent.Load() == 0 {
		return 0, lags, err
	}
	return int(sent.Load()), lags, nil
}

// Latency measures ingestion to arrival at the sink at the offered rate.
func (r *Runner) Latency(ctx context.Context) (Result, error) {
	if err := r.setup(ctx); err != nil {
		return Result{}, err
	}
	source := "bench.latency"
	bus, err := r.rule(ctx, "latency", source, []string{r.sink.url("/latency")})
	if err != nil {
		return Result{}, err
	}
	var warmup *Distribution
	if r.cfg.Warmup > 0 {
		run, err := r.measureLatency(ctx, "latency warm-up", bus, source, "/latency", r.cfg.Rate, r.cfg.Warmup)
		if err != nil {
			return Result{}, err
		}
		warmup = run.dist
	}
	run, err := r.measureLatency(ctx, "latency", bus, source, "/latency", r.cfg.Rate, r.cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	return Result{Scenario: "latency", Seconds: run.elapsed.Seconds(), OfferedRate: r.cfg.Rate, Entries: run.sent, Latency: run.dist,
		SendLag: run.lag, Missing: run.missing, WarmupLatency: warmup}, nil
}

// latencyRun is one open-loop latency measurement: the events' latencies,
// the load tool's timer lag (see openLoop), the events sent and those that
// never arrived, and how long it took.
type latencyRun struct {
	dist, lag     *Distribution
	sent, missing int
	elapsed       time.Duration
}

func (r *Runner) measureLatency(ctx context.Context, label, bus, source, path string, rate int, d time.Duration) (latencyRun, error) {
	r.sink.reset(path)
	start := time.Now()
	sent, lags, err := r.openLoop(ctx, label, bus, source, rate, d)
	if err != nil {
		return latencyRun{}, err
	}
	r.await(ctx, label+": arrived", sent, 20*time.Millisecond, func() int { return r.sink.arrived(path) })
	samples := r.sink.samples(path)
	return latencyRun{dist: distribution(samples), lag: distribution(lags), sent: sent, missing: max(sent-len(samples), 0),
		elapsed: time.Since(start)}, nil
}

// stall is how long a measurement waits for the server's next step (an
// event delivered, a backlog event tried) before it stops waiting.
const stall = 30 * time.Second

// await polls count every interval until it reaches want, with a progress
// line a second, and returns it. It stops waiting when count has not grown
// for stall (a slow server is waited for, however long it takes, and a
// stuck one is not), or when ctx ends.
func (r *Runner) await(ctx context.Context, label string, want int, interval time.Duration, count func() int) int {
	start := time.Now()
	n, progress, report := count(), start, start
	for n < want && time.Since(progress) < stall && ctx.Err() == nil {
		time.Sleep(interval)
		if c := count(); c > n {
			n, progress = c, time.Now()
		}
		if time.Since(report) >= time.Second {
			report = time.Now()
			r.progress("%s: %d of %d (%s)", label, n, want, time.Since(start).Round(time.Second))
		}
	}
	r.endProgress()
	return n
}

// Delivery measures successful deliveries per second to the sink: closed
// loop PutEvents to a rule with several targets, so that deliveries are a
// multiple of ingest, counted from the first PutEvents call to the last
// delivery. When delivery is slower than ingest, a backlog is left when
// the callers stop; its drain, with nothing else running, is measured
// too.
func (r *Runner) Delivery(ctx context.Context) (Result, error) {
	if err := r.setup(ctx); err != nil {
		return Result{}, err
	}
	source := "bench.delivery"
	var eps []string
	for i := range r.cfg.Targets {
		eps = append(eps, r.sink.url(fmt.Sprintf("/delivery/%d", i)))
	}
	bus, err := r.rule(ctx, "delivery", source, eps)
	if err != nil {
		return Result{}, err
	}
	before, start := r.sink.mark()
	n, failed, _, _, err := r.closedLoop(ctx, "delivery", bus, source)
	if err != nil {
		return Result{}, err
	}
	// (Calls cut short at the end of the window may still have been
	// stored, so a few more deliveries than counted can arrive.)
	want := n * r.cfg.Targets
	atDrain, drainStart := r.sink.mark()
	atDrain -= before
	got := r.await(ctx, "delivery: delivered", want, 5*time.Millisecond, func() int { return r.sink.count() - before })
	res := Result{Scenario: "delivery", Entries: n, Failed: failed, Deliveries: got, Missing: max(want-got, 0)}
	if got == 0 {
		return res, nil
	}
	_, last := r.sink.last()
	res.Seconds = last.Sub(start).Seconds()
	res.DeliveriesPerSec = float64(got) / res.Seconds
	if drained := got - atDrain; drained > 0 {
		res.DrainedDeliveries, res.DrainSeconds = drained, last.Sub(drainStart).Seconds()
		res.DrainedPerSec = float64(drained) / res.DrainSeconds
	}
	measured := res.DeliveriesPerSec
	if res.DrainSeconds >= 1 {
		measured = res.DrainedPerSec
	}
	res.HTTPCeilingPerSec = r.httpCeiling(ctx, 16*r.cfg.Targets, min(max(r.cfg.Duration/2, time.Second), 5*time.Second))
	detail := fmt.Sprintf("%.0f deliveries/s, x%.3f of plain HTTP's %.0f requests/s", measured, measured/res.HTTPCeilingPerSec, res.HTTPCeilingPerSec)
	if r.cfg.RawEngine != nil {
		rate, err := r.rawConsume(ctx, got)
		if err != nil {
			return Result{}, err
		}
		res.RawEntriesPerSec = rate
		res.RawRatio = measured / rate
		// A delivery with an engine message of its own costs at least a
		// plain request and the engine's take and acknowledgement: the
		// rate of the two together. Queued jobs share a message (jobs in
		// batches), so a drain can pass it.
		both := 1 / (1/res.HTTPCeilingPerSec + 1/rate)
		detail += fmt.Sprintf(", x%.3f of the raw engine's %.0f jobs/s, x%.3f of a plain request and a raw job each (%.0f/s)", res.RawRatio, rate, measured/both, both)
	}
	res.Checks = []Check{{Name: "delivery of at least 20,000/s", Pass: measured >= 20000, Detail: detail}}
	return res, nil
}

// httpCeiling measures this machine's plain HTTP rate to the sink: conc
// keep-alive clients (net/http, the transport bridgeport's invocations
// use) posting the same 1 KB events for d, with no store and no server in
// between. Delivery cannot be faster than this, as every delivery is such
// a request: it is the ceiling a delivery figure is read against. It
// returns requests per second.
func (r *Runner) httpCeiling(ctx context.Context, conc int, d time.Duration) float64 {
	r.progress("delivery: plain HTTP to the sink, %d clients, %s", conc, d)
	defer r.endProgress()
	pad := r.pad
	body := []byte(fmt.Sprintf(`{"version":"0","id":"ceiling","detail-type":"bench","source":"bench.delivery","detail":{"pad":"%s"}}`, pad))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	url := r.sink.url("/ceiling")
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("Content-Type", "application/json; charset=utf-8")
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// rawEnvelope builds an event as the server would store it, for the raw
// engine's measurements: a new random id (id is the caller's buffer), the
// given source, sent at now, with pad as its detail's padding.
func (r *Runner) rawEnvelope(id *[16]byte, source string, now time.Time, pad string) (string, []byte) {
	_, _ = rand.Read(id[:])
	eid := fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:])
	data := fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"bench","source":%q,"account":%q,"time":%q,"region":%q,"resources":[],"detail":{"sent":%d,"pad":"%s"}}`,
		eid, source, r.cfg.AccountID, now.UTC().Format(time.RFC3339), r.cfg.Region, now.UnixNano(), pad)
	return eid, []byte(data)
}

// rawConsume measures the raw engine consuming and acknowledging n jobs
// of the same events (a store of its own, RawEngine's settings): it
// queues them as the router does (a call's 10 events times the targets at
// a time), then takes them with a plain pull consumer. It returns jobs per
// second.
func (r *Runner) rawConsume(ctx context.Context, n int) (float64, error) {
	st, err := store.Open(ctx, *r.cfg.RawEngine)
	if err != nil {
		return 0, fmt.Errorf("raw engine: %w", err)
	}
	defer st.Close()
	pad := r.pad
	per := 10 * max(r.cfg.Targets, 1)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id [16]byte
			for ctx.Err() == nil {
				k := int(next.Add(int64(per))) - per
				if k >= n {
					return
				}
				now := time.Now()
				jobs := make([]store.Job, 0, per)
				for e := 0; e < 10 && len(jobs) < per; e++ {
					eid, data := r.rawEnvelope(&id, "bench.delivery", now, pad)
					for t := range max(r.cfg.Targets, 1) {
						jobs = append(jobs, store.Job{EventID: eid, Bus: "bench", RuleArn: "arn:aws:events:" + r.cfg.Region + ":" + r.cfg.AccountID + ":rule/bench/delivery",
							TargetID: strconv.Itoa(t), Ingested: now, Event: data})
					}
				}
				if err := st.AppendJobs(ctx, jobs); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, fmt.Errorf("raw engine: %w", err)
	}
	r.progress("delivery, raw engine: consuming %d jobs", n)
	got, d, err := st.ConsumeJobsRaw(ctx, n)
	r.endProgress()
	if err != nil || got == 0 || d <= 0 {
		return 0, fmt.Errorf("raw engine consumed %d jobs: %v", got, err)
	}
	return float64(got) / d.Seconds(), nil
}

// Backlog leaves Backlog events waiting on dead destinations (half refuse
// connections, half accept and never answer, so their calls time out),
// then measures a healthy target's latency at the offered rate, from the
// moment the backlog is in (its first retries and parking included),
// against its baseline before the backlog, and reads the server's memory.
// Its Checks are the pass/fail lines of issue 17: the healthy target's p99
// within twice its baseline, none of its events later than a second, and
// the server under 300 MB resident (peak 400 MB).
func (r *Runner) Backlog(ctx context.Context) (Result, error) {
	if err := r.setup(ctx); err != nil {
		return Result{}, err
	}
	healthySource := "bench.healthy"
	bus, err := r.rule(ctx, "healthy", healthySource, []string{r.sink.url("/healthy")})
	if err != nil {
		return Result{}, err
	}
	refusing, err := deadEndpoint()
	if err != nil {
		return Result{}, err
	}
	hanging, err := r.hangingEndpoint()
	if err != nil {
		return Result{}, err
	}
	dead := max(r.cfg.DeadDestinations, 1)
	var deadSources []string
	for i := range dead {
		ep := refusing
		if i%2 == 1 {
			ep = hanging
		}
		src := fmt.Sprintf("bench.dead.%d", i)
		if _, err := r.rule(ctx, fmt.Sprintf("dead-%d", i), src, []string{ep + "/" + strconv.Itoa(i)}); err != nil {
			return Result{}, err
		}
		deadSources = append(deadSources, src)
	}
	rate := min(r.cfg.Rate, 1000)
	baseRun, err := r.measureLatency(ctx, "backlog baseline", bus, healthySource, "/healthy", rate, r.cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	base := baseRun.dist
	// Fill the backlog as fast as the server takes it, spread over the dead
	// destinations.
	if err := r.fill(ctx, fmt.Sprintf("backlog: %%d of %%d events put on %d dead destinations", dead), bus, r.cfg.Backlog,
		func(filled int) string { return deadSources[(filled/r.cfg.Batch)%len(deadSources)] }); err != nil {
		return Result{}, fmt.Errorf("backlog: %w", err)
	}
	// The router may still be behind PutEvents: the events are waiting
	// once it has routed them all.
	r.awaitRouted(ctx, "backlog: routing")
	// Measure at once: the backlog's first attempts, retries and parking
	// happen now.
	run, err := r.measureLatency(ctx, "backlog measured", bus, healthySource, "/healthy", rate, r.cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	with, sent, missing, elapsed := run.dist, run.sent, run.missing, run.elapsed
	// The jobs waiting, and the messages still to route (none, unless the
	// router fell behind again); 0 if the server could not say.
	d, _ := r.depths(ctx)
	waiting := d["delayed"] + d["jobs"] + d["parked"] + d["unrouted"]
	res := Result{Scenario: "backlog", Seconds: elapsed.Seconds(), BacklogEvents: waiting, DeadDestinations: dead, OfferedRate: rate,
		Entries: sent, Missing: missing, BaselineLatency: base, Latency: with}
	if base.P99 > 0 {
		res.P99RatioToBaseline = with.P99 / base.P99
	}
	res.Checks = append(res.Checks,
		Check{Name: "healthy p99 within 2x its baseline", Pass: base.P99 > 0 && with.P99 <= 2*base.P99,
			Detail: fmt.Sprintf("%.2f ms against %.2f ms (x%.2f)", with.P99, base.P99, res.P99RatioToBaseline)},
		Check{Name: "no healthy event later than 1 s", Pass: with.Max <= 1000 && missing == 0,
			Detail: fmt.Sprintf("max %.1f ms, %d missing", with.Max, missing)})
	if r.cfg.ServerPID > 0 {
		res.ServerRSSBytes, res.ServerPeakBytes = rss(r.cfg.ServerPID)
		res.Checks = append(res.Checks, Check{Name: "server memory: RSS <= 300 MB, peak <= 400 MB",
			Pass:   res.ServerRSSBytes <= 300<<20 && res.ServerPeakBytes <= 400<<20,
			Detail: fmt.Sprintf("RSS %d MB, peak %d MB", res.ServerRSSBytes>>20, res.ServerPeakBytes>>20)})
	}
	return res, nil
}

// fill puts n events on bus as fast as the server takes them, from
// Concurrency callers, each batch from the source source returns for the
// events put before it; progress is a format for the events put so far
// and n. A call that fails, or whose entries fail (a busy or restarting
// server), is tried again, its failed entries only, after a pause that
// doubles, as an SDK would; fill returns an error when a batch still
// fails after fillAttempts tries, or ctx ends, with how many were put.
func (r *Runner) fill(ctx context.Context, progress, bus string, n int, source func(filled int) string) error {
	filled, put := 0, 0
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if filled >= n || firstErr != nil {
					mu.Unlock()
					return
				}
				src := source(filled)
				filled += r.cfg.Batch
				mu.Unlock()
				err := r.putAll(ctx, w, bus, src)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					put += r.cfg.Batch
				}
				sofar := put
				mu.Unlock()
				if w == 0 {
					r.progress(progress, sofar, n)
				}
			}
		}()
	}
	wg.Wait()
	r.endProgress()
	if firstErr != nil {
		return fmt.Errorf("%d of %d events put: %w", put, n, firstErr)
	}
	return nil
}

// fillAttempts is how many times fill tries a batch's entries.
const fillAttempts = 8

// putAll puts a batch of Batch events from source on bus, trying again
// what fails (see fill).
func (r *Runner) putAll(ctx context.Context, caller int, bus, source string) error {
	left := r.cfg.Batch
	pause := 50 * time.Millisecond
	var err error
	for range fillAttempts {
		var out putResult
		err = r.put(ctx, caller, r.entriesOf(left, bus, source, time.Now()), &out)
		switch {
		case err == nil && out.FailedEntryCount == 0:
			return nil
		case err == nil:
			left = out.FailedEntryCount
			err = fmt.Errorf("%d entries failed: %s", out.FailedEntryCount, firstEntryError(out))
		}
		if !wait.For(ctx, pause) {
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		}
		pause = min(2*pause, 2*time.Second)
	}
	return err
}

// firstEntryError returns the error code of out's first failed entry.
func firstEntryError(out putResult) string {
	for _, e := range out.Entries {
		if e.ErrorCode != "" {
			return e.ErrorCode
		}
	}
	return "no error code"
}

// settle is how long the replay scenario leaves the server alone between
// the fill of settleFor events and the baseline (less for fewer events).
const (
	settle    = 15 * time.Second
	settleFor = 100000
)

// Replay archives Archive events, then replays them to a rule of their
// own (FilterArns) while a live rule's target takes events at the offered
// rate (at most 1,000/s), and measures the replay's rate (events passed
// through the rules per second, from DescribeReplay's start and end
// times), the live target's latency while the replay runs and its
// deliveries arrive, against its baseline before, and the time until
// every replayed delivery arrived. Its Checks are issue 18's lines: at
// least 20,000 events/s, live p99 within twice its baseline.
func (r *Runner) Replay(ctx context.Context) (Result, error) {
	if err := r.setup(ctx); err != nil {
		return Result{}, err
	}
	liveSource, archSource := "bench.live", "bench.archived"
	bus, err := r.rule(ctx, "live", liveSource, []string{r.sink.url("/live")})
	if err != nil {
		return Result{}, err
	}
	busArn := fmt.Sprintf("arn:aws:events:%s:%s:event-bus/%s", r.cfg.Region, r.cfg.AccountID, bus)
	archive := "bench-" + r.id
	if err := r.call(ctx, "CreateArchive", map[string]any{"ArchiveName": archive, "EventSourceArn": busArn,
		"EventPattern": `{"source":["` + archSource + `"]}`}, nil); err != nil {
		return Result{}, fmt.Errorf("create archive: %w", err)
	}
	from := time.Now().Add(-time.Minute)
	n := max(r.cfg.Archive, r.cfg.Batch)
	if err := r.fill(ctx, "replay: %d of %d events put", bus, n, func(int) string { return archSource }); err != nil {
		return Result{}, fmt.Errorf("replay: %w", err)
	}
	archived := func() int {
		var out struct{ EventCount int }
		if err := r.call(ctx, "DescribeArchive", map[string]any{"ArchiveName": archive}, &out); err != nil {
			return 0
		}
		return out.EventCount
	}
	got := r.await(ctx, "replay: events archived", n, 200*time.Millisecond, archived)
	// The replayed events' own rule, made now so that the fill delivers
	// nothing.
	if _, err := r.rule(ctx, "replayed", archSource, []string{r.sink.url("/replayed")}); err != nil {
		return Result{}, err
	}
	// Let the server finish with the fill (the writes it still flushes,
	// the memory it returns) before the baseline: a baseline taken at once
	// after a million events measured 604 ms.
	r.awaitRouted(ctx, "replay: routing")
	pause := time.Duration(float64(settle) * min(float64(n)/settleFor, 1))
	r.progress("replay: letting the server settle for %s", pause.Round(time.Millisecond))
	wait.For(ctx, pause)
	r.endProgress()
	rate := min(r.cfg.Rate, 1000)
	baseRun, err := r.measureLatency(ctx, "replay baseline", bus, liveSource, "/live", rate, r.cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	base := baseRun.dist
	r.sink.reset("/replayed")
	// The peak from here on is the replay's: the fill's is forgotten.
	peakReset := r.cfg.ServerPID > 0 && resetPeak(r.cfg.ServerPID) == nil
	var startRSS int64
	if peakReset {
		startRSS, _ = rss(r.cfg.ServerPID)
	}
	name := "bench-" + r.id
	ruleArn := fmt.Sprintf("arn:aws:events:%s:%s:rule/%s/replayed", r.cfg.Region, r.cfg.AccountID, bus)
	if err := r.call(ctx, "StartReplay", map[string]any{"ReplayName": name, "EventSourceArn": fmt.Sprintf("arn:aws:events:%s:%s:archive/%s", r.cfg.Region, r.cfg.AccountID, archive),
		"EventStartTime": from.Unix(), "EventEndTime": time.Now().Add(time.Minute).Unix(),
		"Destination": map[string]any{"Arn": busArn, "FilterArns": []string{ruleArn}}}, nil); err != nil {
		return Result{}, fmt.Errorf("start replay: %w", err)
	}
	replayStart := time.Now()
	run, err := r.measureLatency(ctx, "replay measured", bus, liveSource, "/live", rate, r.cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	with, sent, missing, elapsed := run.dist, run.sent, run.missing, run.elapsed
	var rep struct {
		State                          string
		ReplayStartTime, ReplayEndTime float64
	}
	for ctx.Err() == nil {
		if err := r.call(ctx, "DescribeReplay", map[string]any{"ReplayName": name}, &rep); err != nil {
			return Result{}, err
		}
		if rep.State != "STARTING" && rep.State != "RUNNING" {
			break
		}
		r.progress("replay: %s", rep.State)
		time.Sleep(200 * time.Millisecond)
	}
	r.endProgress()
	delivered := r.await(ctx, "replay: replayed events delivered", got, 100*time.Millisecond, func() int { return r.sink.arrived("/replayed") })
	res := Result{Scenario: "replay", Seconds: elapsed.Seconds(), ArchivedEvents: got, OfferedRate: rate, Entries: sent, Missing: missing,
		BaselineLatency: base, Latency: with, ReplayDeliveries: delivered, ReplayDrainSecs: time.Since(replayStart).Seconds()}
	if rep.State == "COMPLETED" && rep.ReplayEndTime > rep.ReplayStartTime {
		res.ReplaySeconds = rep.ReplayEndTime - rep.ReplayStartTime
		res.ReplayedPerSec = float64(got) / res.ReplaySeconds
	}
	if base.P99 > 0 {
		res.P99RatioToBaseline = with.P99 / base.P99
	}
	res.Checks = append(res.Checks,
		Check{Name: "replay at 20,000 events/s or more", Pass: res.ReplayedPerSec >= 20000,
			Detail: fmt.Sprintf("%s: %d events in %.1f s, %.0f/s", rep.State, got, res.ReplaySeconds, res.ReplayedPerSec)},
		Check{Name: "live p99 within 2x its baseline", Pass: base.P99 > 0 && with.P99 <= 2*base.P99,
			Detail: fmt.Sprintf("%.2f ms against %.2f ms (x%.2f)", with.P99, base.P99, res.P99RatioToBaseline)},
		Check{Name: "every replayed event delivered", Pass: delivered >= got,
			Detail: fmt.Sprintf("%d of %d", delivered, got)})
	if r.cfg.ServerPID > 0 {
		res.ServerRSSBytes, res.ServerPeakBytes = rss(r.cfg.ServerPID)
		if peakReset {
			res.ReplayStartRSSBytes, res.ReplayPeakRSSBytes = startRSS, res.ServerPeakBytes
		}
	}
	return res, nil
}

// resetPeak makes the kernel forget process pid's peak resident memory
// (VmHWM), so that the next reading is the peak since now (Linux 4.0 and
// later; the process must be this user's).
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// hangingEndpoint returns an http URL on a loopback port that accepts
// connections and never answers (closed with the runner).
func (r *Runner) hangingEndpoint() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	r.hang = ln
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // read nothing, answer nothing
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// metrics reads the server's metrics: series (as printed) to value.
func (r *Runner) metrics(ctx context.Context) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(r.cfg.Client.Endpoint, "/")+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// depths returns the server's bridgeport_pipeline_depth by stage, and
// whether it gave them (it gives all its stages or none): a scrape that
// fails, or a server that could not read its streams, is tried again,
// three times in all.
func (r *Runner) depths(ctx context.Context) (map[string]int, bool) {
	const prefix = `bridgeport_pipeline_depth{stage="`
	for try := range 3 {
		if try > 0 && !wait.For(ctx, 200*time.Millisecond) {
			break
		}
		out := map[string]int{}
		for name, v := range r.metrics(ctx) {
			if stage, ok := strings.CutPrefix(name, prefix); ok {
				out[strings.TrimSuffix(stage, `"}`)] = int(v)
			}
		}
		if len(out) > 0 {
			return out, true
		}
	}
	return nil, false
}

// awaitRouted waits until the router has no message left to route (its
// depth counts messages, each a call's events for one bus), or until the
// count has not fallen for stall, as await does; a depth the server does
// not give is not taken for none.
func (r *Runner) awaitRouted(ctx context.Context, label string) {
	start := time.Now()
	progress, report, least := start, start, -1
	for ctx.Err() == nil && time.Since(progress) < stall {
		d, ok := r.depths(ctx)
		n := d["unrouted"]
		if ok && n == 0 {
			break
		}
		if ok && (least < 0 || n < least) {
			least, progress = n, time.Now()
		}
		if time.Since(report) >= time.Second {
			report = time.Now()
			r.progress("%s: %d messages left to route (%s)", label, least, time.Since(start).Round(time.Second))
		}
		wait.For(ctx, 200*time.Millisecond)
	}
	r.endProgress()
}

// deadEndpoint returns an http URL on a loopback port nothing listens on.
func deadEndpoint() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/dead", nil
}

// rss returns a process's resident and peak resident memory (Linux).
func rss(pid int) (int64, int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	var cur, peak int64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = kb * 1024
		case "VmHWM:":
			peak = kb * 1024
		}
	}
	return cur, peak
}

// cpuTime returns the CPU time (user and system) a process has used so
// far, from /proc; zero when it cannot be read.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// utime and stime, fields 14 and 15 of the line, in clock ticks of
	// 1/100 s (USER_HZ, 100 on Linux).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// sink is the local HTTP endpoint the targets invoke: it counts requests
// and records, per path, each event's latency from its intended send time.
type sink struct {
	srv   *http.Server
	addr  string
	mu    sync.Mutex
	total int       // requests so far
	at    time.Time // when the last of them was counted
	lat   map[string][]time.Duration
}

func newSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{addr: ln.Addr().String(), lat: map[string][]time.Duration{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) url(path string) string { return "http://" + s.addr + path }

func (s *sink) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	sent := sentAt(req.Body)
	key := req.URL.Path
	if strings.HasPrefix(key, "/delivery/") {
		key = "/delivery/"
	}
	s.mu.Lock()
	s.total++
	s.at = time.Now()
	if sent > 0 {
		s.lat[key] = append(s.lat[key], now.Sub(time.Unix(0, sent)))
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// sentAt reads a delivered event and returns its detail's "sent" member
// (unix nanoseconds), or 0. The events are bench's own, so the member's
// first appearance is the one: a scan rather than a JSON decode keeps the
// sink, which shares the machine with the server, cheap.
func sentAt(body io.Reader) int64 {
	bp := sinkBufs.Get().(*[]byte)
	defer sinkBufs.Put(bp)
	buf := (*bp)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	*bp = buf
	const key = `"sent":`
	i := bytes.Index(buf, []byte(key))
	if i < 0 {
		return 0
	}
	rest := buf[i+len(key):]
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	v, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
	return v
}

var sinkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (s *sink) count() int {
	n, _ := s.last()
	return n
}

// last returns the number of requests so far and when the last of them was
// counted.
func (s *sink) last() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.at
}

// mark returns the number of requests so far and the time now: every
// request counted later was counted after that time.
func (s *sink) mark() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, time.Now()
}

func (s *sink) reset(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat[path] = nil
}

func (s *sink) arrived(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lat[path])
}

func (s *sink) samples(path string) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.lat[path]...)
}

func (s *sink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// rulesRate is the events per second that flow while the rules scenario
// changes rules: a load this machine carries with a p99 of a few
// milliseconds, so that a pause in matching shows.
const rulesRate = 1000

// Rules measures rule changes through the API on a bus that has many
// rules: loading cfg.Rules rules one PutRule call at a time, then, on the
// full bus, each kind of change in turn (PutRule updating a rule's
// pattern, DisableRule, EnableRule, DeleteRule, PutRule creating one) for
// the duration, while events flow at rulesRate to a target whose rule is
// on the same bus. Their ingestion-to-invocation latency is compared with
// the same measured just before, without changes: matching must not pause
// while rules change.
func (r *Runner) Rules(ctx context.Context) (Result, error) {
	if err := r.setup(ctx); err != nil {
		return Result{}, err
	}
	n := max(r.cfg.Rules, 10)
	bus := "bench-rules-" + r.id
	source := "bench.rules"
	if _, err := r.ruleOn(ctx, bus, "rules-sink", source, []string{r.sink.url("/rules")}); err != nil {
		return Result{}, err
	}
	put := func(name string, i int) error {
		return r.call(ctx, "PutRule", map[string]any{"Name": name, "EventBusName": bus, "EventPattern": benchPattern(i)}, nil)
	}
	timed := func(fn func() error) (time.Duration, error) {
		t := time.Now()
		err := fn()
		return time.Since(t), err
	}
	loads := make([]time.Duration, 0, n)
	start, report := time.Now(), time.Now()
	for i := range n {
		d, err := timed(func() error { return put(fmt.Sprintf("r-%05d", i), i) })
		if err != nil {
			return Result{}, fmt.Errorf("rule %d: %w", i, err)
		}
		loads = append(loads, d)
		if time.Since(report) >= time.Second {
			report = time.Now()
			r.progress("rules: %d of %d loaded (%s), the last took %.2f ms", i+1, n, time.Since(start).Round(time.Second), float64(d)/float64(time.Millisecond))
		}
	}
	loadTime := time.Since(start)
	r.endProgress()
	baseRun, err := r.measureLatency(ctx, "rules: baseline", bus, source, "/rules", rulesRate, r.cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	baseline := baseRun.dist
	// The changes, in turn, on rules picked at random, for as long as the
	// latency measurement runs.
	type latencyResult struct {
		dist *Distribution
		sent int
		d    time.Duration
		err  error
	}
	done := make(chan latencyResult, 1)
	go func() {
		run, err := r.measureLatency(ctx, "rules: changing", bus, source, "/rules", rulesRate, r.cfg.Duration)
		done <- latencyResult{run.dist, run.sent, run.elapsed, err}
	}()
	kinds := []string{"PutRule (update)", "DisableRule", "EnableRule", "DeleteRule", "PutRule (create)"}
	samples := make(map[string][]time.Duration, len(kinds))
	rng := mrand.New(mrand.NewPCG(uint64(n), 1))
	var lat latencyResult
	j := 0
changes:
	for i := 0; ; i++ {
		k := i % len(kinds)
		if k == 0 {
			// Whole cycles of the five changes, at least one, each on
			// one rule.
			if i > 0 {
				select {
				case lat = <-done:
					break changes
				default:
				}
			}
			j = rng.IntN(n)
		}
		name := fmt.Sprintf("r-%05d", j)
		d, err := timed(func() error {
			switch kinds[k] {
			case "PutRule (update)":
				return put(name, j+n)
			case "DisableRule", "EnableRule":
				return r.call(ctx, kinds[k], map[string]any{"Name": name, "EventBusName": bus}, nil)
			case "DeleteRule":
				return r.call(ctx, "DeleteRule", map[string]any{"Name": name, "EventBusName": bus}, nil)
			default:
				return put(name, j)
			}
		})
		if err != nil {
			return Result{}, fmt.Errorf("%s %s: %w", kinds[k], name, err)
		}
		samples[kinds[k]] = append(samples[kinds[k]], d)
	}
	if lat.err != nil {
		return Result{}, lat.err
	}
	res := Result{Scenario: "rules", Seconds: lat.d.Seconds(), Rules: n, LoadSeconds: loadTime.Seconds(), LoadCalls: distribution(loads),
		LoadLast: distribution(loads[n-n/10:]), Changes: make(map[string]*Distribution), OfferedRate: rulesRate, Entries: lat.sent,
		Latency: lat.dist, BaselineLatency: baseline}
	if baseline.P99 > 0 {
		res.P99RatioToBaseline = lat.dist.P99 / baseline.P99
	}
	worst, worstP50 := 0.0, 0.0
	for _, k := range kinds {
		d := distribution(samples[k])
		res.Changes[k] = d
		worst, worstP50 = max(worst, d.P99), max(worstP50, d.P50)
	}
	res.Checks = []Check{
		{Name: fmt.Sprintf("loading %d rules one call at a time takes under a minute", n), Pass: loadTime < time.Minute,
			Detail: fmt.Sprintf("%.1f s; the last tenth's calls p50 %.2f ms, p99 %.2f ms", loadTime.Seconds(), res.LoadLast.P50, res.LoadLast.P99)},
		{Name: fmt.Sprintf("each kind of change at %d rules takes at most 3 ms (median)", n), Pass: worstP50 <= 3,
			Detail: fmt.Sprintf("the slowest kind's p50 %.2f ms; the worst p99 %.2f ms", worstP50, worst)},
		{Name: "matching does not pause while rules change (p99 within 2x)", Pass: res.P99RatioToBaseline <= 2,
			Detail: fmt.Sprintf("p99 %.2f ms against %.2f ms (x%.2f), max %.1f ms", lat.dist.P99, baseline.P99, res.P99RatioToBaseline, lat.dist.Max)},
	}
	return res, nil
}

// benchPattern returns the i-th pattern of the rules scenario: rules of
// 100 tenants with 10 services each, on the source and detail-type, then
// one condition of the detail drawn from exact, prefix, numeric, anything-
// but and exists, as real buses have. None matches the scenario's events.
func benchPattern(i int) string {
	src := fmt.Sprintf("com.t%03d.svc%d", i%100, (i/100)%10)
	var detail string
	switch i % 5 {
	case 0:
		detail = fmt.Sprintf(`"status":["s%d"]`, i%7)
	case 1:
		detail = fmt.Sprintf(`"orderId":[{"prefix":"ord-%d"}]`, i%13)
	case 2:
		detail = fmt.Sprintf(`"total":[{"numeric":[">=",%d,"<",%d]}]`, i%500, i%500+100)
	case 3:
		detail = fmt.Sprintf(`"channel":[{"anything-but":["c%d","c%d"]}]`, i%5, i%3)
	default:
		detail = `"coupon":[{"exists":false}],"customer":{"tier":["gold"]}`
	}
	return fmt.Sprintf(`{"source":[%q],"detail-type":["T%d","U%d"],"detail":{%s}}`, src, i%10, i%17, detail)
}

// Restart measures how soon a server with a large store serves again: it
// stores cfg.Rules rules on a bus, cfg.Connections connections and
// cfg.Events events (8 callers), then has the server killed (SIGKILL, so
// that nothing is tidied at shutdown) and started again on the same data,
// and measures from the new process's start to its first answer to
// DescribeRule.
func (r *Runner) Restart(ctx context.Context) (Result, error) {
	if r.cfg.Restart == nil {
		return Result{}, errors.New("the restart scenario needs a server bench starts (not --endpoint)")
	}
	bus := "bench-restart-" + r.id
	if err := r.call(ctx, "CreateEventBus", map[string]any{"Name": bus}, nil); err != nil {
		return Result{}, fmt.Errorf("create bus: %w", err)
	}
	start := time.Now()
	// Work items: connections, rules, then PutEvents calls.
	nConn, nRules, nCalls := r.cfg.Connections, r.cfg.Rules, (r.cfg.Events+9)/10
	total := nConn + nRules + nCalls
	var next, done atomic.Int64
	var firstErr atomic.Value
	pad := r.pad
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && firstErr.Load() == nil {
				i := int(next.Add(1)) - 1
				var err error
				switch {
				case i >= total:
					return
				case i < nConn:
					err = r.call(ctx, "CreateConnection", map[string]any{"Name": fmt.Sprintf("bench-restart-%s-%05d", r.id, i), "AuthorizationType": "API_KEY",
						"AuthParameters": map[string]any{"ApiKeyAuthParameters": map[string]any{"ApiKeyName": "x-bench", "ApiKeyValue": "bench"}}}, nil)
				case i < nConn+nRules:
					k := i - nConn
					err = r.call(ctx, "PutRule", map[string]any{"Name": fmt.Sprintf("r-%05d", k), "EventBusName": bus, "EventPattern": benchPattern(k)}, nil)
				default:
					entries := make([]map[string]any, 10)
					for e := range entries {
						entries[e] = map[string]any{"EventBusName": bus, "Source": "bench.restart", "DetailType": "bench", "Detail": `{"pad":"` + pad + `"}`}
					}
					body, _ := json.Marshal(map[string]any{"Entries": entries})
					var out putResult
					if err = r.put(ctx, i, body, &out); err == nil && out.FailedEntryCount > 0 {
						err = fmt.Errorf("%d entries failed", out.FailedEntryCount)
					}
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if n := done.Add(1); n%2000 == 0 {
					r.progress("restart: storing, %d of %d calls (%s)", n, total, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	r.endProgress()
	if err, _ := firstErr.Load().(error); err != nil {
		return Result{}, fmt.Errorf("storing: %w", err)
	}
	fill := time.Since(start)
	client, started, err := r.cfg.Restart(ctx)
	if err != nil {
		return Result{}, err
	}
	r.cfg.Client = client
	name := fmt.Sprintf("r-%05d", max(nRules-1, 0))
	for {
		err := r.call(ctx, "DescribeRule", map[string]any{"Name": name, "EventBusName": bus}, nil)
		if err == nil || nRules == 0 {
			break
		}
		if ctx.Err() != nil || time.Since(started) > 5*time.Minute {
			return Result{}, fmt.Errorf("the restarted server did not answer: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(started)
	res := Result{Scenario: "restart", Rules: nRules, Connections: nConn, Events: nCalls * 10, FillSeconds: fill.Seconds(), RestartSeconds: took.Seconds()}
	res.Checks = []Check{{Name: "serves requests within 3 s of starting", Pass: took <= 3*time.Second,
		Detail: fmt.Sprintf("%.2f s with %d rules, %d connections and %d events stored", took.Seconds(), nRules, nConn, nCalls*10)}}
	return res, nil
}
