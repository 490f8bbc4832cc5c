package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
	// Again marks an event whose message the router is offered again
	// (RouteEvents): it was routed before, whole or in part, and may have
	// jobs queued already.
	Again bool
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
//
// The plain events of one bus (from PutEvents: not forwarded, not a
// schedule's, no message id) are stored together as one message, a batch
// (see appendBatch): one write, one acknowledgement and one delivery to
// the router for the events of a call, where one message per event cost
// the engine four messages per event. Their outcome is the batch's.
func (s *Store) AppendEventsEach(ctx context.Context, events []Event) []error {
	errs := make([]error, len(events))
	futures := make([]jetstream.PubAckFuture, len(events))
	batches := map[string][]int{} // bus: the indexes of its plain events
	var order []string
	for i, ev := range events {
		if !ev.Forwarded && ev.Rule == "" && ev.DedupeID == "" {
			if batches[ev.Bus] == nil {
				order = append(order, ev.Bus)
			}
			batches[ev.Bus] = append(batches[ev.Bus], i)
			continue
		}
		futures[i], errs[i] = s.publishEvent(ev)
	}
	type pending struct {
		f   jetstream.PubAckFuture
		idx []int
	}
	var sent []pending
	for _, bus := range order {
		idx := batches[bus]
		f, err := s.js.PublishMsgAsync(batchMsg(bus, events, idx))
		if err != nil {
			for _, i := range idx {
				errs[i] = fmt.Errorf("append events: %w", err)
			}
			continue
		}
		sent = append(sent, pending{f, idx})
	}
	for i, f := range futures {
		if f != nil {
			errs[i] = waitAcks(ctx, []jetstream.PubAckFuture{f})
		}
	}
	for _, p := range sent {
		err := waitAcks(ctx, []jetstream.PubAckFuture{p.f})
		for _, i := range p.idx {
			errs[i] = err
		}
	}
	return errs
}

// AppendEventsSingly stores each event as a message of its own, as a
// plain asynchronous publish to JetStream does, and waits for them all:
// the raw engine's rate that `bridgeport bench` compares ingest with.
func (s *Store) AppendEventsSingly(ctx context.Context, events []Event) error {
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, ev := range events {
		var err error
		if futures[i], err = s.publishEvent(ev); err != nil {
			return err
		}
	}
	return waitAcks(ctx, futures)
}

// publishEvent publishes one event as a message of its own.
func (s *Store) publishEvent(ev Event) (jetstream.PubAckFuture, error) {
	msg := nats.NewMsg(eventsSubject + "." + Token(ev.Bus))
	msg.Header.Set(hdrBus, ev.Bus)
	msg.Header.Set(hdrEventID, ev.ID)
	msg.Header.Set(hdrIngested, strconv.FormatInt(ev.Ingested.UnixNano(), 10))
	// Forwarded and scheduled events carry a message id: a rule's send
	// to a bus target is repeated when a crash cuts it short, and a due
	// time is fired again by the node that takes over. (Batches carry
	// none: PutEvents' events have new ids at each call, so an id would
	// only cost memory, as JetStream keeps every id of its duplicate
	// window.)
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
	f, err := s.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		return nil, fmt.Errorf("append event: %w", err)
	}
	return f, nil
}

// A batch is the plain events of one bus stored as one message: header
// Bp-Batch holds their number and Bp-Bus their bus; the data is, for each
// event, its id, its ingestion time and its envelope:
//
//	uvarint len(id), id, varint ingested (Unix ns), uvarint len(data), data
const hdrBatch = "Bp-Batch"

// maxBatch bounds the events a batch may claim, against a corrupt header.
const maxBatch = 1 << 16

func batchMsg(bus string, events []Event, idx []int) *nats.Msg {
	msg := nats.NewMsg(eventsSubject + "." + Token(bus))
	msg.Header.Set(hdrBus, bus)
	msg.Header.Set(hdrBatch, strconv.Itoa(len(idx)))
	size := 0
	for _, i := range idx {
		size += len(events[i].ID) + len(events[i].Data) + 3*binary.MaxVarintLen64
	}
	data := make([]byte, 0, size)
	for _, i := range idx {
		ev := &events[i]
		data = AppendField(data, []byte(ev.ID))
		data = binary.AppendVarint(data, ev.Ingested.UnixNano())
		data = AppendField(data, ev.Data)
	}
	msg.Data = data
	return msg
}

// decodeBatch returns the events of a batch message.
func decodeBatch(h nats.Header, data []byte) ([]Event, error) {
	n, err := strconv.Atoi(h.Get(hdrBatch))
	if err != nil || n < 1 || n > maxBatch {
		return nil, errors.New("batch without a valid count")
	}
	bus := h.Get(hdrBus)
	events := make([]Event, 0, min(n, 16))
	for range n {
		id, rest, ok := CutField(data)
		data = rest
		if !ok {
			return nil, errors.New("batch cut short")
		}
		ns, k := binary.Varint(data)
		if k <= 0 {
			return nil, errors.New("batch cut short")
		}
		data = data[k:]
		ev, rest, ok := CutField(data)
		data = rest
		if !ok {
			return nil, errors.New("batch cut short")
		}
		events = append(events, Event{ID: string(id), Bus: bus, Ingested: time.Unix(0, ns), Data: ev})
	}
	if len(data) != 0 {
		return nil, errors.New("batch with bytes after its events")
	}
	return events, nil
}

// eventsFromMsg returns the events of a message of the events stream: a
// batch's, or the one event of a plain message.
func eventsFromMsg(h nats.Header, data []byte) ([]Event, error) {
	if h.Get(hdrBatch) != "" {
		return decodeBatch(h, data)
	}
	ev, err := eventFromMsg(h, data)
	if err != nil {
		return nil, err
	}
	return []Event{ev}, nil
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

func eventFromMsg(h nats.Header, data []byte) (Event, error) {
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
		Data:      data,
		Forwarded: h.Get(hdrForwarded) != "",
		Rule:      h.Get(hdrRule),
	}, nil
}

// RouteEvents feeds every stored event to fn through the durable consumer
// shared by all nodes, routeWorkers messages at a time (so fn must be safe
// for concurrent use, and events are not routed in order). fn gets the
// events of one message (a batch's, or one) and returns an outcome for
// each, and, when it started deliveries, a wait for their outcomes, after
// which the message is settled (while the next are routed). The message is
// acknowledged when every event is routed or set aside and every delivery
// started has a durable outcome; otherwise it is offered again after a
// pause, all its events with it. After a crash, events whose
// acknowledgement was not yet stored are offered again, so fn must be
// idempotent. When fn returns a wait, the message's acknowledgement is
// confirmed (settleRouted). RouteEvents returns when ctx ends.
//
// An event fn fails with an *Unroutable error is set aside after
// maxRouteTries tries (see routeFailed), and aside is told.
func (s *Store) RouteEvents(ctx context.Context, fn func(context.Context, []Event) ([]error, func() error), aside func(ev Event, reason string)) error {
	cons, err := s.durable(ctx, eventsStream, jetstream.ConsumerConfig{
		Durable:     routerConsumer,
		Description: "matches events against rules, and starts or queues their deliveries",
		AckPolicy:   jetstream.AckExplicitPolicy,
		// Routing takes milliseconds, and a message held longer (its
		// direct deliveries running) has its wait restarted each second;
		// after a crash the events it held are offered again when this
		// runs out.
		AckWait:       5 * time.Second,
		MaxAckPending: 4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("router consumer: %w", err)
	}
	// Messages are routed several at a time: each waits for its jobs to be
	// stored, which on a cluster is a round trip to a quorum of servers.
	var settling sync.WaitGroup
	s.consumeParallel(ctx, "router", cons, 256, routeWorkers, func(m jetstream.Msg) {
		events, err := eventsFromMsg(m.Headers(), m.Data())
		if err != nil {
			// Not an event bridgeport wrote; nothing can route it.
			s.log.Error("unreadable message in the events stream; dropped", "error", err)
			_ = m.Term()
			return
		}
		md, err := m.Metadata()
		if err == nil && time.Since(md.Timestamp) > time.Second {
			// The router is behind (a burst, a restart): the events may
			// have waited in the pull buffer; restart their ack wait, so
			// that they are not offered to another worker while this one
			// routes them (their parked jobs carry no message id).
			_ = m.InProgress()
		}
		if err != nil || md.NumDelivered > 1 {
			for i := range events {
				events[i].Again = true
			}
		}
		// Each event may take up to the match timeout: while a batch's
		// take longer than a second, its ack wait is restarted each
		// second, so that it is not offered to another worker meanwhile.
		var mu sync.Mutex
		var keep *time.Timer
		stopped := false
		mu.Lock()
		keep = time.AfterFunc(time.Second, func() {
			mu.Lock()
			defer mu.Unlock()
			if !stopped {
				_ = m.InProgress()
				keep.Reset(time.Second)
			}
		})
		mu.Unlock()
		outcomes, wait := fn(ctx, events)
		settle := func() {
			var werr error
			if wait != nil {
				werr = wait()
			}
			mu.Lock()
			stopped = true
			keep.Stop()
			mu.Unlock()
			s.settleRouted(ctx, m, events, outcomes, werr, wait != nil, aside)
		}
		if wait == nil {
			settle()
			return
		}
		// Deliveries started by fn: the message is settled once they
		// have their outcomes, while this worker routes the next.
		settling.Go(settle)
	})
	settling.Wait()
	return nil
}

// settleRouted acknowledges message m, whose events fn routed with
// outcomes, or offers it again: when an event failed other than for good,
// or the wait for the deliveries fn started failed (werr). The
// acknowledgement of a message for which fn returned a wait (started: its
// events were sent directly, or their jobs queued in batches) is
// confirmed, so that it is not lost on the way, which would send them
// again.
func (s *Store) settleRouted(ctx context.Context, m jetstream.Msg, events []Event, outcomes []error, werr error, started bool, aside func(ev Event, reason string)) {
	again := werr != nil
	if werr != nil && ctx.Err() == nil {
		s.log.Warn("route events: deliveries started could not be queued again", "event_id", events[0].ID, "error", werr)
	}
	for i, err := range outcomes {
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			_ = m.Nak() // stopping: another node, or the next start, routes them
			return
		}
		ev := events[i]
		if reason, ok := s.routeFailed(ctx, m, i, ev, err); ok {
			if aside != nil {
				aside(ev, reason)
			}
			continue
		}
		s.log.Warn("route event", "event_id", ev.ID, "bus", ev.Bus, "error", err)
		again = true
	}
	if again {
		// The events routed already are routed again: their jobs'
		// message ids stop them being queued twice (fn starts no
		// delivery for a message with a failed event; a delivery it
		// started that failed is started again: at least once).
		_ = m.NakWithDelay(time.Second)
		return
	}
	if started {
		// Waited for even while stopping: the deliveries are done.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishAckWait)
		defer cancel()
		if err := m.DoubleAck(actx); err != nil {
			s.log.Warn("ack routed events", "event_id", events[0].ID, "error", err)
		}
		return
	}
	// A plain ack: if it is lost in a crash the events are routed
	// again, and the jobs' message ids stop them being queued twice.
	if err := m.Ack(); err != nil && ctx.Err() == nil {
		s.log.Warn("ack routed events", "event_id", events[0].ID, "error", err)
	}
}

// routeFailed handles an event the router could not route because of the
// event itself (an *Unroutable error): after maxRouteTries tries, or at
// once when trying again cannot help, the event (the i-th of message m) is
// set aside, so that it never holds the router. It reports whether it did
// so, and why.
func (s *Store) routeFailed(ctx context.Context, m jetstream.Msg, i int, ev Event, err error) (string, bool) {
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
	if aerr := s.setAside(ctx, m, i, ev, un.Reason, tries); aerr != nil {
		s.log.Error("set unroutable event aside", "event_id", ev.ID, "bus", ev.Bus, "error", aerr)
		return "", false
	}
	s.log.Error("event set aside: it cannot be routed", "event_id", ev.ID, "bus", ev.Bus, "attempt", tries, "error", err)
	return un.Reason, true
}

// routerConsumer is the durable consumer that routes stored events.
const routerConsumer = "router"

// routeWorkers is how many events a node routes at a time.
const routeWorkers = 16
