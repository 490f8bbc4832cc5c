package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
	"bridgeport/internal/deliver"
	"bridgeport/internal/eventbus"
	"bridgeport/internal/store"
)

type diagnosis struct {
	out admin.DiagnoseOutput
}

func (d *diagnosis) add(f admin.Finding) {
	switch f.Status {
	case admin.StatusProblem:
		d.out.Problems++
	case admin.StatusWarning:
		d.out.Warnings++
	}
	d.out.Findings = append(d.out.Findings, f)
}

// diagnose checks, in order, everything that makes a rule fail to reach
// its targets, as the AWS troubleshooting guide lists them, and says how
// to fix what it finds.
func (s *Server) diagnose(ctx context.Context, body []byte) (any, error) {
	var in admin.DiagnoseInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	if in.Rule == nil {
		v.Add(nil, "rule", awsapi.MustNotBeNull)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	bus := "default"
	if in.EventBusName != nil {
		bus = *in.EventBusName
	}
	d := &diagnosis{out: admin.DiagnoseOutput{Findings: []admin.Finding{}}}
	rule, ok := s.events.Rule(bus, *in.Rule)
	if !ok {
		d.add(admin.Finding{Check: "rule", Status: admin.StatusProblem, Message: fmt.Sprintf("rule %s does not exist on event bus %s", *in.Rule, bus),
			Fix: "check the name and --event-bus: aws events list-rules --event-bus-name " + bus})
		return d.out, nil
	}
	d.out.RuleArn = rule.Arn
	s.checkRule(d, rule)
	s.checkAside(ctx, d, rule)
	found := false
	for _, t := range rule.Targets {
		if in.TargetId != nil && t.Id != *in.TargetId {
			continue
		}
		found = true
		s.checkTarget(ctx, d, rule, t, in.Probe)
	}
	if !found && in.TargetId != nil {
		d.add(admin.Finding{Check: "target", Target: *in.TargetId, Status: admin.StatusProblem, Message: fmt.Sprintf("rule %s has no target %s", rule.Name, *in.TargetId),
			Fix: fmt.Sprintf("aws events list-targets-by-rule --rule %s --event-bus-name %s", rule.Name, bus)})
	}
	return d.out, nil
}

func (s *Server) checkRule(d *diagnosis, r eventbus.Rule) {
	cmdBus := " --event-bus-name " + r.Bus
	if r.State != "ENABLED" {
		d.add(admin.Finding{Check: "rule", Status: admin.StatusProblem, Message: fmt.Sprintf("rule %s is %s: it matches nothing", r.Name, r.State),
			Fix: "aws events enable-rule --name " + r.Name + cmdBus})
	} else {
		d.add(admin.Finding{Check: "rule", Status: admin.StatusOK, Message: fmt.Sprintf("rule %s is ENABLED", r.Name)})
	}
	if len(r.Targets) == 0 {
		d.add(admin.Finding{Check: "targets", Status: admin.StatusProblem, Message: "the rule has no targets",
			Fix: "aws events put-targets --rule " + r.Name + cmdBus + " --targets ..."})
	}
	if r.ScheduleExpression != nil {
		s.checkSchedule(d, r)
	}
	last, matched := s.events.LastMatched(r.Arn)
	switch {
	case r.EventPattern == nil:
		// A schedule only: checkSchedule said when it last fired.
	case matched:
		d.add(admin.Finding{Check: "pattern", Status: admin.StatusOK, Message: "the pattern last matched an event at " + last.UTC().Format(time.RFC3339)})
	default:
		d.add(admin.Finding{Check: "pattern", Status: admin.StatusWarning,
			Message: fmt.Sprintf("the pattern has matched no event since this node started (%s)", s.started.UTC().Format(time.RFC3339)),
			Fix:     "compare the pattern with an event you expect: aws events test-event-pattern --event-pattern ... --event ..."})
	}
}

// checkSchedule says when a scheduled rule fires next, whether a node is
// firing schedules, and when this node last routed one of its events.
func (s *Server) checkSchedule(d *diagnosis, r eventbus.Rule) {
	expr := *r.ScheduleExpression
	next, err := s.events.NextDue(r)
	switch {
	case err != nil:
		d.add(admin.Finding{Check: "schedule", Status: admin.StatusProblem, Message: fmt.Sprintf("the schedule %s does not parse: %v", expr, err),
			Fix: "aws events put-rule --name " + r.Name + " --schedule-expression 'rate(5 minutes)' (or a valid cron(...))"})
		return
	case next.IsZero():
		d.add(admin.Finding{Check: "schedule", Status: admin.StatusProblem, Message: fmt.Sprintf("the schedule %s names no time from now on: it never fires again", expr),
			Fix: "aws events put-rule --name " + r.Name + " --schedule-expression 'cron(...)' with a year to come"})
		return
	case r.State == "DISABLED":
		d.add(admin.Finding{Check: "schedule", Status: admin.StatusWarning, Message: fmt.Sprintf("the schedule %s does not fire while the rule is disabled", expr)})
	default:
		d.add(admin.Finding{Check: "schedule", Status: admin.StatusOK, Message: fmt.Sprintf("the schedule %s fires next at %s (UTC)", expr, next.UTC().Format(time.RFC3339))})
	}
	owner, fired, held := s.events.ScheduleHolder()
	if !held {
		d.add(admin.Finding{Check: "schedule", Status: admin.StatusProblem, Message: "no node holds the schedule lease: no schedule fires",
			Fix: "check the nodes' logs for store errors; a running node takes the lease within a second of it running out"})
	} else {
		d.add(admin.Finding{Check: "schedule", Status: admin.StatusOK, Message: fmt.Sprintf("node %s fires the schedules; every due time up to %s has fired",
			owner, fired.UTC().Format(time.RFC3339))})
	}
	if last, ok := s.events.LastMatched(r.Arn); ok {
		d.add(admin.Finding{Check: "schedule", Status: admin.StatusOK, Message: "this node last routed one of the schedule's events at " + last.UTC().Format(time.RFC3339)})
	}
}

func (s *Server) checkTarget(ctx context.Context, d *diagnosis, r eventbus.Rule, t eventbus.Target, probe bool) {
	rt, ok := s.events.Target(r.Arn, t.Id)
	if !ok {
		return
	}
	id := t.Id
	switch {
	case rt.Destination != nil:
		s.diagnoseRole(d, id, r.Arn, rt.RoleArn, "events:InvokeApiDestination", rt.Destination.Arn)
		s.checkDestination(ctx, d, id, rt, probe)
	case rt.Bus != "":
		if rt.RoleArn != "" {
			s.diagnoseRole(d, id, r.Arn, rt.RoleArn, "events:PutEvents", rt.Arn)
		}
		d.add(admin.Finding{Check: "target", Target: id, Status: admin.StatusOK, Message: "event bus target " + rt.Bus})
	case rt.Queue != "":
		s.checkQueueTarget(ctx, d, id, r.Arn, rt.Queue, rt.MessageGroupID)
	default:
		d.add(admin.Finding{Check: "target", Target: id, Status: admin.StatusProblem, Message: rt.Unsupported,
			Fix: "bridgeport delivers to API destinations, event buses and SQS queues"})
	}
	s.checkDeadLetter(ctx, d, id, r.Arn, rt.DeadLetterArn)
	s.checkBacklog(ctx, d, id, r, rt)
	s.checkRecent(ctx, d, id, r)
}

func (s *Server) diagnoseRole(d *diagnosis, id, ruleArn, roleArn, action, resource string) {
	if roleArn == "" {
		d.add(admin.Finding{Check: "role", Target: id, Status: admin.StatusProblem, Message: "the target has no RoleArn, so EventBridge cannot invoke it",
			Fix: "give the target a RoleArn: aws events put-targets ... --targets '[{\"Id\":\"" + id + "\",\"RoleArn\":\"arn:aws:iam::" + s.cfg.AccountID + ":role/NAME\",...}]'"})
		return
	}
	denial := s.iam.CheckEventBridge(roleArn, ruleArn, action, resource)
	if denial == nil {
		d.add(admin.Finding{Check: "role", Target: id, Status: admin.StatusOK, Message: fmt.Sprintf("role %s may be assumed by events.amazonaws.com and allows %s", roleArn, action)})
		return
	}
	name := roleArn[strings.LastIndexByte(roleArn, '/')+1:]
	f := admin.Finding{Check: "role", Target: id, Status: admin.StatusProblem, Message: denial.Code + ": " + denial.Message}
	if denial.Code == "FAILED_TO_ASSUME_ROLE" {
		f.Fix = "let EventBridge assume the role: aws iam update-assume-role-policy --role-name " + name +
			` --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}'`
		if strings.Contains(denial.Message, "does not exist") {
			f.Fix = "create the role (aws iam create-role --role-name " + name + " ...) or fix the target's RoleArn"
		}
	} else {
		f.Fix = "allow the action: aws iam put-role-policy --role-name " + name + " --policy-name invoke --policy-document " +
			`'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"` + action + `","Resource":"` + resource + `"}]}'`
	}
	d.add(f)
}

func (s *Server) checkDestination(ctx context.Context, d *diagnosis, id string, t deliver.Target, probe bool) {
	dest := t.Destination
	switch dest.ConnectionState {
	case "AUTHORIZED":
		d.add(admin.Finding{Check: "connection", Target: id, Status: admin.StatusOK, Message: "API destination is ACTIVE: its connection is AUTHORIZED"})
	case "DELETED":
		d.add(admin.Finding{Check: "connection", Target: id, Status: admin.StatusProblem, Message: "the target's " + dest.StateReason,
			Fix: "create the API destination and connection, or fix the target's Arn"})
		return
	case "AUTHORIZING":
		d.add(admin.Finding{Check: "connection", Target: id, Status: admin.StatusWarning, Message: "the connection is AUTHORIZING: waiting for its first OAuth token"})
	default:
		conn := dest.ConnectionArn
		if i := strings.Index(conn, ":connection/"); i >= 0 {
			conn = strings.SplitN(conn[i+len(":connection/"):], "/", 2)[0]
		}
		msg := fmt.Sprintf("API destination is INACTIVE: its connection %s is %s", conn, dest.ConnectionState)
		if dest.StateReason != "" {
			msg += ": " + dest.StateReason
		}
		d.add(admin.Finding{Check: "connection", Target: id, Status: admin.StatusProblem, Message: msg,
			Fix: "fix the credentials (or the OAuth endpoint) and authorize again: aws events update-connection --name " + conn + " --auth-parameters ..."})
	}
	u, err := url.Parse(dest.Endpoint)
	if err != nil || u.Host == "" {
		d.add(admin.Finding{Check: "endpoint", Target: id, Status: admin.StatusProblem, Message: "the endpoint is not a URL: " + dest.Endpoint})
		return
	}
	endpoint := u.Scheme + "://" + u.Host + u.Path
	if u.Scheme != "https" {
		st, fix := admin.StatusProblem, "use an https:// endpoint (aws events update-api-destination --name ... --invocation-endpoint https://...), or, for a local test endpoint, start bridgeport with --allow-http-endpoints"
		if s.cfg.AllowHTTPEndpoints {
			st, fix = admin.StatusWarning, ""
		}
		d.add(admin.Finding{Check: "endpoint", Target: id, Status: st, Message: endpoint + " is not HTTPS: EventBridge requires HTTPS", Fix: fix})
	}
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	private, err := deliver.ResolvesPrivate(lctx, u.Hostname())
	cancel()
	reachable := false
	switch {
	case err != nil:
		d.add(admin.Finding{Check: "endpoint", Target: id, Status: admin.StatusProblem, Message: fmt.Sprintf("%s does not resolve: %v", u.Hostname(), err),
			Fix: "fix the endpoint's host name"})
	case private && !s.cfg.AllowPrivateEndpoints:
		d.add(admin.Finding{Check: "endpoint", Target: id, Status: admin.StatusProblem,
			Message: u.Hostname() + " resolves to a private address; EventBridge reaches public endpoints only",
			Fix:     "use a public endpoint, or (for local use) start bridgeport with --allow-private-endpoints"})
	default:
		reachable = true
		msg := endpoint + " resolves to an address invocations may reach"
		if !probe {
			msg += " (not contacted: --probe sends it a test event)"
		}
		d.add(admin.Finding{Check: "endpoint", Target: id, Status: admin.StatusOK, Message: msg})
	}
	if !probe {
		return
	}
	switch {
	case !reachable:
		d.add(admin.Finding{Check: "probe", Target: id, Status: admin.StatusWarning, Message: "not sent: the endpoint cannot be reached (see above)"})
	case dest.ConnectionState != "AUTHORIZED" && dest.ConnectionState != "AUTHORIZING":
		d.add(admin.Finding{Check: "probe", Target: id, Status: admin.StatusWarning,
			Message: "not sent: the connection is " + dest.ConnectionState + ", so deliveries send nothing either (see above)"})
	default:
		s.probe(ctx, d, id, t, endpoint)
	}
}

func (s *Server) checkQueueTarget(ctx context.Context, d *diagnosis, id, ruleArn, arn, group string) {
	c, err := s.queues.Check(ctx, arn, ruleArn)
	switch {
	case err != nil:
		d.add(admin.Finding{Check: "queue", Target: id, Status: admin.StatusWarning, Message: "could not read the queue: " + err.Error()})
	case !c.Exists:
		d.add(admin.Finding{Check: "queue", Target: id, Status: admin.StatusProblem, Message: "queue " + arn + " does not exist (NO_RESOURCE)",
			Fix: "aws sqs create-queue --queue-name " + arn[strings.LastIndexByte(arn, ':')+1:]})
	case !c.AllowsEvents:
		d.add(admin.Finding{Check: "queue", Target: id, Status: admin.StatusProblem,
			Message: "the queue's policy does not let events.amazonaws.com call sqs:SendMessage for this rule (NO_PERMISSIONS)",
			Fix:     s.queuePolicyFix(arn, ruleArn)})
	case c.FIFO && group == "":
		d.add(admin.Finding{Check: "queue", Target: id, Status: admin.StatusProblem, Message: "the queue is FIFO and the target has no SqsParameters.MessageGroupId"})
	default:
		d.add(admin.Finding{Check: "queue", Target: id, Status: admin.StatusOK, Message: "queue " + arn + " exists and its policy lets EventBridge send"})
	}
}

func (s *Server) queuePolicyFix(queueArn, ruleArn string) string {
	name := queueArn[strings.LastIndexByte(queueArn, ':')+1:]
	parts := strings.SplitN(queueArn, ":", 6)
	account := ""
	if len(parts) == 6 {
		account = parts[4]
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"%s","Condition":{"ArnEquals":{"aws:SourceArn":"%s"}}}]}`, queueArn, ruleArn)
	return fmt.Sprintf("aws sqs set-queue-attributes --queue-url http://%s/%s/%s --attributes '{\"Policy\":%q}'", s.Addr(), account, name, policy)
}

func (s *Server) checkDeadLetter(ctx context.Context, d *diagnosis, id, ruleArn, arn string) {
	if arn == "" {
		d.add(admin.Finding{Check: "dead-letter queue", Target: id, Status: admin.StatusWarning,
			Message: "the target has no dead-letter queue: events it cannot take are dropped",
			Fix:     "aws events put-targets ... with \"DeadLetterConfig\":{\"Arn\":\"arn:aws:sqs:" + s.cfg.Region + ":" + s.cfg.AccountID + ":NAME\"}"})
		return
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[2] != "sqs" {
		d.add(admin.Finding{Check: "dead-letter queue", Target: id, Status: admin.StatusProblem, Message: arn + " is not a queue ARN"})
		return
	}
	if parts[3] != s.cfg.Region {
		d.add(admin.Finding{Check: "dead-letter queue", Target: id, Status: admin.StatusProblem, Message: "the dead-letter queue is in " + parts[3] + ", not in the rule's region " + s.cfg.Region,
			Fix: "use a queue in " + s.cfg.Region})
		return
	}
	c, err := s.queues.Check(ctx, arn, ruleArn)
	switch {
	case err != nil:
		d.add(admin.Finding{Check: "dead-letter queue", Target: id, Status: admin.StatusWarning, Message: "could not read the queue: " + err.Error()})
	case !c.Exists:
		d.add(admin.Finding{Check: "dead-letter queue", Target: id, Status: admin.StatusProblem, Message: "the dead-letter queue " + arn + " does not exist",
			Fix: "aws sqs create-queue --queue-name " + parts[5]})
	case c.FIFO:
		d.add(admin.Finding{Check: "dead-letter queue", Target: id, Status: admin.StatusProblem, Message: "the dead-letter queue is FIFO; EventBridge needs a standard queue",
			Fix: "use a standard queue"})
	case !c.AllowsEvents:
		d.add(admin.Finding{Check: "dead-letter queue", Target: id, Status: admin.StatusProblem,
			Message: "the dead-letter queue's policy does not let events.amazonaws.com call sqs:SendMessage for this rule: failed events are lost",
			Fix:     s.queuePolicyFix(arn, ruleArn)})
	default:
		msg := fmt.Sprintf("dead-letter queue %s is usable; it holds %d messages", arn, c.Visible)
		if len(c.ErrorCodes) > 0 {
			msg += " (" + countsText(c.ErrorCodes) + ")"
		}
		d.add(admin.Finding{Check: "dead-letter queue", Target: id, Status: admin.StatusOK, Message: msg})
	}
}

// checkRecent reports the target's failed attempts of the last 24 hours,
// by error code: a problem if its latest attempt failed.
func (s *Server) checkRecent(ctx context.Context, d *diagnosis, id string, r eventbus.Rule) {
	list, err := s.store.Attempts(ctx, store.AttemptFilter{TargetKeys: []string{store.TargetKey(r.Arn, id)}, Since: time.Now().Add(-24 * time.Hour), Limit: 10000})
	if err != nil {
		d.add(admin.Finding{Check: "recent attempts", Target: id, Status: admin.StatusWarning, Message: "could not read the attempt log: " + err.Error()})
		return
	}
	if len(list) == 0 {
		d.add(admin.Finding{Check: "recent attempts", Target: id, Status: admin.StatusOK, Message: "no attempts in the last 24 hours"})
		return
	}
	codes := map[string]int{}
	failed := 0
	var lastFailure store.Attempt
	for _, a := range list {
		if a.Failed() {
			failed++
			codes[a.Code]++
			lastFailure = a
		}
	}
	last := list[len(list)-1]
	switch {
	case failed == 0:
		d.add(admin.Finding{Check: "recent attempts", Target: id, Status: admin.StatusOK, Message: fmt.Sprintf("%d attempts in the last 24 hours, none failed", len(list))})
	case last.Failed():
		d.add(admin.Finding{Check: "recent attempts", Target: id, Status: admin.StatusProblem,
			Message: fmt.Sprintf("%d of %d attempts in the last 24 hours failed (%s); the latest: %s: %s", failed, len(list), countsText(codes), last.Code, last.Message),
			Fix:     "see them: bridgeport events attempts --rule " + r.Name + " --event-bus " + r.Bus + " --target " + id + " --failed"})
	default:
		d.add(admin.Finding{Check: "recent attempts", Target: id, Status: admin.StatusWarning,
			Message: fmt.Sprintf("%d of %d attempts in the last 24 hours failed (%s), the latest attempt succeeded; last failure: %s", failed, len(list), countsText(codes), lastFailure.Message)})
	}
}

func countsText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// probeSource is the source of the test event diagnose --probe sends.
const probeSource = "bridgeport.diagnose"

// probeEvent is the body of a probe: an event in EventBridge's envelope
// that says what it is, so that an endpoint (or whoever reads its logs)
// can tell it from a real one.
func (s *Server) probeEvent() []byte {
	return s.events.Event(probeSource, "bridgeport diagnose probe",
		[]byte(`{"probe":true,"note":"A test request sent by bridgeport diagnose --probe to check this endpoint; it is not an event."}`))
}

// probe sends the destination a test event as a delivery would (its
// method, HTTP parameters and the connection's auth, through the delivery
// worker and its invoker) and reports what was sent, the answer and its
// time. A 2xx is OK; 5xx, a timeout, a refused connection, 3xx, and
// refused credentials or an unknown path are problems; other 4xx are
// warnings, as the endpoint may be refusing the test event rather than the
// target's input.
func (s *Server) probe(ctx context.Context, d *diagnosis, id string, t deliver.Target, endpoint string) {
	dest := t.Destination
	auth := "the connection's " + dest.Auth.Type + " auth"
	if dest.OAuth != nil {
		auth = "the connection's OAuth token"
	}
	sent := fmt.Sprintf("%s %s with a test event (source %s, not the target's input) and %s", dest.Method, endpoint, probeSource, auth)
	res := s.worker.Probe(ctx, t, s.probeEvent())
	limit := s.invoker.Timeout()
	took := res.End.Sub(res.Start).Round(time.Millisecond)
	f := admin.Finding{Check: "probe", Target: id, Status: admin.StatusProblem}
	st := res.Status
	switch {
	case res.OK():
		f.Status = admin.StatusOK
		f.Message = fmt.Sprintf("sent %s: answered %d %s in %s (the limit is %s)", sent, st, http.StatusText(st), took, limit)
	case st == 0:
		f.Message = fmt.Sprintf("tried %s: %s: %s", sent, res.Code, res.Message)
		switch {
		case res.Code == deliver.CodeTimeout:
			f.Fix = fmt.Sprintf("make the endpoint answer within %s (acknowledge first, work later): EventBridge gives up then", limit)
		case strings.Contains(res.Message, "certificate"):
			f.Fix = "serve a certificate from a trusted CA for this host name (or, for local use, start bridgeport with --extra-ca-file)"
		default:
			f.Fix = "make the endpoint reachable from bridgeport"
		}
	default:
		// "<endpoint> answered <status>: <excerpt>", the endpoint named
		// already.
		answer := res.Message
		if _, rest, ok := strings.Cut(answer, " answered "); ok {
			answer = "answered " + rest
		}
		f.Message = fmt.Sprintf("sent %s: %s (in %s)", sent, answer, took)
		switch {
		case st >= 500:
			f.Fix = "the endpoint fails the request: see its logs (deliveries that get 5xx are retried, then dead-lettered)"
		case st >= 300 && st < 400:
			f.Fix = "use the URL the endpoint redirects to: EventBridge does not follow redirects"
		case st == 401 || st == 403 || st == 407:
			f.Fix = "check the connection's credentials: aws events update-connection --name ... --auth-parameters ..."
		case st == 404 || st == 405 || st == 410:
			f.Fix = "check the destination's endpoint and HttpMethod: aws events update-api-destination --name ..."
		default:
			f.Status = admin.StatusWarning
			f.Message += "; the endpoint may refuse the test event and take real ones"
		}
	}
	d.add(f)
}
