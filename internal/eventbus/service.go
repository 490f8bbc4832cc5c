// Package eventbus implements EventBridge's operations on event buses,
// rules and targets, PutEvents and TestEventPattern, over the configuration
// and streams in the store, and routes stored events to delivery jobs.
package eventbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/connection"
	"bridgeport/internal/metrics"
	"bridgeport/internal/store"
)

const defaultBus = "default"

// Quotas are the limits the service enforces, with AWS's defaults set by the
// caller.
type Quotas struct {
	EventBuses     int
	RulesPerBus    int
	TargetsPerRule int
	PatternSize    int
	WildcardRules  int
	EventSize      int // bytes of the entries of one PutEvents request
	Archives       int
}

// Config builds a Service.
type Config struct {
	Store     *store.Store
	Region    string
	AccountID string
	Quotas    Quotas
	// Connections holds the connections and API destinations that API
	// destination targets name.
	Connections *connection.Service
	// Queues answers whether queues exist, for DeadLetterConfig.
	Queues Queues
	// Metrics counts PutEvents calls and routing; nil counts nothing.
	Metrics *metrics.Metrics
	// MatchTimeout bounds the matching of one event (0: 2 s); see
	// routeEvents.
	MatchTimeout time.Duration
	// ParkFailing, when set, takes the jobs routed for destinations that
	// are failing (parking them) and returns the others to queue.
	ParkFailing func(ctx context.Context, jobs []store.Job) ([]store.Job, error)
	// Direct, when set, takes the routed jobs whose first attempts can
	// start at once and returns the others, to queue, and those it took
	// (nil if none): deliver.Worker.Direct.
	Direct func(jobs []store.Job) ([]store.Job, Handover)
	// NodeID names this node among those that share the store: the
	// owner of the replays it runs.
	NodeID string
	// ReplayBacklog bounds the jobs of replayed events waiting to be
	// delivered; a replay waits while more are (0: 5,000).
	ReplayBacklog int
	// ScheduleCatchUp is how old a due time that passed while no node was
	// firing schedules may be and still fire, once, when one starts (see
	// firstDue).
	ScheduleCatchUp time.Duration
	// Authorize, when set, decides whether the IAM caller of a request
	// (not the root) has a permission; PutEvents asks it for each entry.
	Authorize func(ctx context.Context, a awsapi.Access) *awsapi.Error
	// ScheduleNow is the clock schedules run by (nil: Now); tests move it
	// so that a due time comes in seconds.
	ScheduleNow func() time.Time
	Logger      *slog.Logger
	Now         func() time.Time // nil means time.Now
}

// Service holds the EventBridge operations. Start it before serving
// requests; it is safe for concurrent use.
type Service struct {
	st          *store.Store
	arns        arns
	quotas      Quotas
	log         *slog.Logger
	now         func() time.Time
	reg         *registry
	conns       *connection.Service
	queues      Queues
	metrics     *metrics.Metrics
	matchTime   time.Duration
	parkFailing func(ctx context.Context, jobs []store.Job) ([]store.Job, error)
	direct      func(jobs []store.Job) ([]store.Job, Handover)
	// settling: the messages this node routed whose direct jobs run.
	settling atomic.Int64
	// lastMatch holds, per rule ARN, when this node last routed an event
	// the rule matched.
	lastMatch sync.Map
	// targets caches resolved targets (cachedTarget) by rule and target.
	targets sync.Map

	node          string
	replayWake    chan struct{}
	replayBacklog int
	catchUp       time.Duration
	schedNow      func() time.Time
	authorize     func(ctx context.Context, a awsapi.Access) *awsapi.Error

	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Service; Start loads the configuration.
func New(cfg Config) *Service {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if cfg.ScheduleNow == nil {
		cfg.ScheduleNow = now
	}
	return &Service{
		st:            cfg.Store,
		arns:          arns{region: cfg.Region, account: cfg.AccountID},
		quotas:        cfg.Quotas,
		log:           log,
		now:           now,
		reg:           newRegistry(log, arns{region: cfg.Region, account: cfg.AccountID}),
		conns:         cfg.Connections,
		queues:        cfg.Queues,
		metrics:       cfg.Metrics,
		matchTime:     cmp.Or(cfg.MatchTimeout, defaultMatchTimeout),
		parkFailing:   cfg.ParkFailing,
		direct:        cfg.Direct,
		node:          cmp.Or(cfg.NodeID, awsapi.NewRequestID()),
		replayWake:    make(chan struct{}, 1),
		replayBacklog: cmp.Or(cfg.ReplayBacklog, defaultReplayBacklog),
		catchUp:       cfg.ScheduleCatchUp,
		schedNow:      cfg.ScheduleNow,
		authorize:     cfg.Authorize,
	}
}

// Handover is the jobs Config.Direct took: started once the jobs queued
// with them are stored, or released if they cannot be; Wait returns, once
// every job started has ended, those without a durable outcome.
type Handover interface {
	Start()
	Release()
	Wait() []store.Job
}

// Queues is what the service needs to know about SQS-compatible queues.
type Queues interface {
	// Exists reports whether a queue of this account and region has the
	// ARN, and whether it is FIFO.
	Exists(ctx context.Context, arn string) (exists, fifo bool, err error)
}

// Start watches the configuration, waits until it is loaded, makes sure the
// default bus exists, and starts routing stored events to delivery jobs.
func (s *Service) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	ready := make(chan struct{})
	watchErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var once sync.Once
		loaded := func() { once.Do(func() { s.reg.load(); close(ready) }) }
		for {
			err := s.st.Watch(wctx, s.reg.apply, loaded)
			if wctx.Err() != nil {
				return
			}
			select {
			case <-ready:
				// Watching again replays every record; applying one twice
				// is harmless.
				s.log.Error("configuration watch ended; watching again", "error", err)
			default:
				watchErr <- err
				return
			}
			select {
			case <-wctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	select {
	case <-ready:
	case err := <-watchErr:
		cancel()
		wg.Wait()
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("load configuration: %w", err)
	case <-ctx.Done():
		cancel()
		wg.Wait()
		return ctx.Err()
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.route(wctx)
	}()
	go func() {
		defer wg.Done()
		s.runSchedules(wctx)
	}()
	go func() {
		defer wg.Done()
		s.runReplays(wctx)
	}()
	go func() {
		wg.Wait()
		close(s.done)
	}()
	if err := s.ensureDefaultBus(ctx); err != nil {
		s.Stop()
		return err
	}
	return nil
}

// Stop stops watching and routing and waits for both to end.
func (s *Service) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}

func (s *Service) ensureDefaultBus(ctx context.Context) error {
	if _, _, ok := s.reg.getBus(defaultBus); ok {
		return nil
	}
	now := s.now().UTC()
	rev, err := s.put(ctx, busKey(defaultBus), 0, Bus{Name: defaultBus, Arn: s.arns.bus(defaultBus), Created: now, Modified: now})
	if errors.Is(err, store.ErrExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create default bus: %w", err)
	}
	return s.reg.applied.WaitFor(ctx, rev)
}

// Operations returns the EventBridge operations by name.
func (s *Service) Operations() map[string]awsapi.JSONOperation {
	return map[string]awsapi.JSONOperation{
		"CreateEventBus":        s.createEventBus,
		"DescribeEventBus":      s.describeEventBus,
		"UpdateEventBus":        s.updateEventBus,
		"DeleteEventBus":        s.deleteEventBus,
		"ListEventBuses":        s.listEventBuses,
		"PutRule":               s.putRule,
		"DescribeRule":          s.describeRule,
		"DeleteRule":            s.deleteRule,
		"ListRules":             s.listRules,
		"EnableRule":            s.enableRule,
		"DisableRule":           s.disableRule,
		"ListRuleNamesByTarget": s.listRuleNamesByTarget,
		"PutTargets":            s.putTargets,
		"RemoveTargets":         s.removeTargets,
		"ListTargetsByRule":     s.listTargetsByRule,
		"TagResource":           s.tagResource,
		"UntagResource":         s.untagResource,
		"ListTagsForResource":   s.listTagsForResource,
		"PutEvents":             s.putEvents,
		"PutPermission":         s.putPermission,
		"RemovePermission":      s.removePermission,
		"TestEventPattern":      s.testEventPattern,
		"CreateArchive":         s.createArchive,
		"DescribeArchive":       s.describeArchive,
		"ListArchives":          s.listArchives,
		"UpdateArchive":         s.updateArchive,
		"DeleteArchive":         s.deleteArchive,
		"StartReplay":           s.startReplay,
		"DescribeReplay":        s.describeReplay,
		"ListReplays":           s.listReplays,
		"CancelReplay":          s.cancelReplay,
	}
}
