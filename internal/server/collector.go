package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector reads, at each scrape, what is state rather than events:
// the backlogs of the delivery pipeline, the retry backlog of each target,
// the depth of each queue, the connections by state, and what clients of
// the listener hold.
type stateCollector struct {
	s *Server

	pipeline, backlog, queues, connections, nodes, replayPace *prometheus.Desc
	// Targets' backlogs and destinations' circuits (see deliver/circuit.go).
	parked, oldest, circuit *prometheus.Desc
	// What clients of the listener hold (connlimit, the body budget).
	clientConns, evicted, bodyBytes, refusedBusy *prometheus.Desc
}

func newStateCollector(s *Server) *stateCollector {
	return &stateCollector{
		s: s,
		pipeline: prometheus.NewDesc("bridgeport_pipeline_depth",
			"Work waiting in the delivery pipeline: stored messages not yet routed, each a PutEvents call's events for one bus (unrouted), deliveries due now or in hand, counted inside their batches (jobs), deliveries waiting for a retry or a rate limit (delayed), deliveries parked while their destination fails (parked), deliveries of replayed events on the replay lane (replayed).",
			[]string{"stage"}, nil),
		backlog: prometheus.NewDesc("bridgeport_retry_backlog",
			"Deliveries to a target waiting for a retry or a deferral.", []string{"bus", "rule", "target"}, nil),
		queues: prometheus.NewDesc("bridgeport_queue_messages",
			"Messages in an SQS-compatible queue, by state (visible, in_flight, delayed).", []string{"queue", "state"}, nil),
		connections: prometheus.NewDesc("bridgeport_connections",
			"Connections by state (AUTHORIZED, AUTHORIZING, DEAUTHORIZED).", []string{"state"}, nil),
		nodes: prometheus.NewDesc("bridgeport_nodes", "bridgeport nodes alive on the store (from their heartbeats).", nil, nil),
		replayPace: prometheus.NewDesc("bridgeport_replay_pace_per_second",
			"Deliveries of replayed events a second this node allows now, as the machine's spare CPU sets it (--replay-cpu); 0 when they are not paced, or none came in the last 5 seconds.", nil, nil),
		clientConns: prometheus.NewDesc("bridgeport_client_connections",
			"Client connections open on the listener (at most --max-client-connections).", nil, nil),
		evicted: prometheus.NewDesc("bridgeport_client_connections_evicted_total",
			"Client connections closed at the cap to make room for a new one (idle, or still sending their headers).", nil, nil),
		bodyBytes: prometheus.NewDesc("bridgeport_request_body_bytes",
			"Bytes of request bodies being read or held (at most --max-body-bytes-in-flight).", nil, nil),
		refusedBusy: prometheus.NewDesc("bridgeport_requests_refused_busy_total",
			"Requests answered 503 because their body found no room in --max-body-bytes-in-flight within a second.", nil, nil),
		parked: prometheus.NewDesc("bridgeport_parked_backlog",
			"Deliveries to a target parked while its API destination fails (its circuit is open).", []string{"bus", "rule", "target"}, nil),
		oldest: prometheus.NewDesc("bridgeport_backlog_oldest_age_seconds",
			"Age of the oldest event waiting for a target, delayed or parked (approximate: the first of each retry tier and of the park); 0 when none waits.",
			[]string{"bus", "rule", "target"}, nil),
		circuit: prometheus.NewDesc("bridgeport_destination_circuit_open",
			"1 while an API destination's circuit is open: it kept failing, its events are parked and one node probes it.", []string{"destination"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pipeline
	ch <- c.backlog
	ch <- c.queues
	ch <- c.connections
	ch <- c.nodes
	ch <- c.replayPace
	ch <- c.clientConns
	ch <- c.evicted
	ch <- c.bodyBytes
	ch <- c.refusedBusy
	ch <- c.parked
	ch <- c.oldest
	ch <- c.circuit
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := c.s
	if d, err := s.store.PipelineDepths(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.pipeline, prometheus.GaugeValue, float64(d.Unrouted), "unrouted")
		ch <- prometheus.MustNewConstMetric(c.pipeline, prometheus.GaugeValue, float64(d.Jobs), "jobs")
		ch <- prometheus.MustNewConstMetric(c.pipeline, prometheus.GaugeValue, float64(d.Delayed), "delayed")
		ch <- prometheus.MustNewConstMetric(c.pipeline, prometheus.GaugeValue, float64(d.Parked), "parked")
		ch <- prometheus.MustNewConstMetric(c.pipeline, prometheus.GaugeValue, float64(d.Replayed), "replayed")
	} else {
		s.log.Warn("metrics: pipeline depths", "error", err)
	}
	backlog, err := s.store.RetryBacklog(ctx)
	if err != nil {
		s.log.Warn("metrics: retry backlog", "error", err)
	}
	parked, err := s.store.ParkedCounts(ctx)
	if err != nil {
		s.log.Warn("metrics: parked backlog", "error", err)
	}
	// Every target is reported, with 0 when it has no backlog, so that a
	// backlog that clears goes to 0 rather than vanishing. The age costs a
	// few reads for each target that has a backlog.
	now := time.Now()
	for key, t := range s.events.TargetKeys() {
		ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(backlog[key]), t.Bus, t.Rule, t.TargetID)
		ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(parked[key]), t.Bus, t.Rule, t.TargetID)
		age := 0.0
		if backlog[key]+parked[key] > 0 {
			if b, err := s.store.TargetBacklog(ctx, key); err == nil && !b.Oldest.IsZero() {
				age = now.Sub(b.Oldest).Seconds()
			}
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, t.Bus, t.Rule, t.TargetID)
	}
	if open, err := s.store.OpenCircuits(ctx); err == nil {
		for _, h := range open {
			ch <- prometheus.MustNewConstMetric(c.circuit, prometheus.GaugeValue, 1, h.Destination)
		}
	} else {
		s.log.Warn("metrics: circuits", "error", err)
	}
	if depths, err := s.queues.Depths(ctx); err == nil {
		for _, d := range depths {
			ch <- prometheus.MustNewConstMetric(c.queues, prometheus.GaugeValue, float64(d.Visible), d.Name, "visible")
			ch <- prometheus.MustNewConstMetric(c.queues, prometheus.GaugeValue, float64(d.InFlight), d.Name, "in_flight")
			ch <- prometheus.MustNewConstMetric(c.queues, prometheus.GaugeValue, float64(d.Delayed), d.Name, "delayed")
		}
	} else {
		s.log.Warn("metrics: queue depths", "error", err)
	}
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(s.store.LiveNodes()))
	ch <- prometheus.MustNewConstMetric(c.replayPace, prometheus.GaugeValue, s.worker.ReplayPace())
	ch <- prometheus.MustNewConstMetric(c.clientConns, prometheus.GaugeValue, float64(s.ln.Open()))
	ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(s.ln.Evicted()))
	ch <- prometheus.MustNewConstMetric(c.bodyBytes, prometheus.GaugeValue, float64(s.bodies.InUse()))
	ch <- prometheus.MustNewConstMetric(c.refusedBusy, prometheus.CounterValue, float64(s.bodies.Refused()))
	states := s.conns.States()
	for _, st := range []string{"AUTHORIZED", "AUTHORIZING", "DEAUTHORIZED"} {
		ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(states[st]), st)
	}
}
