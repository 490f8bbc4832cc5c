package eventbus

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/jsonscan"
	"bridgeport/internal/pattern"
	"bridgeport/internal/store"
)

type putEventsInput struct {
	Entries    []putEventsEntry `json:"Entries"`
	EndpointId *string          `json:"EndpointId"`
}

type putEventsEntry struct {
	Time         *awsapi.Time `json:"Time"`
	Source       *string      `json:"Source"`
	Resources    []string     `json:"Resources"`
	DetailType   *string      `json:"DetailType"`
	Detail       *string      `json:"Detail"`
	EventBusName *string      `json:"EventBusName"`
	TraceHeader  *string      `json:"TraceHeader"`
}

type putEventsResult struct {
	EventId      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

// envelope is an event as rules match it and targets receive it, with
// members in AWS's order.
type envelope struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     string   `json:"-"` // compact JSON, as appendEnvelope writes it
}

// entrySize is the size AWS counts for an entry: 14 bytes for Time if set,
// plus the UTF-8 bytes of Source, DetailType, Detail and each resource.
func entrySize(e *putEventsEntry) int {
	n := 0
	if e.Time != nil {
		n += 14
	}
	for _, s := range []*string{e.Source, e.DetailType, e.Detail} {
		if s != nil {
			n += len(*s)
		}
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

func validateEntries(v *awsapi.Violations, entries []putEventsEntry) {
	switch {
	case entries == nil:
		v.Add(nil, "entries", awsapi.MustNotBeNull)
	case len(entries) < 1:
		v.Add("[]", "entries", awsapi.MinLen(1))
	case len(entries) > 10:
		v.Add(entriesString(entries), "entries", awsapi.MaxLen(10))
	}
	for i := range entries {
		e := &entries[i]
		p := "entries." + strconv.Itoa(i+1) + ".member."
		for j, r := range e.Resources {
			if len(r) > 2048 {
				v.Add(r, p+"resources."+strconv.Itoa(j+1)+".member", awsapi.MaxLen(2048))
			}
		}
		if e.TraceHeader != nil && (len(*e.TraceHeader) < 1 || len(*e.TraceHeader) > 500) {
			v.Add(*e.TraceHeader, p+"traceHeader", awsapi.MaxLen(500))
		}
		if e.EventBusName != nil && (len(*e.EventBusName) < 1 || len(*e.EventBusName) > 1600) {
			v.Add(*e.EventBusName, p+"eventBusName", awsapi.MaxLen(1600))
		}
	}
}

// entriesString renders the entries list the way AWS's constraint message
// shows a list value. UNVERIFIED: AWS prints the Java objects; this prints
// a short summary of each.
func entriesString(entries []putEventsEntry) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range entries {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("PutEventsRequestEntry")
	}
	b.WriteByte(']')
	return b.String()
}

// putEvents validates each entry, stores the accepted ones durably, and
// answers with an event id or an error per entry, in request order. The
// events are routed to delivery jobs after they are stored, by the router.
func (s *Service) putEvents(ctx context.Context, body []byte) (any, error) {
	start := time.Now()
	out, entries, failed, size, err := s.putEventsCall(ctx, body)
	s.metrics.PutEvents(entries, failed, size, err != nil, time.Since(start))
	return out, err
}

// putEventsCall is PutEvents; it also returns the number of entries, of
// failed entries and the request's size, for the metrics.
func (s *Service) putEventsCall(ctx context.Context, body []byte) (any, int, int, int, error) {
	in, ok := decodePutEvents(body)
	if !ok {
		in = putEventsInput{}
		if err := awsapi.Decode(body, &in); err != nil {
			return nil, 0, 0, 0, err
		}
	}
	var v awsapi.Violations
	validateEntries(&v, in.Entries)
	if err := v.Err(); err != nil {
		return nil, len(in.Entries), len(in.Entries), 0, err
	}
	total := 0
	for i := range in.Entries {
		total += entrySize(&in.Entries[i])
	}
	if total > s.quotas.EventSize {
		return nil, len(in.Entries), len(in.Entries), total, awsapi.Errorf(awsapi.CodeValidation, "Total size of the entries in the request is over the limit.")
	}
	now := s.now().UTC()
	nowText := formatEventTime(now)
	results := make([]putEventsResult, len(in.Entries))
	var events []store.Event
	var accepted []int
	id, _ := awsapi.IdentityFrom(ctx)
	var decided map[string]*awsapi.Error
	for i := range in.Entries {
		ev, res := s.acceptEntry(&in.Entries[i], now, nowText)
		if res.ErrorCode != "" {
			results[i] = res
			continue
		}
		if id.Principal != "" && s.authorize != nil {
			// Entries alike (bus, source, detail type) are decided once.
			a := s.entryAccess(ev.Bus, &in.Entries[i])
			key := a.Resource + "\x00" + a.Context["events:source"] + "\x00" + a.Context["events:detail-type"]
			err, seen := decided[key]
			if !seen {
				if decided == nil {
					decided = map[string]*awsapi.Error{}
				}
				err = s.authorize(ctx, a)
				decided[key] = err
			}
			if err != nil {
				// UNVERIFIED: the code AWS gives an entry its caller may
				// not put (AccessDeniedException is one it documents).
				results[i] = putEventsResult{ErrorCode: "AccessDeniedException", ErrorMessage: err.Message}
				continue
			}
		}
		results[i] = res
		events = append(events, ev)
		accepted = append(accepted, i)
	}
	if len(events) > 0 {
		// Each entry answers for itself: when a store server is lost
		// mid-call, some writes are acknowledged and others are not.
		for k, err := range s.st.AppendEventsEach(ctx, events) {
			if err == nil {
				continue
			}
			if ctx.Err() == nil { // not the client going away
				s.log.ErrorContext(ctx, "store event", "error", err)
			}
			results[accepted[k]] = putEventsResult{ErrorCode: "InternalFailure",
				ErrorMessage: "Internal error; the entry may not have been stored. Retry it."}
		}
	}
	failed := 0
	for _, r := range results {
		if r.ErrorCode != "" {
			failed++
		}
	}
	return struct {
		FailedEntryCount int               `json:"FailedEntryCount"`
		Entries          []putEventsResult `json:"Entries"`
	}{failed, results}, len(in.Entries), failed, total, nil
}

func invalidArgument(field string) putEventsResult {
	return putEventsResult{ErrorCode: "InvalidArgument",
		ErrorMessage: "Parameter " + field + " is not valid. Reason: " + field + " is a required argument."}
}

// acceptEntry validates one entry and builds its event; nowText is now as
// formatEventTime formats it.
func (s *Service) acceptEntry(e *putEventsEntry, now time.Time, nowText string) (store.Event, putEventsResult) {
	switch {
	case e.Source == nil || *e.Source == "":
		return store.Event{}, invalidArgument("Source")
	case e.DetailType == nil || *e.DetailType == "":
		return store.Event{}, invalidArgument("DetailType")
	case e.Detail == nil || *e.Detail == "":
		return store.Event{}, invalidArgument("Detail")
	case len(*e.DetailType) > 128:
		// UNVERIFIED wording, in the style of the recorded messages.
		return store.Event{}, putEventsResult{ErrorCode: "InvalidArgument", ErrorMessage: "Parameter DetailType is not valid. Reason: DetailType is longer than 128 characters."}
	}
	if trimmed := strings.TrimSpace(*e.Detail); len(trimmed) == 0 || trimmed[0] != '{' {
		return store.Event{}, malformedDetail
	}
	// One object, nothing after it: `{"a":1},"source":"x"` would make a
	// valid envelope with a member of the caller's choosing.
	detail, ok := jsonscan.Compact(*e.Detail)
	if !ok {
		return store.Event{}, malformedDetail
	}
	t := nowText
	if e.Time != nil && !e.Time.IsZero() {
		t = formatEventTime(e.Time.Time)
	}
	id := awsapi.NewRequestID()
	data := s.encodeEvent(id, *e.Source, *e.DetailType, e.Resources, t, detail)
	// The whole event is checked as the router will read it: a detail
	// that is not JSON, or that nests deeper than the router reads once
	// inside the envelope, is refused here rather than accepted and never
	// routed.
	if err := pattern.CheckEvent(data); err != nil {
		var evErr *pattern.EventError
		if errors.As(err, &evErr) && evErr.Limit {
			// Well-formed, but more than the router reads: say which limit.
			return store.Event{}, putEventsResult{ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed: " + evErr.Msg + "."}
		}
		return store.Event{}, malformedDetail
	}
	bus, ok := s.arns.busName(e.EventBusName)
	if !ok {
		return store.Event{}, putEventsResult{ErrorCode: "ResourceNotFoundException", ErrorMessage: "Event bus " + *e.EventBusName + " does not exist."}
	}
	if _, _, ok := s.reg.getBus(bus); !ok {
		return store.Event{}, putEventsResult{ErrorCode: "ResourceNotFoundException", ErrorMessage: "Event bus " + bus + " does not exist."}
	}
	return store.Event{ID: id, Bus: bus, Ingested: now, Data: data}, putEventsResult{EventId: id}
}

// encodeEvent returns an event of this account and region in the envelope
// targets receive; detail is compact JSON, t as formatEventTime formats
// it.
func (s *Service) encodeEvent(id, source, detailType string, resources []string, t, detail string) []byte {
	if resources == nil {
		resources = []string{}
	}
	return appendEnvelope(make([]byte, 0, len(detail)+256+len(source)+len(detailType)), envelope{
		Version: "0", ID: id, DetailType: detailType, Source: source, Account: s.arns.account,
		Time: t, Region: s.arns.region, Resources: resources,
		Detail: detail,
	})
}

// Event returns a new event (a fresh id, the time now) of this account and
// region, as targets receive one: for test requests such as diagnose's
// probe. detail must be compact JSON.
func (s *Service) Event(source, detailType string, detail []byte) []byte {
	return s.encodeEvent(awsapi.NewRequestID(), source, detailType, nil, formatEventTime(s.now()), string(detail))
}

// formatEventTime formats t as an event's time member: UTC, to the
// second.
func formatEventTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

var malformedDetail = putEventsResult{ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed."}

// appendEnvelope appends the event as JSON, members in AWS's order,
// without validating and compacting the detail a second time, and without
// escaping <, > and & as encoding/json would (EventBridge does not).
func appendEnvelope(b []byte, env envelope) []byte {
	str := func(k, v string) {
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":`...)
		b = appendJSONString(b, v)
		b = append(b, ',')
	}
	b = append(b, '{')
	str("version", env.Version)
	str("id", env.ID)
	str("detail-type", env.DetailType)
	str("source", env.Source)
	str("account", env.Account)
	str("time", env.Time)
	str("region", env.Region)
	b = append(b, `"resources":[`...)
	for i, r := range env.Resources {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, r)
	}
	b = append(b, `],"detail":`...)
	b = append(b, env.Detail...)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&15])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}
