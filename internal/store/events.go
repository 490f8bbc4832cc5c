package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is an event accepted by PutEvents: its id, the bus it was put on,
// when it was accepted and the event envelope as targets receive it.
type Event struct {
	ID       string
	Bus      string
	Ingested time.Time
	Data     []byte
	// Forwarded marks an event a rule sent on from another bus; rules do
	// not send it on to a third bus. DedupeID names the sending (the job),
	// so that a send repeated after a crash is stored once while two rules
	// sending the same event to the same bus are two events, as in AWS.
	Forwarded bool
	DedupeID  string
	// Rule, when set, is the ARN of the one rule the event is for: a
	// scheduled rule's event, which no pattern is matched against. Its
	// DedupeID names the rule's due time.
	Rule string
}

const (
	hdrBus       = "Bp-Bus"
	hdrIngested  = "Bp-Ingested"
	hdrForwarded = "Bp-Forwarded"
)

// AppendEvents writes events to the events stream and returns once every one
// is stored (each acknowledged by JetStream). A forwarded event's sending
// (its DedupeID, with the bus) is its message id, so a send repeated after
// a crash, inside the stream's duplicate window, is not stored twice.
func (s *Store) AppendEvents(ctx context.Context, events []Event) error {
	for _, err := range s.AppendEventsEach(ctx, events) {
		if err != nil {
			return err
		}
	}
	return nil
}

// AppendEventsEach is AppendEvents with an outcome per event: nil when it
// is stored. An event whose write failed may still have been stored (its
// acknowledgement lost when a stream leader changed).
func (s *Store) AppendEventsEach(ctx context.Context, events []Event) []error {
	errs := make([]error, len(events))
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, ev := range events {
		msg := nats.NewMsg(eventsSubject + "." + Token(ev.Bus))
		msg.Header.Set(hdrBus, ev.Bus)
		msg.Header.Set(hdrEventID, ev.ID)
		msg.Header.Set(hdrIngested, strconv.FormatInt(ev.Ingested.UnixNano(), 10))
		// Only forwarded and scheduled events carry a message id: a rule's
		// send to a bus target is repeated when a crash cuts it short, and
		// a due time is fired again by the node that takes over. An event
		// from PutEvents has a new id at each call, so an id would only
		// cost memory (JetStream keeps every id of its duplicate window: a
		// million of them for a million events put in two minutes).
		var opts []jetstream.PublishOpt
		if ev.Forwarded {
			msg.Header.Set(hdrForwarded, "1")
		}
		if ev.Rule != "" {
			msg.Header.Set(hdrRule, ev.Rule)
		}
		if ev.DedupeID != "" {
			// The same event may reach several buses.
			opts = append(opts, jetstream.WithMsgID(msgID(ev.DedupeID+"@"+ev.Bus)))
		}
		msg.Data = ev.Data
		if futures[i], errs[i] = s.js.PublishMsgAsync(msg, opts...); errs[i] != nil {
			errs[i] = fmt.Errorf("append event: %w", errs[i])
		}
	}
	for i, f := range futures {
		if f != nil {
			errs[i] = waitAcks(ctx, []jetstream.PubAckFuture{f})
		}
	}
	return errs
}

func waitAcks(ctx context.Context, futures []jetstream.PubAckFuture) error {
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("store: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func eventFromMsg(m jetstream.Msg) (Event, error) {
	h := m.Headers()
	ns, err := strconv.ParseInt(h.Get(hdrIngested), 10, 64)
	if err != nil {
		return Event{}, errors.New("event without ingestion time")
	}
	id := h.Get(hdrEventID)
	if id == "" {
		id = h.Get(nats.MsgIdHdr)
	}
	return Event{
		ID:        id,
		Bus:       h.Get(hdrBus),
		Ingested:  time.Unix(0, ns),
		Data:      m.Data(),
		Forwarded: h.Get(hdrForwarded) != "",
		Rule:      h.Get(hdrRule),
	}, nil
}

// RouteEvents feeds every stored event to fn through the durable consumer
// shared by all nodes, routeWorkers at a time (so fn must be safe for
// concurrent use, and events are not routed in order). An event is acknowledged when fn
// returns nil; when fn fails the event is offered again after a pause. After
// a crash, events whose acknowledgement was not yet stored are offered
// again, so fn must be idempotent. RouteEvents returns when ctx ends.
//
// An event fn fails with an *Unroutable error is set aside after
// maxRouteTries tries (see routeFailed), and aside is told.
func (s *Store) RouteEvents(ctx context.Context, fn func(context.Context, Event) error, aside func(ev Event, reason string)) error {
	cons, err := s.durable(ctx, eventsStream, jetstream.ConsumerConfig{
		Durable:     routerConsumer,
		Description: "matches events against rules and queues delivery jobs",
		AckPolicy:   jetstream.AckExplicitPolicy,
		// Routing takes milliseconds; after a crash the events it held are
		// offered again when this runs out.
		AckWait:       5 * time.Second,
		MaxAckPending: 4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("router consumer: %w", err)
	}
	// Events are routed several at a time: each waits for its jobs to be
	// stored, which on a cluster is a round trip to a quorum of servers.
	s.consumeParallel(ctx, "router", cons, 256, routeWorkers, func(m jetstream.Msg) {
		ev, err := eventFromMsg(m)
		if err != nil {
			// Not an event bridgeport wrote; nothing can route it.
			_ = m.Term()
			return
		}
		if md, err := m.Metadata(); err == nil && time.Since(md.Timestamp) > time.Second {
			// The router is behind (a burst, a restart): the event may have
			// waited in the pull buffer; restart its ack wait, so that it
			// is not offered to another worker while this one routes it
			// (its parked jobs carry no message id).
			_ = m.InProgress()
		}
		if err := fn(ctx, ev); err != nil {
			if ctx.Err() != nil {
				_ = m.Nak() // stopping: another node, or the next start, routes it
				return
			}
			if reason, ok := s.routeFailed(ctx, m, ev, err); ok {
				if aside != nil {
					aside(ev, reason)
				}
				return
			}
			s.log.Warn("route event", "event_id", ev.ID, "bus", ev.Bus, "error", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		// A plain ack: if it is lost in a crash the event is routed again,
		// and the jobs' message ids stop it being queued twice.
		if err := m.Ack(); err != nil && ctx.Err() == nil {
			s.log.Warn("ack routed event", "event_id", ev.ID, "error", err)
		}
	})
	return nil
}

// routeFailed handles an event the router could not route because of the
// event itself (an *Unroutable error): after maxRouteTries tries, or at
// once when trying again cannot help, the event is set aside and
// acknowledged, so that it never holds the router. It reports whether it
// did so, and why.
func (s *Store) routeFailed(ctx context.Context, m jetstream.Msg, ev Event, err error) (string, bool) {
	var un *Unroutable
	if !errors.As(err, &un) {
		return "", false
	}
	tries := uint64(1)
	if md, merr := m.Metadata(); merr == nil {
		tries = md.NumDelivered
	}
	if !un.Final && tries < maxRouteTries {
		return "", false
	}
	if aerr := s.setAside(ctx, m, ev, un.Reason, tries); aerr != nil {
		s.log.Error("set unroutable event aside", "event_id", ev.ID, "bus", ev.Bus, "error", aerr)
		return "", false
	}
	s.log.Error("event set aside: it cannot be routed", "event_id", ev.ID, "bus", ev.Bus, "attempt", tries, "error", err)
	if aerr := m.Ack(); aerr != nil {
		s.log.Warn("ack event set aside", "event_id", ev.ID, "error", aerr)
	}
	return un.Reason, true
}

// routerConsumer is the durable consumer that routes stored events.
const routerConsumer = "router"

// routeWorkers is how many events a node routes at a time.
const routeWorkers = 16
