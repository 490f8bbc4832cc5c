package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector reads, at each scrape, what is state rather than events:
// the backlogs of the delivery pipeline, the retry backlog of each target,
// the depth of each queue and the connections by state.
type stateCollector struct {
	s *Server

	pipeline, backlog, queues, connections, nodes *prometheus.Desc
}

func newStateCollector(s *Server) *stateCollector {
	return &stateCollector{
		s: s,
		pipeline: prometheus.NewDesc("bridgeport_pipeline_depth",
			"Work waiting in the delivery pipeline: stored events not yet routed (unrouted), deliveries due now (jobs), deliveries waiting for a retry or a rate limit (delayed).",
			[]string{"stage"}, nil),
		backlog: prometheus.NewDesc("bridgeport_retry_backlog",
			"Deliveries to a target waiting for a retry or a deferral.", []string{"bus", "rule", "target"}, nil),
		queues: prometheus.NewDesc("bridgeport_queue_messages",
			"Messages in an SQS-compatible queue, by state (visible, in_flight, delayed).", []string{"queue", "state"}, nil),
		connections: prometheus.NewDesc("bridgeport_connections",
			"Connections by state (AUTHORIZED, AUTHORIZING, DEAUTHORIZED).", []string{"state"}, nil),
		nodes: prometheus.NewDesc("bridgeport_nodes", "bridgeport nodes alive on the store (from their heartbeats).", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pipeline
	ch <- c.backlog
	ch <- c.queues
	ch <- c.connections
	ch <- c.nodes
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := c.s
	if d, err := s.store.PipelineDepths(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.pipeline, prometheus.GaugeValue, float64(d.Unrouted), "unrouted")
		ch <- prometheus.MustNewConstMetric(c.pipeline, prometheus.GaugeValue, float64(d.Jobs), "jobs")
		ch <- prometheus.MustNewConstMetric(c.pipeline, prometheus.GaugeValue, float64(d.Delayed), "delayed")
	} else {
		s.log.Warn("metrics: pipeline depths", "error", err)
	}
	if backlog, err := s.store.RetryBacklog(ctx); err == nil {
		// Every target is reported, with 0 when it has no backlog, so that
		// a backlog that clears goes to 0 rather than vanishing.
		for key, t := range s.events.TargetKeys() {
			ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(backlog[key]), t.Bus, t.Rule, t.TargetID)
		}
	} else {
		s.log.Warn("metrics: retry backlog", "error", err)
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
	states := s.events.ConnectionStates()
	for _, st := range []string{"AUTHORIZED", "AUTHORIZING", "DEAUTHORIZED"} {
		ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(states[st]), st)
	}
}
