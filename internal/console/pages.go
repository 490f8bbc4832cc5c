package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// utc shows a time in UTC, to the second.
func utc(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// ago shows how long ago t was, roughly.
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d.Hours()))
	default:
		s = fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// epoch is a time AWS's JSON gives in seconds since 1970.
func epoch(t awsapi.Time) time.Time { return t.Time }

// pageSize is how many rules a page lists.
const pageSize = 50

type bus struct {
	Name, Arn, Description string
}

func (c *Console) buses(w http.ResponseWriter, r *http.Request, u *user) {
	p, err := listPage[bus](c, r, u, "AWSEvents.ListEventBuses", "Limit", "EventBuses", "next")
	if err != nil {
		c.failed(w, r, u, err)
		return
	}
	c.render(w, r, u, http.StatusOK, "buses", "Event buses", p, "")
}

type ruleSummary struct {
	Name, Arn, EventPattern, ScheduleExpression, State, Description, EventBusName, ManagedBy, RoleArn string
}

// rulesPage is a page of a bus's rules.
type rulesPage struct {
	Bus, Prefix string
	Rules       []ruleRow
	NextToken   string
}

// ruleRow is a rule in the list: with its targets' ids (nil when the user
// may not list them) and when it last matched on this node.
type ruleRow struct {
	ruleSummary
	Targets     []string
	TargetsErr  string
	LastMatched time.Time
}

func (c *Console) rules(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	p := rulesPage{Bus: q.Get("bus"), Prefix: q.Get("prefix")}
	if p.Bus == "" {
		p.Bus = "default"
	}
	in := map[string]any{"EventBusName": p.Bus, "Limit": pageSize}
	if p.Prefix != "" {
		in["NamePrefix"] = p.Prefix
	}
	if t := q.Get("next"); t != "" {
		in["NextToken"] = t
	}
	var out struct {
		Rules     []ruleSummary
		NextToken string
	}
	if err := c.events(r, u, "ListRules", in, &out); err != nil {
		c.failed(w, r, u, err)
		return
	}
	p.NextToken = out.NextToken
	for _, rs := range out.Rules {
		row := ruleRow{ruleSummary: rs}
		var ts struct{ Targets []struct{ Id string } }
		if err := c.events(r, u, "ListTargetsByRule", map[string]any{"Rule": rs.Name, "EventBusName": p.Bus}, &ts); err != nil {
			pr, _ := explain(err)
			row.TargetsErr = pr.Code
		}
		for _, t := range ts.Targets {
			row.Targets = append(row.Targets, t.Id)
		}
		if c.cfg.LastMatched != nil {
			row.LastMatched, _ = c.cfg.LastMatched(rs.Arn)
		}
		p.Rules = append(p.Rules, row)
	}
	c.render(w, r, u, http.StatusOK, "rules", "Rules of "+p.Bus, p, "")
}

// failed says whether an attempt did not deliver.
func failed(a admin.AttemptRecord) bool {
	return a.ErrorCode != "" || (a.Outcome != store.OutcomeDelivered && a.Outcome != "")
}

type target struct {
	Id, Arn, RoleArn string
	DeadLetterConfig *struct{ Arn string }
	RetryPolicy      *struct {
		MaximumRetryAttempts     *int
		MaximumEventAgeInSeconds *int
	}
	Health health
	// Waiting is what waits for the target, from diagnose.
	Waiting *admin.TargetBacklog
}

// bucketWidth and buckets make a target's last hour: twelve bars of five
// minutes.
const (
	bucketWidth = 5 * time.Minute
	buckets     = 12
	chartHeight = 48
)

// health is a target's last hour, from the attempt log.
type health struct {
	Attempts, Failures, Throttles int
	ByCode                        []codeCount
	Bars                          []bar
	Max                           int
}

type codeCount struct {
	Code  string
	Count int
}

// bar is one five minutes of a chart: its attempts stacked by kind.
type bar struct {
	X        int
	Label    string
	Segments []segment
}

// segment is one kind of attempt in a bar, in the chart's units.
type segment struct {
	Y, H  int
	Class string
}

// The kinds of attempt a chart stacks, from the bottom.
var kinds = [...]string{"failed", "throttled", "ok"}

// rulePage is a rule, its targets and what is known of their health.
type rulePage struct {
	Bus      string
	Rule     ruleSummary
	Targets  []target
	Findings []admin.Finding
	Problems int
	// Failed are the last failed attempts of the hour, newest first.
	Failed []admin.AttemptRecord
	// Truncated is set when the hour held more attempts than were read.
	Truncated bool
	Since     time.Time
	// Note says why a part of the page could not be shown.
	Note string
}

// perRead bounds the attempt records one read of a rule's page takes.
const perRead = 1000

// readAttempts reads a rule's attempts from since on (its failed ones
// only, with failedOnly), oldest first, at most perRead at a time. A read
// that comes back full has cut its last five minutes short: the next read
// starts at the five minutes after, so that a busy hour is sampled from
// the start of each five minutes, in 13 reads at most, rather than read
// up to a limit and no further. cut says whether a read was cut short.
func (c *Console) readAttempts(r *http.Request, u *user, rule, bus string, since time.Time, failedOnly bool) (list []admin.AttemptRecord, cut bool, err error) {
	for from := since; from.Before(time.Now()); {
		var at admin.AttemptsOutput
		in := map[string]any{"Rule": rule, "EventBusName": bus, "Since": float64(from.UnixMilli()) / 1000, "Limit": perRead, "FailedOnly": failedOnly}
		if err := c.admin(r, u, "ListAttempts", in, &at); err != nil {
			return list, cut, err
		}
		list = append(list, at.Attempts...)
		if len(at.Attempts) < perRead {
			break
		}
		cut = true
		last := at.Attempts[len(at.Attempts)-1].Time.Time
		from = since.Add((last.Sub(since)/bucketWidth + 1) * bucketWidth)
	}
	return list, cut, nil
}

func (c *Console) rule(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	p := rulePage{Bus: q.Get("bus")}
	if p.Bus == "" {
		p.Bus = "default"
	}
	name := q.Get("name")
	if err := c.events(r, u, "DescribeRule", map[string]any{"Name": name, "EventBusName": p.Bus}, &p.Rule); err != nil {
		c.failed(w, r, u, err)
		return
	}
	var ts struct{ Targets []target }
	if err := c.events(r, u, "ListTargetsByRule", map[string]any{"Rule": name, "EventBusName": p.Bus}, &ts); err != nil {
		c.failed(w, r, u, err)
		return
	}
	p.Targets = ts.Targets
	var notes []string
	var diag admin.DiagnoseOutput
	if err := c.admin(r, u, "Diagnose", map[string]any{"Rule": name, "EventBusName": p.Bus}, &diag); err != nil {
		pr, _ := explain(err)
		notes = append(notes, "diagnose: "+pr.Message)
	}
	p.Findings, p.Problems = diag.Findings, diag.Problems
	for i := range p.Targets {
		for k := range diag.Backlogs {
			if diag.Backlogs[k].TargetId == p.Targets[i].Id {
				p.Targets[i].Waiting = &diag.Backlogs[k]
			}
		}
	}
	now := time.Now()
	p.Since = now.Add(-buckets * bucketWidth).Truncate(bucketWidth).Add(bucketWidth)
	all, cut, err := c.readAttempts(r, u, name, p.Bus, p.Since, false)
	if err != nil {
		pr, _ := explain(err)
		notes = append(notes, "attempts: "+pr.Message)
	}
	p.Truncated = cut
	for i := range p.Targets {
		p.Targets[i].Health = healthOf(all, p.Targets[i].Id, p.Since)
	}
	// The failures apart: among many deliveries, those read above would
	// be the first of each five minutes, not the last.
	failed, _, err := c.readAttempts(r, u, name, p.Bus, p.Since, true)
	if err != nil {
		pr, _ := explain(err)
		notes = append(notes, "failed attempts: "+pr.Message)
	}
	sort.SliceStable(failed, func(i, j int) bool { return failed[i].Time.After(failed[j].Time.Time) })
	p.Failed = failed[:min(len(failed), 20)]
	p.Note = strings.Join(notes, "; ")
	c.render(w, r, u, http.StatusOK, "rule", "Rule "+p.Rule.Name, p, "")
}

// healthOf sums a target's attempts since since into the chart's bars.
func healthOf(list []admin.AttemptRecord, targetID string, since time.Time) health {
	var h health
	var counts [len(kinds)][buckets]int // by kind, then by five minutes
	codes := map[string]int{}
	for _, a := range list {
		if a.TargetId != targetID || a.Time.Before(since) {
			continue
		}
		i := min(int(a.Time.Sub(since)/bucketWidth), buckets-1)
		h.Attempts++
		switch {
		case !failed(a):
			counts[2][i]++
			continue
		case a.ErrorCode == "THROTTLING" || a.StatusCode == http.StatusTooManyRequests:
			h.Throttles++
			counts[1][i]++
		default:
			counts[0][i]++
		}
		h.Failures++
		code := a.ErrorCode
		if code == "" {
			code = a.Outcome
		}
		codes[code]++
	}
	for code, n := range codes {
		h.ByCode = append(h.ByCode, codeCount{code, n})
	}
	sort.Slice(h.ByCode, func(i, j int) bool {
		return h.ByCode[i].Count > h.ByCode[j].Count || h.ByCode[i].Count == h.ByCode[j].Count && h.ByCode[i].Code < h.ByCode[j].Code
	})
	for i := range buckets {
		h.Max = max(h.Max, counts[0][i]+counts[1][i]+counts[2][i])
	}
	for i := range buckets {
		failed := counts[0][i] + counts[1][i]
		b := bar{X: i * 20, Label: fmt.Sprintf("%s: %d attempts, %d failed, %d throttled",
			since.Add(time.Duration(i)*bucketWidth).UTC().Format("15:04"), failed+counts[2][i], failed, counts[1][i])}
		y := chartHeight
		for k, class := range kinds {
			n := counts[k][i]
			if n == 0 {
				continue
			}
			// At least a pixel, so that one attempt among thousands shows.
			hgt := min(max(n*chartHeight/h.Max, 1), y)
			y -= hgt
			b.Segments = append(b.Segments, segment{Y: y, H: hgt, Class: class})
		}
		h.Bars = append(h.Bars, b)
	}
	return h
}

// tracePage is every attempt to deliver one event.
type tracePage struct {
	EventId  string
	Attempts []admin.AttemptRecord
	Searched bool
}

func (c *Console) trace(w http.ResponseWriter, r *http.Request, u *user) {
	p := tracePage{EventId: strings.TrimSpace(r.URL.Query().Get("id"))}
	if p.EventId != "" {
		p.Searched = true
		var out admin.AttemptsOutput
		if err := c.admin(r, u, "TraceEvent", map[string]any{"EventId": p.EventId}, &out); err != nil {
			c.failed(w, r, u, err)
			return
		}
		p.Attempts = out.Attempts
	}
	c.render(w, r, u, http.StatusOK, "trace", "Event trace", p, "")
}

// section is a page of one list operation's answer: its items and the
// token of the page after it. Param is the query parameter that carries a
// token to this list.
type section[T any] struct {
	Items []T
	Next  string
	Param string
}

// listPage calls the list operation target (its X-Amz-Target) for a page
// of 100, from the token in the request's query parameter param, and
// returns the answer's member.
func listPage[T any](c *Console, r *http.Request, u *user, target, limit, member, param string) (section[T], error) {
	in := map[string]any{limit: 100}
	if t := r.URL.Query().Get(param); t != "" {
		in["NextToken"] = t
	}
	var out map[string]json.RawMessage
	if err := c.call(r.Context(), u, target, in, &out); err != nil {
		return section[T]{}, err
	}
	sec := section[T]{Param: param}
	if raw, ok := out[member]; ok {
		if err := json.Unmarshal(raw, &sec.Items); err != nil {
			return sec, err
		}
	}
	if raw, ok := out["NextToken"]; ok {
		_ = json.Unmarshal(raw, &sec.Next)
	}
	return sec, nil
}

type connectionItem struct {
	Name, ConnectionArn, ConnectionState, StateReason, AuthorizationType string
	LastAuthorizedTime                                                   awsapi.Time
}

type destinationItem struct {
	Name, ApiDestinationArn, ApiDestinationState, ConnectionArn, InvocationEndpoint, HttpMethod string
	InvocationRateLimitPerSecond                                                                int
}

type connectionsPage struct {
	Connections     section[connectionItem]
	ApiDestinations section[destinationItem]
}

func (c *Console) connections(w http.ResponseWriter, r *http.Request, u *user) {
	conns, dests, err := listPair[connectionItem, destinationItem](c, r, u, "Connections", "ApiDestinations")
	if err != nil {
		c.failed(w, r, u, err)
		return
	}
	c.render(w, r, u, http.StatusOK, "connections", "Connections and API destinations", connectionsPage{conns, dests}, "")
}

// listPair calls EventBridge's List<a> and List<b> for a page each: the
// answers' members a and b, their tokens in the query parameters named
// after them, in lower case.
func listPair[A, B any](c *Console, r *http.Request, u *user, a, b string) (section[A], section[B], error) {
	sa, err := listPage[A](c, r, u, "AWSEvents.List"+a, "Limit", a, strings.ToLower(a))
	if err != nil {
		return sa, section[B]{}, err
	}
	sb, err := listPage[B](c, r, u, "AWSEvents.List"+b, "Limit", b, strings.ToLower(b))
	return sa, sb, err
}

type queueSummary struct {
	URL, Name         string
	Visible, InFlight string
}

// queuesPage is a page of queues.
type queuesPage struct {
	Queues []queueSummary
	Next   string
}

func (c *Console) queues(w http.ResponseWriter, r *http.Request, u *user) {
	urls, err := listPage[string](c, r, u, "AmazonSQS.ListQueues", "MaxResults", "QueueUrls", "next")
	if err != nil {
		c.failed(w, r, u, err)
		return
	}
	p := queuesPage{Next: urls.Next}
	for _, url := range urls.Items {
		q := queueSummary{URL: url, Name: url[strings.LastIndexByte(url, '/')+1:]}
		var attrs struct{ Attributes map[string]string }
		if err := c.sqs(r, u, "GetQueueAttributes", map[string]any{"QueueUrl": url,
			"AttributeNames": []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}}, &attrs); err == nil {
			q.Visible, q.InFlight = attrs.Attributes["ApproximateNumberOfMessages"], attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]
		}
		p.Queues = append(p.Queues, q)
	}
	c.render(w, r, u, http.StatusOK, "queues", "Queues", p, "")
}

// message is a dead-letter message as the queue page shows it.
type message struct {
	MessageId string
	Body      string
	Sent      time.Time
	// The attributes EventBridge sets on a message it dead-letters.
	Rule, Target, Code, ErrorMessage, Exhausted, Retries string
}

type queuePage struct {
	URL, Name  string
	Rule, Code string
	Messages   []message
	// Rules and Codes are those of the messages read, for the filters.
	Rules, Codes []string
	Shown, Read  int
	// From is the token this page started at (empty: the oldest), Next
	// where the next one starts (empty: none is left).
	From, Next string
}

// A queue page shows up to pageMessages messages that pass its filters,
// reading at most scanMessages.
const (
	pageMessages = 50
	scanMessages = 1000
)

func (c *Console) queue(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	p := queuePage{URL: q.Get("url"), Rule: q.Get("rule"), Code: q.Get("code"), From: q.Get("from")}
	p.Name = p.URL[strings.LastIndexByte(p.URL, '/')+1:]
	// Messages are peeked, not received: looking changes neither their
	// visibility nor their receive counts.
	rules, codes := map[string]bool{}, map[string]bool{}
	token := p.From
	for p.Read < scanMessages && len(p.Messages) < pageMessages {
		// No more than the page still needs: a read can then not go past
		// the message that fills the page, and the next token is where
		// the next page starts.
		in := map[string]any{"QueueUrl": p.URL, "MaxNumberOfMessages": min(100, pageMessages-len(p.Messages), scanMessages-p.Read)}
		if token != "" {
			in["NextToken"] = token
		}
		var out admin.PeekMessagesOutput
		if err := c.admin(r, u, "PeekMessages", in, &out); err != nil {
			c.failed(w, r, u, err)
			return
		}
		for _, m := range out.Messages {
			attr := m.MessageAttributes
			msg := message{MessageId: m.MessageId, Body: m.Body, Sent: m.SentTimestamp.Time, Rule: attr["RULE_ARN"], Target: attr["TARGET_ARN"], Code: attr["ERROR_CODE"],
				ErrorMessage: attr["ERROR_MESSAGE"], Exhausted: attr["EXHAUSTED_RETRY_CONDITION"], Retries: attr["RETRY_ATTEMPTS"]}
			p.Read++
			if msg.Rule != "" {
				rules[msg.Rule] = true
			}
			if msg.Code != "" {
				codes[msg.Code] = true
			}
			if (p.Rule == "" || msg.Rule == p.Rule || strings.HasSuffix(msg.Rule, "/"+p.Rule)) && (p.Code == "" || msg.Code == p.Code) {
				p.Messages = append(p.Messages, msg)
			}
		}
		if out.NextToken == nil {
			token = ""
			break
		}
		token = *out.NextToken
	}
	p.Next = token
	if p.Rule != "" {
		rules[p.Rule] = true
	}
	if p.Code != "" {
		codes[p.Code] = true
	}
	p.Shown = len(p.Messages)
	p.Rules, p.Codes = sortedKeys(rules), sortedKeys(codes)
	c.render(w, r, u, http.StatusOK, "queue", "Queue "+p.Name, p, "")
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type archiveItem struct {
	ArchiveName, EventSourceArn, State, StateReason string
	RetentionDays                                   int
	SizeBytes, EventCount                           int64
	CreationTime                                    awsapi.Time
}

type replayItem struct {
	ReplayName, EventSourceArn, State, StateReason                                      string
	EventStartTime, EventEndTime, EventLastReplayedTime, ReplayStartTime, ReplayEndTime awsapi.Time
}

type archivesPage struct {
	Archives section[archiveItem]
	Replays  section[replayItem]
}

func (c *Console) archives(w http.ResponseWriter, r *http.Request, u *user) {
	archives, replays, err := listPair[archiveItem, replayItem](c, r, u, "Archives", "Replays")
	if err != nil {
		c.failed(w, r, u, err)
		return
	}
	c.render(w, r, u, http.StatusOK, "archives", "Archives and replays", archivesPage{archives, replays}, "")
}

// patternPage is the pattern tester: an event, a pattern, and the verdict.
type patternPage struct {
	Event, Pattern string
	Tested         bool
	Matches        bool
	err            *problem
}

func (p patternPage) problem() *problem { return p.err }

const sampleEvent = `{
  "version": "0",
  "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "Order Placed",
  "source": "com.example.orders",
  "account": "000000000000",
  "time": "2026-12-01T12:00:00Z",
  "region": "us-east-1",
  "resources": [],
  "detail": {"amount": 300, "currency": "EUR"}
}`

func (c *Console) pattern(w http.ResponseWriter, r *http.Request, u *user) {
	p := patternPage{Event: sampleEvent, Pattern: `{"source": ["com.example.orders"], "detail": {"amount": [{"numeric": [">", 100]}]}}`}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		p.Event, p.Pattern = r.PostFormValue("event"), r.PostFormValue("pattern")
		var out struct{ Result bool }
		if err := c.events(r, u, "TestEventPattern", map[string]any{"Event": p.Event, "EventPattern": p.Pattern}, &out); err != nil {
			p.err, status = explain(err)
		} else {
			p.Tested, p.Matches = true, out.Result
		}
	}
	c.render(w, r, u, status, "pattern", "Pattern tester", p, "")
}
