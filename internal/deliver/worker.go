package deliver

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bridgeport/internal/metrics"
	"bridgeport/internal/store"
	"bridgeport/internal/transform"
	"bridgeport/internal/wait"
)

// Defaults of a target's RetryPolicy.
const (
	DefaultMaxRetries = 185
	DefaultMaxAge     = 24 * time.Hour
)

// Exhausted conditions, as the dead-letter attribute names them.
const (
	ExhaustedAttempts = "MaximumRetryAttempts"
	ExhaustedAge      = "MaximumEventAgeInSeconds"
)

// Target is what the worker needs to know about a job's target, resolved
// from the configuration when the job runs.
type Target struct {
	Arn           string
	RuleName      string
	Input         transform.Input
	Path          []string          // HttpParameters.PathParameterValues
	Header, Query map[string]string // HttpParameters
	MaxRetries    int               // RetryPolicy.MaximumRetryAttempts
	MaxAge        time.Duration     // RetryPolicy.MaximumEventAgeInSeconds
	DeadLetterArn string
	// Destination is set for API destination targets.
	Destination *Destination
	// Bus is set for event bus targets (of this account and region).
	Bus string
	// Queue is set for SQS queue targets, with SqsParameters.MessageGroupId.
	Queue, MessageGroupID string
	// RoleArn is the role EventBridge uses to invoke the target.
	RoleArn string
	// Unsupported says why a target of another kind is not delivered.
	Unsupported string
}

// Destination is an API destination with its connection's auth and
// parameters in clear.
type Destination struct {
	Arn, Endpoint, Method string
	RateLimit             int
	ConnectionArn         string
	// ConnectionState is the connection's state; only AUTHORIZED invokes.
	ConnectionState string
	StateReason     string
	Auth            Auth
	Header, Query   []Param
	Body            []Param
	// OAuth is set for OAUTH_CLIENT_CREDENTIALS connections.
	OAuth *OAuthClient
}

// invocation is the request a delivery of body to t sends: the
// destination's method and endpoint, the target's HttpParameters (JSONPath
// values taken from event), the connection's parameters and auth.
func (t *Target) invocation(body, event []byte, auth Auth) *Invocation {
	d := t.Destination
	return &Invocation{Method: d.Method, Endpoint: d.Endpoint, Path: t.Path, Body: body, Event: event,
		Header: t.Header, Query: t.Query, ConnHeader: d.Header, ConnQuery: d.Query, ConnBody: d.Body, Auth: auth}
}

// Config is the worker's view of the configuration.
type Config interface {
	// Target resolves a job's rule and target; ok is false when either no
	// longer exists.
	Target(ruleArn, targetID string) (Target, bool)
	// Deauthorize moves a connection to DEAUTHORIZED with a reason.
	Deauthorize(ctx context.Context, connectionArn, reason string) error
	// PendingOAuth returns the OAuth connections waiting for their first
	// token (AUTHORIZING).
	PendingOAuth() []OAuthClient
	// Authorize moves an AUTHORIZING connection to AUTHORIZED, unless it
	// changed since version.
	Authorize(ctx context.Context, connectionArn, version string) error
	// Forward puts an event on another bus; ok is false when the bus does
	// not exist.
	// dedupeID names the sending.
	Forward(ctx context.Context, bus, eventID, dedupeID string, event []byte, ingested time.Time) (ok bool, err error)
}

// DeadLetter is an event that could not be delivered, with what the
// dead-letter queue message carries.
type DeadLetter struct {
	EventID  string
	Event    []byte
	Bus      string
	RuleArn  string
	TargetID string
	// JobID names the job that ended here; a dead-letter send repeated for
	// the same job is the same send.
	JobID              string
	TargetArn          string
	DeadLetterArn      string // the target's DeadLetterConfig.Arn, if any
	ErrorCode          string
	ErrorMessage       string
	ExhaustedCondition string // "" when the error was not retried
	RetryAttempts      int
}

// DeadLetterFunc takes an undeliverable event; it returns once the event is
// stored (or, without a dead-letter queue, dropped and counted), with what
// became of it: store.OutcomeDeadLettered, OutcomeDLQFailed or
// OutcomeDropped.
type DeadLetterFunc func(context.Context, DeadLetter) (string, error)

// QueueSend is a message for a queue target.
type QueueSend struct {
	QueueArn, RuleArn, EventID string
	Body                       string
	// DedupeID is the same for a send repeated after a crash.
	DedupeID string
	GroupID  string
}

// QueueSendFunc sends to a queue on EventBridge's behalf. A send that
// cannot succeed (no queue, no permission, refused message) returns its
// error code and message; err is for a store that is unavailable.
type QueueSendFunc func(context.Context, QueueSend) (code, message string, err error)

// WorkerConfig builds a Worker.
type WorkerConfig struct {
	Store      *store.Store
	Config     Config
	Invoker    *Invoker
	DeadLetter DeadLetterFunc
	// SendToQueue delivers to queue targets.
	SendToQueue QueueSendFunc
	// CheckRole answers whether EventBridge may use a target's role for
	// action on resource, for the rule ruleArn: "" when it may, else the
	// error code (FAILED_TO_ASSUME_ROLE, NO_PERMISSIONS) and a message.
	// Nil allows everything.
	CheckRole func(roleArn, ruleArn, action, resource string) (code, message string)
	// BaseDelay and MaxDelay bound the exponential backoff.
	BaseDelay, MaxDelay time.Duration
	// Workers is the number of live jobs in hand at once on each of the
	// live lane's queues (the router's batches, and the jobs queued one a
	// message) and the most the router starts itself (Direct); 0 means
	// 512. Workers mostly wait on the network, so they are cheap.
	Workers int
	// ReplayWorkers is the number of jobs of replayed events in hand at
	// once (the replay lane); 0 means 8. Far fewer than Workers, so that
	// a replay's deliveries leave the live ones most of the machine.
	ReplayWorkers int
	// ReplayCPU is the busy share of the machine's CPU time (0 to 1) above
	// which the replay lane slows down (pacer); 0 or 1 and more: no pacing.
	ReplayCPU float64
	// PerTarget caps the invocations in flight to one destination, so that
	// a slow target cannot take every worker; 0 means 16. A destination
	// whose last call timed out or failed to connect gets 2 until a call
	// succeeds, so that many dead targets together cannot hold the workers
	// either.
	PerTarget int
	// Metrics counts attempts and outcomes; nil counts nothing.
	Metrics *metrics.Metrics
	// ShutdownGrace is how long deliveries in flight may take to finish
	// once Run's context ends; 0 means 10 seconds.
	ShutdownGrace time.Duration
	// Nodes returns the number of nodes sharing the work; a destination's
	// rate limit is shared out among them. Nil means 1.
	Nodes  func() int
	Logger *slog.Logger
	// Now is the clock event ages are measured with; nil means time.Now.
	Now func() time.Time
	// KeeperPoll is how often the keepers' loop looks for targets with
	// parked jobs and no keeper on this node; 0 means a second. A park on
	// this node starts one at once (nudgeKeepers); the poll finds those
	// parked by other nodes.
	KeeperPoll time.Duration
}

// Worker delivers queued jobs. Run it once per node.
type Worker struct {
	cfg WorkerConfig
	log *slog.Logger

	tokens *tokens

	mu      sync.Mutex
	slots   map[string]chan struct{}
	probes  map[string]chan struct{} // the slots of failing destinations
	fast    map[string]chan struct{} // the slots of destinations that answer fast (slotsOf)
	isFast  map[string]bool          // the destinations that take them
	failing map[string]Result        // the last call, of destinations whose calls time out or fail to connect
	waiters map[string]int           // workers waiting for each destination's slot
	waiting int                      // workers waiting for a slot, all destinations together
	// answered: whether the last call to end, of each destination called
	// so far, was answered (any HTTP status). suspect: the calls in
	// flight, by the shared workers, to destinations that are not
	// (new ones, or ones whose calls time out or fail to connect); at most
	// half the workers, so that destinations that hang cannot hold them
	// all.
	answered map[string]bool
	suspect  chan struct{}
	limits   map[string]*limit
	// liveLag: the recent mean wait of live events from ingestion to their
	// first attempt, in nanoseconds; liveFloor: the usual one (noteLive);
	// lastLive: when the last came, in nanoseconds since epoch (the
	// monotonic clock). yieldToLive reads them.
	liveLag, liveFloor, lastLive atomic.Int64
	epoch                        time.Time
	// pace holds the replay lane to the machine's spare CPU.
	pace *pacer
	// callTime: the recent mean duration of each destination's answered
	// (or timed-out) calls, which bounds how many workers may wait for its
	// slots.
	callTime map[string]time.Duration
	// inFlight: each destination's calls in flight; lastEnd: when its
	// last call ended (or its first one in flight began). See stalled.
	inFlight map[string]int
	lastEnd  map[string]time.Time
	// The circuits (circuit.go): open ones as the store has them, a channel
	// per destination closed at the next change, and the failures in a row
	// of each destination on this node.
	open    map[string]*store.Health
	changed map[string]chan struct{}
	fails   map[string]int
	// spans: when each destination's circuit was open (schedule.go).
	spans map[string][]span
	// settled: when an attempt to each destination last ended with an
	// answer that is not retried (delivered, or refused for good).
	settled map[string]time.Time
	// The jobs the router hands over (direct.go): the contexts they run
	// with and that stops taking them, how many run, and a group to wait
	// for them.
	directCtx, directStop context.Context
	direct                int
	directFor             map[string]int // by destination ("": buses and queues)
	directWG              sync.WaitGroup
	// keeping: the target keys this node runs a keeper for (keepers);
	// keepNudge wakes the keepers' loop when a job is parked for a target
	// without one (nudgeKeepers).
	keeping   sync.Map
	keepNudge chan struct{}
}

// NewWorker returns a Worker.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Workers <= 0 {
		cfg.Workers = 512
	}
	if cfg.ReplayWorkers <= 0 {
		cfg.ReplayWorkers = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.PerTarget <= 0 {
		cfg.PerTarget = 16
	}
	if cfg.KeeperPoll <= 0 {
		cfg.KeeperPoll = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, log: log, tokens: newTokens(cfg.Invoker), slots: map[string]chan struct{}{}, probes: map[string]chan struct{}{}, fast: map[string]chan struct{}{}, isFast: map[string]bool{},
		failing: map[string]Result{}, waiters: map[string]int{}, answered: map[string]bool{},
		suspect: make(chan struct{}, max(cfg.Workers/2, 1)), limits: map[string]*limit{}, callTime: map[string]time.Duration{}, inFlight: map[string]int{}, lastEnd: map[string]time.Time{}, open: map[string]*store.Health{}, changed: map[string]chan struct{}{}, fails: map[string]int{},
		spans: map[string][]span{}, settled: map[string]time.Time{}, directFor: map[string]int{}, epoch: time.Now(),
		pace: newPacer(machineCPU, cfg.ReplayCPU), keepNudge: make(chan struct{}, 1)}
}

// Run delivers jobs and moves delayed ones until ctx ends. Each part that
// fails (the store unreachable at start, say) is logged and started again.
//
// When ctx ends, no new delivery starts; those in flight get ShutdownGrace
// to finish, after which they are cancelled and their jobs handed back for
// another attempt. Run returns once they are done either way.
func (w *Worker) Run(ctx context.Context) error {
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(w.cfg.ShutdownGrace, cancelWork)
	})
	defer stop()
	defer w.acceptDirect(ctx, workCtx)()
	var wg sync.WaitGroup
	for name, part := range map[string]func(context.Context) error{
		"delays": w.cfg.Store.RunDelays,
		"jobs": func(ctx context.Context) error {
			return w.cfg.Store.ConsumeJobs(ctx, workCtx, w.cfg.Workers, w.handleLive)
		},
		"batches": func(ctx context.Context) error {
			return w.cfg.Store.ConsumeJobBatches(ctx, workCtx, w.cfg.Workers, w.handleLive)
		},
		"replayed": func(ctx context.Context) error {
			return w.cfg.Store.ConsumeReplayJobs(ctx, workCtx, w.cfg.ReplayWorkers, w.handleReplayed)
		},
		"authorize": w.authorizeLoop,
		"health":    w.watchHealth,
		"keepers":   func(ctx context.Context) error { return w.keepers(ctx, workCtx) },
		"stranded":  w.rescueLoop,
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := part(ctx); err != nil && ctx.Err() == nil {
					w.log.Error("delivery part stopped; restarting", "part", name, "error", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// rescueLoop writes again, every strandedEvery, the jobs the engine's
// consumers of the two lanes passed over (store.RescueStranded).
func (w *Worker) rescueLoop(ctx context.Context) error {
	return every(ctx, strandedEvery, func() error {
		live, replayed, err := w.cfg.Store.RescueStranded(ctx)
		if live+replayed > 0 {
			w.log.Warn("jobs the store's consumer passed over written again", "live", live, "replayed", replayed)
			w.cfg.Metrics.Rescued("live", live)
			w.cfg.Metrics.Rescued("replayed", replayed)
		}
		return err
	})
}

// every runs fn every d until ctx ends (then it returns nil) or fn
// returns an error.
func every(ctx context.Context, d time.Duration, fn func() error) error {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := fn(); err != nil {
			return err
		}
	}
}

// strandedEvery is how often rescueLoop looks for stranded jobs.
const strandedEvery = 10 * time.Second

// authorizeLoop fetches the first token of new OAuth connections, so that
// they become AUTHORIZED (or DEAUTHORIZED, with the reason) without waiting
// for an event, as in EventBridge.
func (w *Worker) authorizeLoop(ctx context.Context) error {
	return every(ctx, 200*time.Millisecond, func() error {
		for _, c := range w.cfg.Config.PendingOAuth() {
			w.authorize(ctx, &c)
		}
		return nil
	})
}

// authorize fetches a token for c and records the connection's new state.
// It reports whether a token is in hand.
func (w *Worker) authorize(ctx context.Context, c *OAuthClient) (string, bool) {
	tok, err := w.tokens.get(ctx, c)
	if ctx.Err() != nil {
		return "", false
	}
	if err != nil {
		w.log.Warn("OAuth token request failed; connection deauthorized", "connection", c.ConnectionArn, "error", err)
		if derr := w.cfg.Config.Deauthorize(ctx, c.ConnectionArn, err.Error()); derr != nil {
			w.log.Warn("deauthorize connection", "error", derr)
		}
		return "", false
	}
	if err := w.cfg.Config.Authorize(ctx, c.ConnectionArn, c.Version); err != nil {
		w.log.Warn("authorize connection", "error", err)
	}
	return tok, true
}

// handleLive is handle for the live lane: it also notes how long the
// job waited (noteLive).
func (w *Worker) handleLive(ctx context.Context, j store.Job) error {
	w.noteLive(j, time.Now())
	return w.handle(ctx, j)
}

// noteLive adds to liveLag how long a live job's first attempt waited
// since its event's ingestion, taken at now, and keeps liveFloor.
func (w *Worker) noteLive(j store.Job, now time.Time) {
	if j.Attempt != 0 || j.Deferrals != 0 || j.Redrive != "" {
		return
	}
	lag := max(int64(now.Sub(j.Ingested)), 0)
	for {
		old := w.liveLag.Load()
		if w.liveLag.CompareAndSwap(old, old+(lag-old)/16) {
			break
		}
	}
	for {
		old := w.liveFloor.Load()
		floor := lag
		if old != 0 && lag > old {
			floor = old + (lag-old)/4096
		}
		if w.liveFloor.CompareAndSwap(old, floor) {
			break
		}
	}
	w.lastLive.Store(int64(now.Sub(w.epoch)))
}

// handleReplayed is handle for the replay lane: before each job it waits
// for its turn at the pace the machine's spare CPU allows (pacer), and
// leaves the machine to live traffic while that is held up (yieldToLive).
func (w *Worker) handleReplayed(ctx context.Context, j store.Job) error {
	if !w.pace.wait(ctx) {
		return ctx.Err()
	}
	w.yieldToLive(ctx)
	return w.handle(ctx, j)
}

// ReplayPace returns the deliveries of replayed events a second the replay
// lane allows now, as the machine's spare CPU sets it (ReplayCPU); 0 when
// they are not paced, or none came in the last 5 seconds.
func (w *Worker) ReplayPace() float64 { return w.pace.perSecond(time.Now()) }

// yieldToLive waits, up to maxYield, while live events wait longer than
// usual, by yieldLag on average, from ingestion to their first attempt
// (and some came in the last second): a replay shares the machine's cores
// with live traffic, and without this it takes them, so that live events
// wait for the scheduler behind replayed ones. Usual is liveFloor, the
// shortest lag seen, drifting up over thousands of events, so that a
// lag every live event has (clocks of two nodes apart, a cluster's
// quorum writes) does not hold the replay back. Each replayed job waits
// at most maxYield, so a replay always moves on. It returns how many
// times it waited yieldStep.
func (w *Worker) yieldToLive(ctx context.Context) int {
	deadline := time.Now().Add(maxYield)
	steps := 0
	for time.Now().Before(deadline) && w.liveLag.Load() > w.liveFloor.Load()+int64(yieldLag) &&
		int64(time.Since(w.epoch))-w.lastLive.Load() < int64(time.Second) {
		if !wait.For(ctx, yieldStep) {
			break
		}
		steps++
	}
	return steps
}

// The replay lane's yielding to live traffic (yieldToLive).
const (
	yieldLag  = 4 * time.Millisecond
	yieldStep = 10 * time.Millisecond
	maxYield  = time.Second
)

// handle runs one job to an outcome that is durable before it returns:
// delivered, delayed for a retry or a deferral, parked, or dead-lettered.
func (w *Worker) handle(ctx context.Context, j store.Job) error {
	t, ok := w.cfg.Config.Target(j.RuleArn, j.TargetID)
	if !ok {
		// The rule or the target was removed: nothing to deliver to.
		w.log.Info("target gone; job dropped", "event_id", j.EventID, "rule", j.RuleArn, "target", j.TargetID)
		w.redriven(ctx, j, t, Result{Message: "the rule or its target no longer exists"}, store.OutcomeDropped)
		return nil
	}
	return w.run(ctx, j, t, runNormal)
}

// How run treats a job.
type runMode int

const (
	// runNormal is a shared worker's job: parked when its destination's
	// circuit is open, put back when the rate limit or the in-flight cap
	// turns it away, so that the worker moves on.
	runNormal runMode = iota
	// runDirect is a job the router handed over (Direct): as runNormal,
	// except that it waits for its destination's slot up to slotWait
	// whatever the shared workers do, since it holds none of them.
	runDirect
	// runDrain is a keeper's job, once its destination answers again:
	// it waits for the rate limit and a free slot.
	runDrain
	// runProbe is a keeper's job tried while the circuit is open.
	runProbe
)

// asNormal reports whether a job of mode m is treated as runNormal's (the
// router's runDirect jobs are, but for the wait for a slot).
func (m runMode) asNormal() bool { return m == runNormal || m == runDirect }

// run runs a job of target t to a durable outcome.
func (w *Worker) run(ctx context.Context, j store.Job, t Target, mode runMode) error {
	now := w.cfg.Now()
	if t.MaxAge > 0 && now.Sub(j.Ingested) > t.MaxAge {
		return w.deadLetter(ctx, j, t, Result{Code: CodeTimeout, Message: "the event is older than MaximumEventAgeInSeconds"}, ExhaustedAge)
	}
	if t.Bus != "" {
		if t.RoleArn != "" {
			if res, denied := w.permitted(t, j, "events:PutEvents", t.Arn); denied {
				return w.deadLetter(ctx, j, t, w.observe(j, time.Now(), res), "")
			}
		}
		start := time.Now()
		ok, err := w.cfg.Config.Forward(ctx, t.Bus, j.EventID, j.ID(), j.Event, j.Ingested)
		switch {
		case err != nil:
			return err // the store is unavailable: offered again shortly
		case !ok:
			res := Result{Code: CodeNoResource, Message: fmt.Sprintf("event bus %s does not exist", t.Bus)}
			return w.deadLetter(ctx, j, t, w.observe(j, start, res), "")
		}
		w.delivered(ctx, j, t, w.observe(j, start, Result{Status: 200}))
		return nil
	}
	if t.Queue != "" {
		return w.sendToQueue(ctx, j, t)
	}
	if t.Destination == nil {
		return w.fail(ctx, j, t, Result{Code: CodeInvalidParameter, Message: t.Unsupported})
	}
	d := t.Destination
	// The role first: without it EventBridge cannot even try, and no
	// request leaves. These errors are not retried.
	if res, denied := w.permitted(t, j, "events:InvokeApiDestination", d.Arn); denied {
		return w.deadLetter(ctx, j, t, w.observe(j, time.Now(), res), "")
	}
	switch {
	case d.ConnectionState == "AUTHORIZED":
	case d.ConnectionState == "AUTHORIZING" && d.OAuth != nil:
		// The first token decides: with it the connection is AUTHORIZED.
		if _, ok := w.authorize(ctx, d.OAuth); !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return w.fail(ctx, j, t, Result{Code: CodeInvalidParameter,
				Message: fmt.Sprintf("API destination %s is INACTIVE: its connection could not get an OAuth token", d.Arn)})
		}
	default:
		msg := fmt.Sprintf("API destination %s is INACTIVE: its connection is %s", d.Arn, d.ConnectionState)
		if d.StateReason != "" {
			msg += " (" + d.StateReason + ")"
		}
		return w.fail(ctx, j, t, Result{Code: CodeInvalidParameter, Message: msg})
	}
	if mode.asNormal() {
		if h, _ := w.circuit(d.Arn); h != nil {
			return w.parkOnArrival(ctx, j, t, h)
		}
	}
	for {
		turn := w.take(ctx, d.Arn, d.RateLimit, time.Now())
		if turn <= 0 {
			break
		}
		if mode.asNormal() {
			return w.postpone(ctx, j, turn)
		}
		if !wait.For(ctx, turn) {
			return ctx.Err()
		}
	}
	slot := w.slot(d.Arn)
	if mode.asNormal() {
		took := false
		if mode == runDirect {
			took = waitSlot(ctx, slot)
		} else {
			took = w.takeSlot(ctx, d.Arn, slot)
		}
		if !took {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// The destination has as many calls in flight as it may.
			// When its last calls (busyThreshold in a row) timed out or
			// failed to connect, and the two it still gets are in flight,
			if last, failing := w.lastFailure(d.Arn); failing && w.failsInARow(d.Arn) >= busyThreshold {
				// it is dead as far as anyone can tell: its circuit opens
				// now rather than after its jobs have cycled through the
				// delay tiers for seconds.
				h := w.openCircuit(ctx, d.Arn, last)
				return w.parkOnArrival(ctx, j, t, &h)
			}
			if !w.proven(d.Arn) {
				// Its calls in flight may hang (its last call was not
				// answered, or it has had none yet): rather than come back
				// through the delay tiers again and again until they end,
				// the job waits parked, and its target's keepers send it
				// when a call is free, in order.
				return w.parkBusy(ctx, j, t, cap(slot))
			}
			// The worker moves on, and the job comes back shortly.
			return w.postpone(ctx, j, busyWait+time.Duration(rand.Int64N(int64(busyWait))))
		}
	} else {
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.begin(d.Arn)
	defer func() {
		w.end(d.Arn)
		<-slot
	}()
	if mode.asNormal() && !w.proven(d.Arn) {
		select {
		case w.suspect <- struct{}{}:
			defer func() { <-w.suspect }()
		default:
			// Half the workers are in calls to destinations that have
			// not answered lately (new ones, or ones that hang): this job
			// waits parked for its keepers rather than take another.
			return w.parkBusy(ctx, j, t, cap(slot))
		}
	}
	body, err := transform.Render(j.Event, t.Input, transform.Context{RuleArn: j.RuleArn, RuleName: t.RuleName, Ingestion: j.Ingested})
	if err != nil {
		return w.fail(ctx, j, t, Result{Code: CodeInvalidParameter, Message: "cannot build the input: " + err.Error()})
	}
	auth := d.Auth
	if d.OAuth != nil {
		tok, ok := w.authorize(ctx, d.OAuth)
		if !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return w.fail(ctx, j, t, Result{Code: CodeInvalidParameter,
				Message: fmt.Sprintf("API destination %s is INACTIVE: its connection could not refresh its OAuth token", d.Arn)})
		}
		auth.Token = tok
	}
	start := time.Now()
	res := w.cfg.Invoker.Invoke(ctx, t.invocation(body, j.Event, auth))
	w.record(d.Arn, res, time.Since(start))
	res.Message = redact(res.Message, auth, d)
	w.noteAttempt(ctx, d.Arn, res)
	if ctx.Err() == nil || res.OK() {
		res = w.observe(j, start, res)
	}
	if res.OK() {
		w.delivered(ctx, j, t, res)
		return nil
	}
	if ctx.Err() != nil {
		// Shutting down mid-invocation: leave the job to be run again.
		return ctx.Err()
	}
	w.log.Info("invocation failed", "event_id", j.EventID, "target", t.Arn, "attempt", j.Attempt+1, "code", res.Code, "error", res.Message)
	if (res.Status == 401 || res.Status == 407) && d.OAuth != nil {
		// Refused token: the retry fetches a new one.
		w.tokens.invalidate(d.OAuth, auth.Token)
	}
	if (res.Status == 401 || res.Status == 407) && (d.Auth.Type == "BASIC" || d.Auth.Type == "API_KEY") {
		reason := fmt.Sprintf("The endpoint answered %d to an invocation of %s.", res.Status, d.Arn)
		if err := w.cfg.Config.Deauthorize(ctx, d.ConnectionArn, reason); err != nil {
			w.log.Warn("deauthorize connection", "error", err)
		}
	}
	if !res.Retry {
		return w.deadLetter(ctx, j, t, res, "")
	}
	return w.retry(ctx, j, t, res)
}

// takeSlot takes one of a destination's in-flight slots. A worker waits
// for one, up to slotWait, only for a destination that answers (its last
// call to end was answered: a burst above its cap finds a slot in
// milliseconds, where a job sent back would wait a quarter of a second),
// and only so many workers at a time, for one destination and for all. A
// destination whose calls time out or fail to connect, or that has not
// answered yet, gets no wait, so that it never holds the shared workers
// beyond its calls in flight.
func (w *Worker) takeSlot(ctx context.Context, dest string, slot chan struct{}) bool {
	select {
	case slot <- struct{}{}:
		return true
	default:
	}
	if !w.mayWait(dest) {
		return false
	}
	defer func() {
		w.mu.Lock()
		w.waiters[dest]--
		if w.waiters[dest] == 0 {
			delete(w.waiters, dest)
		}
		w.waiting--
		w.mu.Unlock()
	}()
	return waitSlot(ctx, slot)
}

// waitSlot takes one of slot's places, waiting up to slotWait.
func waitSlot(ctx context.Context, slot chan struct{}) bool {
	select {
	case slot <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case slot <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// mayWait reports whether a worker may wait for dest's slot, and counts
// it as waiting if so.
func (w *Worker) mayWait(dest string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, failing := w.failing[dest]; failing || !w.answered[dest] || w.stalled(dest, time.Now()) ||
		w.waiters[dest] >= w.waitRoom(dest) || w.waiting >= w.cfg.Workers-w.cfg.Workers/8 {
		return false
	}
	w.waiters[dest]++
	w.waiting++
	return true
}

// proven reports whether dest's last call to end was answered (any HTTP
// status): calls to it need no share of the workers kept for destinations
// that may hang.
func (w *Worker) proven(dest string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answered[dest]
}

// begin counts a call to dest as in flight; end, once it is over.
func (w *Worker) begin(dest string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inFlight[dest] == 0 {
		w.lastEnd[dest] = time.Now() // a stall counts from here
	}
	w.inFlight[dest]++
}

func (w *Worker) end(dest string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastEnd[dest] = time.Now() // kept while other calls are in flight
	if w.inFlight[dest]--; w.inFlight[dest] <= 0 {
		delete(w.inFlight, dest)
		delete(w.lastEnd, dest)
	}
}

// stalled reports whether dest has calls in flight and none of them has
// ended for four times its recent mean call time (at least stallAfter): a
// destination that answered in milliseconds and then hangs loses its
// waiters and its extra calls in flight within half a second, not when
// its first calls time out. (It stays proven until they do: a pause of a
// busy machine, a garbage collection, must not send a healthy
// destination's jobs to the keepers.) Called with w.mu held.
func (w *Worker) stalled(dest string, now time.Time) bool {
	if w.inFlight[dest] == 0 {
		return false
	}
	return now.Sub(w.lastEnd[dest]) > max(4*w.callTime[dest], stallAfter)
}

// stallAfter is the shortest time without a call ending that stalled
// counts as a stall.
const stallAfter = 500 * time.Millisecond

// waitRoom is how many workers may wait for dest's slot: as many as its
// calls in flight can serve within slotWait at the pace of its recent
// calls, at least minSlotWaiters, and with its calls in flight at most a
// quarter of the workers. A destination that answers in a millisecond
// takes a burst of jobs without sending one back (a job sent back costs
// two writes and waits 250-500 ms: with a fixed 64 waiters, two thirds of
// the jobs of a 5-destination backlog were sent back, and the drain ran
// at 3,000/s instead of 9,000); one whose calls take seconds keeps only
// the waiters it can serve before they would give up. All destinations
// together may hold seven eighths of the workers waiting (mayWait), so
// that some are always free to take the next jobs (counting the calls in
// flight there too cut the drain of a 5-destination backlog by a fifth);
// a destination that stops answering loses its waiters within half a
// second (stalled). Called with w.mu held.
func (w *Worker) waitRoom(dest string) int {
	_, size := w.slotsOf(dest)
	most := max(w.cfg.Workers/2-size, minSlotWaiters)
	c := w.callTime[dest]
	if c <= 0 {
		return minSlotWaiters
	}
	n := int(int64(size) * int64(slotWait) / int64(c))
	return min(max(n, minSlotWaiters), most)
}

// slotsOf returns the semaphores dest's calls take theirs from now, and
// their size: PerTarget; 2 while its calls time out or fail to connect;
// fastFactor times PerTarget once its calls take less than fastCall on
// average, until they take more than slowCall (isFast), so that a
// destination that answers in milliseconds is not held to what 16 calls
// in flight serve (at 3 ms a call, 5,000 a second: a single destination
// at 5,000 events/s queued behind its cap for seconds at a time). Such a
// destination that starts to hang holds those calls until they time out,
// but takes no more once it has stalled (no call ended for half a second
// or more), and 2 after the timeouts. Called with w.mu held.
func (w *Worker) slotsOf(dest string) (map[string]chan struct{}, int) {
	if _, ok := w.failing[dest]; ok {
		return w.probes, 2
	}
	c, ok := w.callTime[dest]
	switch {
	case !ok || !w.answered[dest] || w.stalled(dest, time.Now()) || c > slowCall:
		delete(w.isFast, dest)
	case c < fastCall:
		w.isFast[dest] = true
	}
	if w.isFast[dest] {
		return w.fast, fastFactor * w.cfg.PerTarget
	}
	return w.slots, w.cfg.PerTarget
}

// A destination whose answered calls take less than fastCall on average
// may have fastFactor times PerTarget calls in flight, until they take
// more than slowCall: a busy machine's calls slow down for a moment, and
// going back to 16 calls then (as with one threshold) made the jobs queue
// behind the cap and be sent round the delay tiers, p99 seconds.
const (
	fastCall   = 50 * time.Millisecond
	slowCall   = 250 * time.Millisecond
	fastFactor = 4
)

// minSlotWaiters is the fewest workers that may wait for a destination
// that answers, however slowly.
const minSlotWaiters = 4

// slotWait bounds the wait for a healthy destination's in-flight slot.
const slotWait = time.Second

// busyThreshold is how many calls in a row must have failed to connect or
// timed out for a busy destination's circuit to open before
// circuitThreshold of them have: one slow call is not a dead destination.
const busyThreshold = 2

// busyWait is about how long a job waits when its destination has all the
// calls in flight it may (between busyWait and twice that, spread).
const busyWait = 250 * time.Millisecond

// retry delays the job for its next attempt, or dead-letters it when its
// retry policy is exhausted.
func (w *Worker) retry(ctx context.Context, j store.Job, t Target, res Result) error {
	if j.Attempt >= t.MaxRetries {
		return w.deadLetter(ctx, j, t, res, ExhaustedAttempts)
	}
	now := w.cfg.Now()
	delay := max(w.backoff(j.Attempt), res.RetryAfter)
	if t.MaxAge > 0 && now.Add(delay).Sub(j.Ingested) > t.MaxAge {
		return w.deadLetter(ctx, j, t, res, ExhaustedAge)
	}
	next := j
	next.Attempt++
	retryAt := time.Now().Add(delay)
	if d := t.Destination; d != nil {
		if h, _ := w.circuit(d.Arn); h != nil {
			// Its destination is failing: the job waits parked, not in a
			// delay tier.
			if err := w.park(ctx, next, t, now.Add(delay), res, true); err != nil {
				return err
			}
			w.logAttempt(j, t, res, store.OutcomeParked, &retryAt)
			return nil
		}
	}
	if err := w.cfg.Store.Delay(ctx, next, delay); err != nil {
		return err
	}
	w.logAttempt(j, t, res, store.OutcomeRetrying, &retryAt)
	return nil
}

// backoff is the wait before retry n (0 for the first retry): exponential
// from BaseDelay, capped at MaxDelay, with full jitter. With the defaults
// (1 s, 15 min) 185 retries take about 23 hours.
func (w *Worker) backoff(n int) time.Duration {
	return time.Duration(rand.Int64N(int64(w.ceiling(n))) + 1)
}

// ceiling is the longest wait before retry n.
func (w *Worker) ceiling(n int) time.Duration {
	c := w.cfg.BaseDelay
	for i := 0; i < n && c < w.cfg.MaxDelay; i++ {
		c *= 2
	}
	return min(c, w.cfg.MaxDelay)
}

// fail ends a job whose attempt failed before any request: counted as a
// failed attempt, not retried.
func (w *Worker) fail(ctx context.Context, j store.Job, t Target, res Result) error {
	return w.deadLetter(ctx, j, t, w.observe(j, time.Now(), res), "")
}

// observe counts an attempt that started at start and ended now, and
// returns its result with those times.
func (w *Worker) observe(j store.Job, start time.Time, res Result) Result {
	res.Start, res.End = start, time.Now()
	w.cfg.Metrics.Attempt(metrics.RuleOf(j.RuleArn), j.TargetID, j.Ingested, res.Start, res.End, j.Attempt > 0, j.Attempt == 0, res.OK(), res.Code)
	return res
}

// delivered records an invocation that ended delivered.
func (w *Worker) delivered(ctx context.Context, j store.Job, t Target, res Result) {
	w.cfg.Metrics.Delivered(metrics.RuleOf(j.RuleArn))
	w.logAttempt(j, t, res, store.OutcomeDelivered, nil)
	w.redriven(ctx, j, t, res, store.OutcomeDelivered)
	w.log.Debug("delivered", "event_id", j.EventID, "target", t.Arn, "attempt", j.Attempt+1, "status", res.Status)
}

// redriven records the final outcome of a job a redrive run queued, for
// the run to report. The outcome stands whether or not it is recorded: a
// run that does not hear of it reports the event as not finished.
func (w *Worker) redriven(ctx context.Context, j store.Job, t Target, res Result, outcome string) {
	if j.RedriveRun == "" {
		return
	}
	r := store.RedriveResult{MessageID: j.Redrive, EventID: j.EventID, RuleArn: j.RuleArn, TargetArn: t.Arn,
		Outcome: outcome, Code: res.Code, Message: res.Message}
	if err := w.cfg.Store.RecordRedrive(ctx, j.RedriveRun, r); err != nil {
		w.log.Warn("redrive outcome not recorded", "event_id", j.EventID, "error", err)
	}
}

// logAttempt adds an attempt (or an invocation that ended without one) to
// the attempt log.
func (w *Worker) logAttempt(j store.Job, t Target, res Result, outcome string, retryAt *time.Time) {
	if res.Start.IsZero() {
		res.Start = time.Now()
		res.End = res.Start
	}
	a := store.Attempt{Time: res.Start, EventID: j.EventID, Bus: j.Bus, RuleArn: j.RuleArn, TargetID: j.TargetID, TargetArn: t.Arn,
		Attempt: j.Attempt + 1, Duration: res.End.Sub(res.Start), Status: res.Status, Code: res.Code, Message: res.Message,
		Outcome: outcome, RetryAt: retryAt}
	if outcome == store.OutcomeDeadLettered {
		a.DeadLetterQueue = t.DeadLetterArn
	}
	w.cfg.Store.LogAttempt(a)
}

// postpone puts a job back for wait without counting an attempt: the
// rate limit or the destination's in-flight cap throttled it.
func (w *Worker) postpone(ctx context.Context, j store.Job, wait time.Duration) error {
	w.cfg.Metrics.Throttled(metrics.RuleOf(j.RuleArn))
	j.Deferrals++
	return w.cfg.Store.Delay(ctx, j, wait)
}

// deadLetter ends an invocation that failed: its event goes to the
// target's dead-letter queue, or is dropped.
func (w *Worker) deadLetter(ctx context.Context, j store.Job, t Target, res Result, exhausted string) error {
	outcome, err := w.cfg.DeadLetter(ctx, DeadLetter{EventID: j.EventID, Event: j.Event, Bus: j.Bus, RuleArn: j.RuleArn, TargetID: j.TargetID,
		JobID: j.ID(), TargetArn: t.Arn, DeadLetterArn: t.DeadLetterArn, ErrorCode: res.Code, ErrorMessage: res.Message,
		ExhaustedCondition: exhausted, RetryAttempts: j.Attempt})
	if err != nil {
		return err
	}
	w.logAttempt(j, t, res, outcome, nil)
	w.redriven(ctx, j, t, res, outcome)
	return nil
}

// permitted checks the target's role for action on resource.
func (w *Worker) permitted(t Target, j store.Job, action, resource string) (Result, bool) {
	if w.cfg.CheckRole == nil {
		return Result{}, false
	}
	if t.RoleArn == "" {
		return Result{Code: CodeFailedToAssumeRole, Message: "the target has no RoleArn"}, true
	}
	code, msg := w.cfg.CheckRole(t.RoleArn, j.RuleArn, action, resource)
	if code == "" {
		return Result{}, false
	}
	w.log.Info("invocation not permitted", "event_id", j.EventID, "target", t.Arn, "role", t.RoleArn, "code", code, "error", msg)
	return Result{Code: code, Message: msg}, true
}

// sendToQueue delivers to a queue target: the event, or its input, as one
// message. A queue that is missing or whose policy refuses EventBridge is
// not retried, as EventBridge does not retry missing resources or
// permissions.
func (w *Worker) sendToQueue(ctx context.Context, j store.Job, t Target) error {
	if w.cfg.SendToQueue == nil {
		return w.fail(ctx, j, t, Result{Code: CodeNoResource, Message: "queues are not available"})
	}
	body, err := transform.Render(j.Event, t.Input, transform.Context{RuleArn: j.RuleArn, RuleName: t.RuleName, Ingestion: j.Ingested})
	if err != nil {
		return w.fail(ctx, j, t, Result{Code: CodeInvalidParameter, Message: "cannot build the input: " + err.Error()})
	}
	start := time.Now()
	code, msg, err := w.cfg.SendToQueue(ctx, QueueSend{QueueArn: t.Queue, RuleArn: j.RuleArn, EventID: j.EventID,
		Body: string(body), DedupeID: j.ID(), GroupID: t.MessageGroupID})
	if err != nil {
		return err // the store is unavailable: offered again shortly
	}
	if code != "" {
		w.log.Info("invocation failed", "event_id", j.EventID, "target", t.Arn, "attempt", j.Attempt+1, "code", code, "error", msg)
		return w.deadLetter(ctx, j, t, w.observe(j, start, Result{Code: code, Message: msg}), "")
	}
	w.delivered(ctx, j, t, w.observe(j, start, Result{Status: 200}))
	return nil
}

// slot returns the semaphore that caps the invocations in flight to one
// destination (slotsOf). A call holds the one it took until it ends,
// so for a moment after a change both may have calls in flight.
func (w *Worker) slot(dest string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, size := w.slotsOf(dest)
	c := m[dest]
	if c == nil {
		c = make(chan struct{}, size)
		m[dest] = c
	}
	return c
}

// lastFailure returns the last call to a destination whose calls time out
// or fail to connect.
func (w *Worker) lastFailure(dest string) (Result, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	res, ok := w.failing[dest]
	return res, ok
}

// record notes whether a destination is failing to answer at all.
func (w *Worker) record(dest string, res Result, took time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answered[dest] = res.Status != 0
	if res.Status != 0 || res.Code == CodeTimeout {
		// The mean of the recent answered or timed-out calls, each
		// weighing 1/8: a destination that hangs on some calls is not
		// taken for a fast one.
		if c, ok := w.callTime[dest]; ok {
			w.callTime[dest] = c + (took-c)/8
		} else {
			w.callTime[dest] = took
		}
	}
	switch {
	case res.Code == CodeTimeout || res.Code == CodeConnectionFailure:
		w.failing[dest] = res
	case res.Status != 0:
		delete(w.failing, dest)
	}
}

// take takes a token for dest at rate per second, or returns how long to
// wait for one. The rate holds for all nodes together: tokens come from a
// token bucket in the store that fills at the rate up to a second's worth
// (the burst), taken a tenth of the rate at a time; traffic within the
// limit never waits.
func (w *Worker) take(ctx context.Context, dest string, rate int, now time.Time) time.Duration {
	if rate <= 0 {
		return 0
	}
	w.mu.Lock()
	l := w.limits[dest]
	if l == nil {
		l = &limit{}
		w.limits[dest] = l
	}
	w.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens > 0 && now.Sub(l.claimed) < tokenLife {
		l.tokens--
		return 0
	}
	if now.Before(l.empty) {
		return l.turnAway(now, rate)
	}
	granted, wait, err := w.cfg.Store.ClaimTokens(ctx, dest, rate, rate, max(rate/10, 1), now)
	if err != nil {
		w.log.Warn("rate limit", "destination", dest, "error", err)
		return 100 * time.Millisecond
	}
	if granted > 0 {
		l.tokens, l.claimed = granted-1, now
		return 0
	}
	l.empty = now.Add(wait)
	return l.turnAway(now, rate)
}

// tokenLife is how long a node keeps tokens it claimed and did not use:
// after it they are dropped, so that a node's claim counts in the rate of
// the second it was made.
const tokenLife = time.Second

// limit is this node's share of a destination's token bucket, and its
// schedule of the jobs it turned away.
type limit struct {
	mu      sync.Mutex
	tokens  int
	claimed time.Time // when tokens were claimed
	// empty is when the shared bucket has a token again, as the last claim
	// found it: until then no claim is made.
	empty time.Time
	// next is when the next job turned away comes back. Turned-away jobs
	// are spread at the rate over the time to come: sent back all at once,
	// all but one would be turned away again, and a backlog of thousands
	// (a dead target's retries coming due together) would cycle through
	// the store.
	next time.Time
}

// turnAway returns how long a job that found the bucket empty waits: the
// next free place in the schedule, from when the bucket has a token again.
func (l *limit) turnAway(now time.Time, rate int) time.Duration {
	at := l.empty
	if l.next.After(at) {
		at = l.next
	}
	l.next = at.Add(time.Second / time.Duration(rate))
	return at.Sub(now)
}

// redact removes the connection's secrets from a message, in case the
// endpoint echoed them in its answer.
func redact(msg string, a Auth, d *Destination) string {
	secrets := []string{a.Password, a.APIKeyValue, a.Token}
	if a.Username != "" || a.Password != "" {
		// As an echoed Authorization header would carry them.
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	}
	if d != nil {
		for _, list := range [][]Param{d.Header, d.Query, d.Body} {
			for _, p := range list {
				if p.Secret {
					secrets = append(secrets, p.Value, url.QueryEscape(p.Value))
				}
			}
		}
		if d.OAuth != nil {
			secrets = append(secrets, d.OAuth.ClientSecret)
		}
	}
	for _, secret := range secrets {
		if len(secret) >= 4 {
			msg = strings.ReplaceAll(msg, secret, "***")
		}
	}
	return msg
}
