package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// consoleClient is a cookie-keeping HTTP client of the console that does
// not follow redirects, so that each answer can be checked.
type consoleClient struct {
	t    testing.TB
	base string
	hc   *http.Client
}

func newConsoleClient(t testing.TB, addr string) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: "http://" + addr, hc: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type consoleAnswer struct {
	status int
	header http.Header
	body   string
}

func (c *consoleClient) do(req *http.Request) consoleAnswer {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return consoleAnswer{resp.StatusCode, resp.Header, string(body)}
}

func (c *consoleClient) get(path string) consoleAnswer {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

func (c *consoleClient) post(path string, form url.Values) consoleAnswer {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf returns the CSRF token of a page's forms.
func (c *consoleClient) csrf(page consoleAnswer) string {
	c.t.Helper()
	m := csrfField.FindStringSubmatch(page.body)
	if m == nil {
		c.t.Fatalf("no CSRF token in the page: %s", page.body)
	}
	return m[1]
}

// signIn signs in from the sign-in page and returns the answer.
func (c *consoleClient) signIn(key, secret string) consoleAnswer {
	c.t.Helper()
	form := c.get("/console/signin")
	return c.post("/console/signin", url.Values{"csrf": {c.csrf(form)}, "access_key_id": {key}, "secret_access_key": {secret}})
}

// page gets a page that must answer 200 and returns its body.
func (c *consoleClient) page(path string) string {
	c.t.Helper()
	a := c.get(path)
	if a.status != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, a.status, a.body)
	}
	return a.body
}

func cookieOf(t *testing.T, h http.Header, name string) *http.Cookie {
	t.Helper()
	for _, line := range h.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(line)
		if err == nil && ck.Name == name {
			return ck
		}
	}
	return nil
}

// TestConsoleSignIn: the console is behind a sign-in with an access key;
// its sessions are HttpOnly, SameSite=Strict cookies; a wrong key is
// refused in the same words whatever is wrong; every page refuses framing
// and loading from elsewhere; a form without the session's CSRF token
// changes nothing; signing out, or deleting the user's key, ends the
// session.
func TestConsoleSignIn(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := newConsoleClient(t, e.srv.Addr())

	a := c.get("/console/buses")
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/signin" {
		t.Fatalf("signed out: %d to %q", a.status, a.header.Get("Location"))
	}
	form := c.get("/console/signin")
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := form.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(form.body, `<label for="secret_access_key">`) || !strings.Contains(form.body, `type="password"`) {
		t.Errorf("sign-in form: %s", form.body)
	}

	const wrong = "The access key ID or the secret access key is not right."
	for _, creds := range [][2]string{{testKey, "not-the-secret"}, {"AKIANOSUCHKEY0000000", testSecret}, {"", ""}} {
		a := c.signIn(creds[0], creds[1])
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, wrong) || cookieOf(t, a.header, "bp_console") != nil {
			t.Errorf("sign in with %q: %d %s", creds[0], a.status, a.body)
		}
		if strings.Contains(a.body, testSecret) {
			t.Errorf("the page shows the secret")
		}
	}
	// A sign-in without the form's token is refused.
	a = c.post("/console/signin", url.Values{"access_key_id": {testKey}, "secret_access_key": {testSecret}})
	if a.status != http.StatusForbidden || cookieOf(t, a.header, "bp_console") != nil {
		t.Errorf("sign-in without its CSRF token: %d", a.status)
	}

	a = c.signIn(testKey, testSecret)
	ck := cookieOf(t, a.header, "bp_console")
	if a.status != http.StatusSeeOther || ck == nil {
		t.Fatalf("sign in: %d %v", a.status, a.header)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || ck.MaxAge != 8*3600 || ck.Secure || len(ck.Value) < 32 {
		t.Errorf("session cookie %+v", ck)
	}
	body := c.page("/console/buses")
	if !strings.Contains(body, "root ("+testKey+")") || !strings.Contains(body, `href="/console/rules?bus=default"`) {
		t.Errorf("buses page: %s", body)
	}

	// A form sent without the token, or with another, changes nothing.
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("keep"), EventPattern: aws.String(`{"source":["a"]}`)}); err != nil {
		t.Fatal(err)
	}
	token := c.csrf(c.get("/console/pattern"))
	for _, bad := range []string{"", strings.Repeat("0", len(token))} {
		a := c.post("/console/signout", url.Values{"csrf": {bad}})
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "CSRF token") {
			t.Errorf("sign-out with token %q: %d %s", bad, a.status, a.body)
		}
	}
	c.page("/console/buses") // still signed in
	a = c.post("/console/pattern", url.Values{"event": {`{}`}, "pattern": {`{}`}})
	if a.status != http.StatusForbidden {
		t.Errorf("pattern test without a token: %d", a.status)
	}

	a = c.post("/console/signout", url.Values{"csrf": {token}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d %s", a.status, a.body)
	}
	if a := c.get("/console/buses"); a.status != http.StatusSeeOther {
		t.Errorf("after signing out: %d", a.status)
	}

	// An IAM user's session ends when its key is deleted.
	u := e.newCaller("viewer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:List*","Resource":"*"}]}`)
	v := newConsoleClient(t, e.srv.Addr())
	if a := v.signIn(u.key, u.secret); a.status != http.StatusSeeOther {
		t.Fatalf("IAM user's sign-in: %d %s", a.status, a.body)
	}
	if body := v.page("/console/buses"); !strings.Contains(body, u.arn) {
		t.Errorf("the page does not name the user %s", u.arn)
	}
	if _, err := e.iamClient().DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{UserName: aws.String("viewer"), AccessKeyId: aws.String(u.key)}); err != nil {
		t.Fatal(err)
	}
	if a := v.get("/console/buses"); a.status != http.StatusSeeOther {
		t.Errorf("after the key was deleted: %d", a.status)
	}
}

// TestConsolePermissions: the console acts with the signed-in user's
// permissions, and shows a refusal in AWS's words with what to do.
func TestConsolePermissions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("orders"), EventPattern: aws.String(`{"source":["shop"]}`)}); err != nil {
		t.Fatal(err)
	}
	u := e.newCaller("lister", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["events:ListEventBuses","events:ListRules"],"Resource":"*"}]}`)
	c := newConsoleClient(t, e.srv.Addr())
	c.signIn(u.key, u.secret)
	if body := c.page("/console/rules?bus=default"); !strings.Contains(body, `name=orders">orders</a>`) {
		t.Errorf("rules page: %s", body)
	}
	a := c.get("/console/rule?bus=default&name=orders")
	want := "User: " + u.arn + " is not authorized to perform: events:DescribeRule on resource: arn:aws:events:us-east-1:000000000000:rule/orders"
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "AccessDeniedException") || !strings.Contains(a.body, want) ||
		!strings.Contains(a.body, "What to do:") {
		t.Errorf("a rule the user may not describe: %d %s", a.status, a.body)
	}
	// The pattern tester gives AWS's reason for a bad pattern.
	token := c.csrf(c.get("/console/pattern"))
	a = c.post("/console/pattern", url.Values{"csrf": {token}, "event": {`{"id":"1","source":"a","detail-type":"b","account":"1","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{}}`},
		"pattern": {`{"source":"a"}`}})
	if !strings.Contains(a.body, "AccessDeniedException") {
		t.Errorf("pattern test without events:TestEventPattern: %d %s", a.status, a.body)
	}
	root := newConsoleClient(t, e.srv.Addr())
	root.signIn(testKey, testSecret)
	token = root.csrf(root.get("/console/pattern"))
	a = root.post("/console/pattern", url.Values{"csrf": {token}, "event": {`{"id":"1","source":"a","detail-type":"b","account":"1","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{}}`},
		"pattern": {`{"source":"a"}`}})
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "InvalidEventPatternException") || !strings.Contains(a.body, "Event pattern is not valid. Reason:") {
		t.Errorf("a bad pattern: %d %s", a.status, a.body)
	}
	a = root.post("/console/pattern", url.Values{"csrf": {token}, "event": {`{"id":"1","source":"a","detail-type":"b","account":"1","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{}}`},
		"pattern": {`{"source":["a"]}`}})
	if a.status != http.StatusOK || !strings.Contains(a.body, "The pattern matches the event.") {
		t.Errorf("a matching pattern: %d %s", a.status, a.body)
	}
}

// TestConsolePages: every page of a delivery that failed and was
// dead-lettered, as the root user sees them, names what failed and never
// shows a secret; the rules list pages through every rule once.
func TestConsolePages(t *testing.T) {
	t.Parallel()
	d, failing, sq, dlq, id := deadLettered(t, http.StatusInternalServerError)

	c := newConsoleClient(t, d.srv.Addr())
	c.signIn(testKey, testSecret)
	var all strings.Builder
	rule := c.page("/console/rule?bus=default&name=r")
	for _, want := range []string{"Target x", "1</strong> attempts", "ERROR_FROM_TARGET", `href="/console/trace?id=` + id + `"`, "arn:aws:sqs:us-east-1:000000000000:dlq", "<svg class=\"chart\"", "No event waits for a retry."} {
		if !strings.Contains(rule, want) {
			t.Errorf("rule page lacks %q", want)
		}
	}
	trace := c.page("/console/trace?id=" + id)
	for _, want := range []string{"arn:aws:events:us-east-1:000000000000:rule/r", "DEAD_LETTERED", "500"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace page lacks %q: %s", want, trace)
		}
	}
	if unknown := c.page("/console/trace?id=no-such-event"); !strings.Contains(unknown, "No attempt is recorded for this event") {
		t.Errorf("trace of an unknown event: %s", unknown)
	}
	queues := c.page("/console/queues")
	if !strings.Contains(strings.ToLower(queues), strings.ToLower(`href="/console/queue?url=`+url.QueryEscape(dlq)+`">dlq</a>`)) {
		t.Errorf("queues page: %s", queues)
	}
	queue := c.page("/console/queue?url=" + url.QueryEscape(dlq))
	for _, want := range []string{"RULE_ARN", "ERROR_FROM_TARGET", "EXHAUSTED_RETRY_CONDITION", "MaximumRetryAttempts", id} {
		if !strings.Contains(queue, want) {
			t.Errorf("queue page lacks %q", want)
		}
	}
	if filtered := c.page("/console/queue?url=" + url.QueryEscape(dlq) + "&code=THROTTLING"); strings.Contains(filtered, id) || !strings.Contains(filtered, "No message matches the filter") {
		t.Errorf("the filter by error code kept a message of another code")
	}
	if filtered := c.page("/console/queue?url=" + url.QueryEscape(dlq) + "&code=ERROR_FROM_TARGET&rule=r"); !strings.Contains(filtered, id) {
		t.Errorf("the filter by error code and rule left out the message")
	}
	// Looking changed nothing: the message is visible, received once (by
	// the test, before).
	qa, err := sq.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(dlq), AttributeNames: []sqstypes.QueueAttributeName{"All"}})
	if err != nil || qa.Attributes["ApproximateNumberOfMessages"] != "1" || qa.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Errorf("after the queue pages: %v, %v", qa, err)
	}
	got, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"ApproximateReceiveCount"}})
	if err != nil || len(got.Messages) != 1 || got.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("the message after the queue pages: %+v, %v", got, err)
	}
	if err := release(sq, dlq, got.Messages[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	conns := c.page("/console/connections")
	if !strings.Contains(conns, "AUTHORIZED") || !strings.Contains(conns, d.sink.URL+"/hook") {
		t.Errorf("connections page: %s", conns)
	}
	for _, p := range []string{"/console/buses", "/console/rules?bus=default", "/console/archives", "/console/pattern"} {
		all.WriteString(c.page(p))
	}
	all.WriteString(rule + trace + queues + queue + conns)
	// The connection's password ("p") is too short to look for: put a
	// recognisable one on it first.
	const password = "console-must-never-show-this"
	if _, err := d.eb.UpdateConnection(ctx, &eventbridge.UpdateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.UpdateConnectionAuthRequestParameters{BasicAuthParameters: &types.UpdateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String(password)}}}); err != nil {
		t.Fatal(err)
	}
	all.WriteString(c.page("/console/connections"))
	for _, secret := range []string{password, testSecret} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("a page shows the secret %q", secret)
		}
	}

	// Redrive once the target is fixed.
	failing.Store(false)
	a := c.post("/console/redrive", url.Values{"csrf": {c.csrf(c.get("/console/queue?url=" + url.QueryEscape(dlq)))}, "url": {dlq}, "rate": {"abc"}})
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "the rate must be a number") {
		t.Errorf("a bad rate: %d %s", a.status, a.body)
	}
	a = c.post("/console/redrive", url.Values{"csrf": {c.csrf(c.get("/console/buses"))}, "url": {dlq}, "rate": {"10"}})
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.header.Get("Location"), "/console/redrive?run=") {
		t.Fatalf("redrive: %d %s", a.status, a.body)
	}
	progress := a.header.Get("Location")
	deadline := time.Now().Add(time.Minute)
	for p := c.page(progress); !strings.Contains(p, `Finished: <strong id="redriven">1</strong> redriven, <strong id="delivered">1</strong> delivered`); p = c.page(progress) {
		if time.Now().After(deadline) {
			t.Fatalf("the redrive did not finish with the event delivered: %s", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The failed attempt, then the redriven delivery.
	if got := d.sink.wait(t, 2); !strings.Contains(got[1].body, `"rule": "r"`) {
		t.Errorf("the redriven delivery: %s", got[1].body)
	}
	// Another user does not see the run.
	other := newConsoleClient(t, d.srv.Addr())
	u := d.newCaller("other", "")
	other.signIn(u.key, u.secret)
	if a := other.get(progress); a.status != http.StatusNotFound {
		t.Errorf("another user's view of the run: %d", a.status)
	}

	// Paging: 120 rules, 50 a page, each listed once.
	for i := range 120 {
		if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(fmt.Sprintf("p-%03d", i)), EventPattern: aws.String(`{"source":["p"]}`)}); err != nil {
			t.Fatal(err)
		}
	}
	seen := c.follow("/console/rules?bus=default&prefix=p-", `name=(p-\d+)">`, "Next page", 3)
	if len(seen) != 120 {
		t.Errorf("%d rules listed, want 120", len(seen))
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", name, n)
		}
	}

	// Queues, 100 a page: the dead-letter queue and 120 more.
	for i := range 120 {
		d.createQueue(sq, fmt.Sprintf("q-%03d", i), nil)
	}
	queueLink := regexp.MustCompile(`">(q-\d+|dlq)</a>`)
	first := c.page("/console/queues")
	m := regexp.MustCompile(`href="/console/queues\?next=([^"]+)">Next queues`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("no next page of queues")
	}
	second := c.page("/console/queues?next=" + m[1])
	names := map[string]bool{}
	for _, page := range []string{first, second} {
		for _, m := range queueLink.FindAllStringSubmatch(page, -1) {
			names[m[1]] = true
		}
	}
	if n1, n2 := len(queueLink.FindAllString(first, -1)), len(queueLink.FindAllString(second, -1)); n1 != 100 || n2 != 21 || len(names) != 121 {
		t.Errorf("queue pages of %d and %d, %d queues in all; want 100, 21 and 121", n1, n2, len(names))
	}

	// A queue's messages, 50 a page, each shown once.
	q0 := strings.TrimSuffix(dlq, "dlq") + "q-000"
	for b := range 6 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for k := range 10 {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(k)), MessageBody: aws.String(fmt.Sprintf("body-%02d", b*10+k))})
		}
		if out, err := sq.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(q0), Entries: entries}); err != nil || len(out.Failed) > 0 {
			t.Fatalf("send: %v %v", out, err)
		}
	}
	bodies := c.follow("/console/queue?url="+url.QueryEscape(q0), `<pre>(body-\d+)</pre>`, "More messages", 2)
	if len(bodies) != 60 {
		t.Errorf("%d messages shown, want 60", len(bodies))
	}
	for b, n := range bodies {
		if n != 1 {
			t.Errorf("%s shown %d times", b, n)
		}
	}

	// An archive, on its page.
	if _, err := d.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("everything"),
		EventSourceArn: aws.String("arn:aws:events:us-east-1:000000000000:event-bus/default"), RetentionDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if archives := c.page("/console/archives"); !strings.Contains(archives, "<td>everything</td>") || !strings.Contains(archives, "7 days") {
		t.Errorf("archives page: %s", archives)
	}
}

// deadLettered starts a delivery environment whose target answers status
// (until failing is set to false) and is not retried, puts one event and
// waits for it in the target's dead-letter queue, where it is visible.
func deadLettered(t *testing.T, status int) (d *deliveryEnv, failing *atomic.Bool, sq *awssqs.Client, dlq, id string) {
	t.Helper()
	failing = new(atomic.Bool)
	failing.Store(true)
	d = setupDelivery(t, func(int) int {
		if failing.Load() {
			return status
		}
		return http.StatusOK
	}, &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(0)})
	sq, dlq = d.withDLQ(dlqPolicy("arn:aws:sqs:us-east-1:000000000000:dlq"))
	id = d.putID()
	// Received to know it is there, and made visible again.
	if err := release(sq, dlq, receiveDLQ(t, sq, dlq, 1)[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	// The attempt log is written without waiting: its record may come a
	// moment after the message.
	waitFor(t, func() bool {
		list, err := d.srv.store.Attempts(ctx, store.AttemptFilter{EventID: id})
		return err == nil && len(list) > 0 && list[len(list)-1].Outcome == store.OutcomeDeadLettered
	})
	return d, failing, sq, dlq, id
}

// follow pages from path through the links named next, at most pages
// times, and counts the first group of item in every page.
func (c *consoleClient) follow(path, item, next string, pages int) map[string]int {
	c.t.Helper()
	itemRe := regexp.MustCompile(item)
	nextRe := regexp.MustCompile(`href="(/console/[^"]+)">` + next + `<`)
	seen := map[string]int{}
	for n := 0; path != ""; n++ {
		if n > pages {
			c.t.Fatalf("more than %d pages of %s", pages, item)
		}
		body := c.page(path)
		for _, m := range itemRe.FindAllStringSubmatch(body, -1) {
			seen[m[1]]++
		}
		path = ""
		if m := nextRe.FindStringSubmatch(body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	return seen
}

// release makes a received message visible again.
func release(c *awssqs.Client, url string, handle *string) error {
	_, err := c.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: handle, VisibilityTimeout: 0})
	return err
}

// BenchmarkConsoleRules pages through a bus of 10,000 rules in the
// console, 50 rules a page, following the Next links: the time per page,
// signed in as the root user.
//
//	go test -run '^$' -bench ConsoleRules -benchtime 3x ./internal/server
func BenchmarkConsoleRules(b *testing.B) {
	e := &env{t: b, dir: b.TempDir()}
	e.cfg = testConfig(e.dir)
	e.cfg.Quotas.RulesPerBus = 20000
	e.start()
	const n = 10000
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(fmt.Sprintf("rule-%05d", i)),
					EventPattern: aws.String(fmt.Sprintf(`{"source":["s%d"],"detail":{"n":[{"numeric":[">",%d]}]}}`, i%50, i))}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c := newConsoleClient(b, e.srv.Addr())
	c.signIn(testKey, testSecret)
	nextLink := regexp.MustCompile(`href="(/console/rules\?[^"]*next=[^"]+)">Next page`)
	pages := 0
	var slowest time.Duration
	b.ResetTimer()
	for b.Loop() {
		for path := "/console/rules?bus=default"; path != ""; pages++ {
			t0 := time.Now()
			body := c.page(path)
			slowest = max(slowest, time.Since(t0))
			path = ""
			if m := nextLink.FindStringSubmatch(body); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(pages), "ms/page")
	b.ReportMetric(float64(pages)/float64(b.N), "pages")
	b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest-ms")
}

// TestConsoleBacklog: the rule's page counts the events that wait for a
// failing target, and an event's trace says when it is tried next.
func TestConsoleBacklog(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return http.StatusServiceUnavailable }, nil)
	id := d.putID()
	d.put()
	c := newConsoleClient(t, d.srv.Addr())
	c.signIn(testKey, testSecret)
	// The events are retried every 20 to 100 ms: at times both are in
	// flight and none waits.
	waitFor(t, func() bool {
		rule := c.page("/console/rule?bus=default&name=r")
		return strings.Contains(rule, "</strong> events wait now (") && strings.Contains(rule, "the oldest accepted 20")
	})
	waitFor(t, func() bool { return strings.Contains(c.page("/console/trace?id="+id), "next try 20") })
}

// TestConsoleRedriveLimits: a redrive started from the console can be
// cancelled from its page; its form is checked; a run stops when the key
// that started it is deleted.
func TestConsoleRedriveLimits(t *testing.T) {
	t.Parallel()
	d, _, sq, dlq, _ := deadLettered(t, http.StatusServiceUnavailable)
	d.put()
	d.put()
	waitFor(t, func() bool {
		qa, err := sq.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(dlq), AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}})
		return err == nil && qa.Attributes["ApproximateNumberOfMessages"] == "3"
	})
	c := newConsoleClient(t, d.srv.Addr())
	c.signIn(testKey, testSecret)
	token := c.csrf(c.get("/console/buses"))
	for _, bad := range []url.Values{{"rate": {"NaN"}}, {"rate": {"0.01"}}, {"rate": {"-1"}}, {"max": {"0"}}, {"max": {"10001"}}, {"url": {""}}} {
		form := url.Values{"csrf": {token}, "url": {dlq}}
		for k, v := range bad {
			form[k] = v
		}
		if a := c.post("/console/redrive", form); a.status != http.StatusBadRequest || !strings.Contains(a.body, "The redrive was not started") {
			t.Errorf("redrive with %v: %d", bad, a.status)
		}
	}
	progressOf := func(a consoleAnswer) string {
		t.Helper()
		if a.status != http.StatusSeeOther {
			t.Fatalf("redrive: %d %s", a.status, a.body)
		}
		return a.header.Get("Location")
	}
	// One event every ten seconds: cancelled after the first.
	progress := progressOf(c.post("/console/redrive", url.Values{"csrf": {token}, "url": {dlq}, "rate": {"0.1"}}))
	waitFor(t, func() bool {
		return strings.Contains(c.page(progress), `Running: <strong id="redriven">1</strong> redriven`)
	})
	run := strings.TrimPrefix(progress, "/console/redrive?run=")
	if a := c.post("/console/redrive/cancel", url.Values{"run": {run}}); a.status != http.StatusForbidden {
		t.Errorf("cancel without the CSRF token: %d", a.status)
	}
	if a := c.post("/console/redrive/cancel", url.Values{"csrf": {token}, "run": {run}}); a.status != http.StatusSeeOther {
		t.Fatalf("cancel: %d %s", a.status, a.body)
	}
	waitFor(t, func() bool {
		return strings.Contains(c.page(progress), `Cancelled: <strong id="redriven">1</strong> redriven`)
	})

	// A run of an IAM user stops when the user's key is deleted.
	u := d.newCaller("operator", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sqs:*","bridgeport:*"],"Resource":"*"}]}`)
	o := newConsoleClient(t, d.srv.Addr())
	o.signIn(u.key, u.secret)
	// The cancelled run's messages come back after their 90 s; until then
	// the user's run finds the one message left.
	progress = progressOf(o.post("/console/redrive", url.Values{"csrf": {o.csrf(o.get("/console/buses"))}, "url": {dlq}, "rate": {"0.1"}}))
	waitFor(t, func() bool { return strings.Contains(o.page(progress), `<strong id="redriven">1</strong> redriven`) })
	if _, err := d.iamClient().DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{UserName: aws.String("operator"), AccessKeyId: aws.String(u.key)}); err != nil {
		t.Fatal(err)
	}
	// The user is signed out; the run, going on in the server, stops at
	// its next call (ten seconds on, at its rate).
	if a := o.get(progress); a.status != http.StatusSeeOther {
		t.Errorf("the user's page after the key was deleted: %d", a.status)
	}
	waitFor(t, func() bool {
		return strings.Contains(d.logs.String(), "The access key "+u.key+" that started this redrive was deleted, made inactive or changed: the redrive stopped.")
	})
}

// TestPeekMessages: bridgeport's PeekMessages pages through a queue's
// messages, visible or not, without receiving them, and refuses bad input
// in AWS's words.
func TestPeekMessages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	sq := e.sqsClient()
	q := e.createQueue(sq, "peeked", nil)
	for i := range 5 {
		if _, err := sq.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(fmt.Sprintf("m%d", i)),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{"ERROR_CODE": {DataType: aws.String("String"), StringValue: aws.String("TIMEOUT")}}}); err != nil {
			t.Fatal(err)
		}
	}
	// One held by a consumer: peeked all the same, and still held after.
	held, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(q), VisibilityTimeout: 600})
	if err != nil || len(held.Messages) != 1 {
		t.Fatalf("receive: %v %v", held, err)
	}
	peek := func(in admin.PeekMessagesInput) (admin.PeekMessagesOutput, error) {
		var out admin.PeekMessagesOutput
		err := e.admin().Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".PeekMessages", in, &out)
		return out, err
	}
	var bodies []string
	in := admin.PeekMessagesInput{QueueUrl: aws.String(q), MaxNumberOfMessages: aws.Int(2)}
	for pages := 0; ; pages++ {
		out, err := peek(in)
		if err != nil || pages > 3 {
			t.Fatalf("peek: %v (page %d)", err, pages)
		}
		for _, m := range out.Messages {
			if m.MessageAttributes["ERROR_CODE"] != "TIMEOUT" || m.MessageId == "" || m.SentTimestamp.IsZero() {
				t.Errorf("message %+v", m)
			}
			bodies = append(bodies, m.Body)
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	if strings.Join(bodies, ",") != "m0,m1,m2,m3,m4" {
		t.Errorf("peeked %v", bodies)
	}
	qa, err := sq.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(q), AttributeNames: []sqstypes.QueueAttributeName{"All"}})
	if err != nil || qa.Attributes["ApproximateNumberOfMessages"] != "4" || qa.Attributes["ApproximateNumberOfMessagesNotVisible"] != "1" {
		t.Errorf("after peeking: %v, %v", qa.Attributes, err)
	}

	for _, c := range []struct {
		in        admin.PeekMessagesInput
		code, msg string
	}{
		{admin.PeekMessagesInput{}, "ValidationException", "1 validation error detected: Value null at 'queueUrl' failed to satisfy constraint: Member must not be null"},
		{admin.PeekMessagesInput{QueueUrl: aws.String(q), MaxNumberOfMessages: aws.Int(101)}, "ValidationException", "1 validation error detected: Value '101' at 'maxNumberOfMessages' failed to satisfy constraint: Member must have value less than or equal to 100"},
		{admin.PeekMessagesInput{QueueUrl: aws.String(q), MaxNumberOfMessages: aws.Int(0)}, "ValidationException", "1 validation error detected: Value '0' at 'maxNumberOfMessages' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{admin.PeekMessagesInput{QueueUrl: aws.String(q), NextToken: aws.String("x")}, "ValidationException", "The NextToken provided is invalid."},
		{admin.PeekMessagesInput{QueueUrl: aws.String(strings.TrimSuffix(q, "peeked") + "nosuchqueue")}, "QueueDoesNotExist", "The specified queue does not exist."},
	} {
		_, err := peek(c.in)
		var ae *awsapi.Error
		if !errors.As(err, &ae) || ae.Code != c.code || (c.msg != "" && ae.Message != c.msg) {
			t.Errorf("peek %+v: %v, want %s: %q", c.in, err, c.code, c.msg)
		}
	}
}
