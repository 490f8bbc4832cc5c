// Package metrics holds bridgeport's Prometheus collectors: EventBridge's
// CloudWatch metrics under names that say so, and what operators need
// besides (error codes of failed attempts, queue depths, retry backlogs,
// connection states). Collectors are registered on an injected registry.
// Labels are bounded by the configuration (buses, rules, targets, error
// codes), never by traffic (no event ids, no URLs).
//
// All methods are safe on a nil *Metrics, so parts built without metrics
// (unit tests) need no special case.
package metrics

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the collectors bridgeport updates as it works.
type Metrics struct {
	// Routing (per bus and rule, as EventBridge's RuleName and
	// EventBusName dimensions).
	MatchedEvents      *prometheus.CounterVec // bus
	EventsSetAside     *prometheus.CounterVec // bus, reason
	TriggeredRules     *prometheus.CounterVec // bus, rule
	InvocationsCreated *prometheus.CounterVec // bus, rule

	// Schedules.
	ScheduledEvents  prometheus.Counter
	ScheduleCatchUps prometheus.Counter

	// Jobs the store's consumers passed over, written again.
	StrandedJobs *prometheus.CounterVec // lane

	// Delivery.
	Invocations                  *prometheus.CounterVec // bus, rule
	FailedInvocations            *prometheus.CounterVec // bus, rule
	InvocationAttempts           *prometheus.CounterVec // bus, rule
	SuccessfulInvocationAttempts *prometheus.CounterVec // bus, rule
	RetryInvocationAttempts      *prometheus.CounterVec // bus, rule
	InvocationsSentToDLQ         *prometheus.CounterVec // bus, rule
	InvocationsFailedToBeSentDLQ *prometheus.CounterVec // bus, rule
	DroppedInvocations           *prometheus.CounterVec // bus, rule
	ThrottledRules               *prometheus.CounterVec // bus, rule
	ParkedInvocations            *prometheus.CounterVec // bus, rule
	RoutedJobs                   *prometheus.CounterVec // path: direct, queued
	FailedAttempts               *prometheus.CounterVec // bus, rule, target, code

	IngestionToInvocationStart    *prometheus.HistogramVec // bus, rule
	IngestionToInvocationComplete *prometheus.HistogramVec // bus, rule
	IngestionToInvocationSuccess  *prometheus.HistogramVec // bus, rule

	// PutEvents.
	PutEventsRequests      *prometheus.CounterVec // result: success, failed
	PutEventsEntries       prometheus.Counter
	PutEventsFailedEntries prometheus.Counter
	PutEventsLatency       prometheus.Histogram
	PutEventsRequestSize   prometheus.Histogram
}

// latencyBuckets spans a local delivery (a millisecond) to the end of a
// retry schedule (a day), in seconds.
var latencyBuckets = []float64{0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400}

// New registers the collectors on reg and returns them.
func New(reg prometheus.Registerer) *Metrics {
	f := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "bridgeport", Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	h := func(name, help string) *prometheus.HistogramVec {
		c := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "bridgeport", Name: name, Help: help, Buckets: latencyBuckets},
			[]string{"bus", "rule"})
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		MatchedEvents: f("matched_events_total", "Events that matched at least one rule (EventBridge MatchedEvents).", "bus"),
		EventsSetAside: f("events_set_aside_total",
			"Stored events the router could not route (one that does not parse, or whose matching ran out of time on every try), kept aside instead of blocking the router.",
			"bus", "reason"),
		TriggeredRules:     f("triggered_rules_total", "Rules that matched an event (EventBridge TriggeredRules).", "bus", "rule"),
		InvocationsCreated: f("invocations_created_total", "Invocations created: one per matched event and target (EventBridge InvocationsCreated).", "bus", "rule"),
		Invocations: f("invocations_total",
			"Invocations that ended: delivered, or failed permanently after their retries (EventBridge Invocations).", "bus", "rule"),
		FailedInvocations: f("failed_invocations_total", "Invocations that failed permanently (EventBridge FailedInvocations).", "bus", "rule"),
		InvocationAttempts: f("invocation_attempts_total",
			"Attempts to invoke a target, retries included (EventBridge InvocationAttempts).", "bus", "rule"),
		SuccessfulInvocationAttempts: f("successful_invocation_attempts_total",
			"Attempts that delivered (EventBridge SuccessfulInvocationAttempts).", "bus", "rule"),
		RetryInvocationAttempts: f("retry_invocation_attempts_total",
			"Attempts that were retries (EventBridge RetryInvocationAttempts).", "bus", "rule"),
		InvocationsSentToDLQ: f("invocations_sent_to_dlq_total",
			"Failed invocations whose event went to the target's dead-letter queue (EventBridge InvocationsSentToDlq).", "bus", "rule"),
		InvocationsFailedToBeSentDLQ: f("invocations_failed_to_be_sent_to_dlq_total",
			"Failed invocations whose event could not be sent to the dead-letter queue: permissions, missing queue, size (EventBridge InvocationsFailedToBeSentToDlq).",
			"bus", "rule"),
		DroppedInvocations: f("dropped_invocations_total", "Failed invocations of targets without a dead-letter queue: the event was dropped.", "bus", "rule"),
		ThrottledRules: f("throttled_rules_total",
			"Invocations delayed by a destination's rate limit or in-flight cap (EventBridge ThrottledRules).", "bus", "rule"),
		ParkedInvocations: f("parked_invocations_total",
			"Invocations parked because their API destination's circuit was open (it kept failing): they wait, without attempts, until it answers again or their retry policy runs out.",
			"bus", "rule"),
		RoutedJobs: f("routed_jobs_total",
			"Deliveries the router created, by how their first attempt started: direct (by the router at once) or queued (through the jobs stream: a destination new, busy, failing or parked; this node's direct deliveries at their limit; or another event of the same PutEvents call not routed yet).",
			"path"),
		FailedAttempts: f("failed_attempts_total", "Failed attempts by EventBridge error code (TIMEOUT, NO_PERMISSIONS, ...).",
			"bus", "rule", "target", "code"),
		IngestionToInvocationStart: h("ingestion_to_invocation_start_latency_seconds",
			"From PutEvents accepting an event to the start of its first invocation attempt (EventBridge IngestionToInvocationStartLatency)."),
		IngestionToInvocationComplete: h("ingestion_to_invocation_complete_latency_seconds",
			"From PutEvents accepting an event to the end of its first invocation attempt (EventBridge IngestionToInvocationCompleteLatency)."),
		IngestionToInvocationSuccess: h("ingestion_to_invocation_success_latency_seconds",
			"From PutEvents accepting an event to its successful delivery (EventBridge IngestionToInvocationSuccessLatency)."),
		PutEventsRequests: f("put_events_requests_total",
			"PutEvents calls by result: success (every entry accepted) or failed (EventBridge PutEventsApproximateCallCount, SuccessCount, FailedCount).", "result"),
		PutEventsEntries:       prometheus.NewCounter(prometheus.CounterOpts{Namespace: "bridgeport", Name: "put_events_entries_total", Help: "Entries in PutEvents calls (EventBridge PutEventsEntriesCount)."}),
		PutEventsFailedEntries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "bridgeport", Name: "put_events_failed_entries_total", Help: "Entries PutEvents refused (EventBridge PutEventsFailedEntriesCount)."}),
		PutEventsLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "bridgeport", Name: "put_events_latency_seconds",
			Help: "PutEvents call duration, durable storage included (EventBridge PutEventsLatency).", Buckets: latencyBuckets[:12]}),
		PutEventsRequestSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "bridgeport", Name: "put_events_request_size_bytes",
			Help: "PutEvents request sizes, counted as AWS counts entries (EventBridge PutEventsRequestSize).", Buckets: prometheus.ExponentialBuckets(256, 4, 8)}),
	}
	m.ScheduledEvents = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "bridgeport", Name: "scheduled_events_total",
		Help: "Due times of scheduled rules fired: events stored for their rules' targets (a due time fired again by a node taking over is counted again, and stored once)."})
	m.ScheduleCatchUps = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "bridgeport", Name: "schedule_catch_ups_total",
		Help: "Scheduled rules that missed due times while no node was firing and fired their latest one late (--schedule-catch-up)."})
	m.StrandedJobs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "bridgeport", Name: "stranded_jobs_rescued_total",
		Help: "Delivery jobs the store's consumer of a lane (live or replayed) passed over without delivering, found and written again."}, []string{"lane"})
	reg.MustRegister(m.ScheduledEvents, m.ScheduleCatchUps, m.StrandedJobs)
	reg.MustRegister(m.PutEventsEntries, m.PutEventsFailedEntries, m.PutEventsLatency, m.PutEventsRequestSize)
	return m
}

// Rule identifies a rule in metric labels.
type Rule struct{ Bus, Name string }

// Matched records an event that matched rules (none: nothing).
func (m *Metrics) Matched(bus string, rules []Rule, invocations []int) {
	if m == nil || len(rules) == 0 {
		return
	}
	m.MatchedEvents.WithLabelValues(bus).Inc()
	for i, r := range rules {
		m.TriggeredRules.WithLabelValues(r.Bus, r.Name).Inc()
		if n := invocations[i]; n > 0 {
			m.InvocationsCreated.WithLabelValues(r.Bus, r.Name).Add(float64(n))
		}
	}
}

// ScheduleFired records due times fired.
func (m *Metrics) ScheduleFired(n int) {
	if m != nil {
		m.ScheduledEvents.Add(float64(n))
	}
}

// Rescued records jobs of a lane ("live" or "replayed") written again
// after the store's consumer passed over them.
func (m *Metrics) Rescued(lane string, n int) {
	if m != nil && n > 0 {
		m.StrandedJobs.WithLabelValues(lane).Add(float64(n))
	}
}

// ScheduleCaughtUp records a schedule that fires a missed due time late.
func (m *Metrics) ScheduleCaughtUp() {
	if m != nil {
		m.ScheduleCatchUps.Inc()
	}
}

// Parked records an invocation parked while its destination fails.
func (m *Metrics) Parked(ruleArn string) {
	if m == nil {
		return
	}
	r := RuleOf(ruleArn)
	m.ParkedInvocations.WithLabelValues(r.Bus, r.Name).Inc()
}

// Routed records the jobs of routed events: direct ones started by the
// router, queued ones stored in the jobs stream.
func (m *Metrics) Routed(direct, queued int) {
	if m == nil {
		return
	}
	if direct > 0 {
		m.RoutedJobs.WithLabelValues("direct").Add(float64(direct))
	}
	if queued > 0 {
		m.RoutedJobs.WithLabelValues("queued").Add(float64(queued))
	}
}

// SetAside records an event the router set aside.
func (m *Metrics) SetAside(bus, reason string) {
	if m == nil {
		return
	}
	m.EventsSetAside.WithLabelValues(bus, reason).Inc()
}

// Attempt records one invocation attempt: retry is true after the first
// attempt; first is true for an invocation's first attempt, whose start
// and end feed the ingestion latencies; ok says whether it delivered; code
// is the error code of a failed attempt.
func (m *Metrics) Attempt(r Rule, target string, ingested, start, end time.Time, retry, first, ok bool, code string) {
	if m == nil {
		return
	}
	m.InvocationAttempts.WithLabelValues(r.Bus, r.Name).Inc()
	if retry {
		m.RetryInvocationAttempts.WithLabelValues(r.Bus, r.Name).Inc()
	}
	if first {
		m.IngestionToInvocationStart.WithLabelValues(r.Bus, r.Name).Observe(start.Sub(ingested).Seconds())
		m.IngestionToInvocationComplete.WithLabelValues(r.Bus, r.Name).Observe(end.Sub(ingested).Seconds())
	}
	if ok {
		m.SuccessfulInvocationAttempts.WithLabelValues(r.Bus, r.Name).Inc()
		m.IngestionToInvocationSuccess.WithLabelValues(r.Bus, r.Name).Observe(end.Sub(ingested).Seconds())
		return
	}
	m.FailedAttempts.WithLabelValues(r.Bus, r.Name, target, code).Inc()
}

// Delivered records an invocation that ended delivered.
func (m *Metrics) Delivered(r Rule) {
	if m == nil {
		return
	}
	m.Invocations.WithLabelValues(r.Bus, r.Name).Inc()
}

// DeadLetter outcomes.
const (
	SentToDLQ         = "sent"
	FailedToSendToDLQ = "failed"
	Dropped           = "dropped"
)

// Failed records an invocation that failed permanently, and what became of
// its event.
func (m *Metrics) Failed(r Rule, outcome string) {
	if m == nil {
		return
	}
	m.Invocations.WithLabelValues(r.Bus, r.Name).Inc()
	m.FailedInvocations.WithLabelValues(r.Bus, r.Name).Inc()
	switch outcome {
	case SentToDLQ:
		m.InvocationsSentToDLQ.WithLabelValues(r.Bus, r.Name).Inc()
	case FailedToSendToDLQ:
		m.InvocationsFailedToBeSentDLQ.WithLabelValues(r.Bus, r.Name).Inc()
	case Dropped:
		m.DroppedInvocations.WithLabelValues(r.Bus, r.Name).Inc()
	}
}

// Throttled records an invocation delayed by a rate limit or a busy
// destination.
func (m *Metrics) Throttled(r Rule) {
	if m == nil {
		return
	}
	m.ThrottledRules.WithLabelValues(r.Bus, r.Name).Inc()
}

// PutEvents records one PutEvents call: refused says the whole call was
// refused (its entries count as failed only when it could be read).
func (m *Metrics) PutEvents(entries, failed, size int, refused bool, d time.Duration) {
	if m == nil {
		return
	}
	result := "success"
	if failed > 0 || refused {
		result = "failed"
	}
	m.PutEventsRequests.WithLabelValues(result).Inc()
	m.PutEventsEntries.Add(float64(entries))
	m.PutEventsFailedEntries.Add(float64(failed))
	m.PutEventsLatency.Observe(d.Seconds())
	m.PutEventsRequestSize.Observe(float64(size))
}

// RuleOf returns the labels of a rule ARN: rule/<name> is on the default
// bus, rule/<bus>/<name> on another.
func RuleOf(ruleArn string) Rule {
	i := strings.Index(ruleArn, ":rule/")
	if i < 0 {
		return Rule{Bus: "default", Name: ruleArn}
	}
	rest := ruleArn[i+len(":rule/"):]
	if bus, name, ok := strings.Cut(rest, "/"); ok {
		return Rule{Bus: bus, Name: name}
	}
	return Rule{Bus: "default", Name: rest}
}
