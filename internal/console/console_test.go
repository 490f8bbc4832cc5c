package console

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
)

const (
	key    = "AKIACONSOLETEST00000"
	secret = "console-test-secret-console-test-secret0"
)

// newConsole returns a console over an API without services (the pages
// tested here call none) that knows one key, and its clock.
func newConsole(t *testing.T) (*Console, *clock) {
	t.Helper()
	c := New(Config{API: &awsapi.Server{}, Lookup: func(id string) (awsapi.Key, bool) {
		// key, and others of its form for the tests of many sessions.
		if strings.HasPrefix(id, "AKIACONSOLE") {
			return awsapi.Key{Secret: secret}, true
		}
		return awsapi.Key{}, false
	}})
	clk := &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	c.now = clk.now
	t.Cleanup(c.Close)
	return c, clk
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// signIn signs in through srv with hc and returns the answer.
func signIn(t *testing.T, hc *http.Client, base string, header http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/console/signin", nil)
	req.Header = header.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	m := csrfField.FindStringSubmatch(b.String())
	if m == nil {
		t.Fatalf("no CSRF token: %s", b.String())
	}
	form := url.Values{"csrf": {m[1]}, "access_key_id": {key}, "secret_access_key": {secret}}
	req, _ = http.NewRequest(http.MethodPost, base+"/console/signin", strings.NewReader(form.Encode()))
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	return resp
}

func client(t *testing.T, hc *http.Client) *http.Client {
	jar, _ := cookiejar.New(nil)
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc
}

func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			return ck
		}
	}
	return nil
}

// TestSecureCookies: over TLS, or through a proxy that ended TLS and says
// so, the session cookie is Secure; over plain HTTP it cannot be.
func TestSecureCookies(t *testing.T) {
	t.Parallel()
	c, _ := newConsole(t)
	tls := httptest.NewTLSServer(c)
	t.Cleanup(tls.Close)
	if ck := sessionCookieOf(signIn(t, client(t, tls.Client()), tls.URL, http.Header{})); ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("over TLS: %+v", ck)
	}
	plain := httptest.NewServer(c)
	t.Cleanup(plain.Close)
	if ck := sessionCookieOf(signIn(t, client(t, &http.Client{}), plain.URL, http.Header{"X-Forwarded-Proto": {"https"}})); ck == nil || !ck.Secure {
		t.Errorf("behind a TLS proxy: %+v", ck)
	}
	if ck := sessionCookieOf(signIn(t, client(t, &http.Client{}), plain.URL, http.Header{})); ck == nil || ck.Secure {
		t.Errorf("over plain HTTP: %+v", ck)
	}
}

// TestSessionsEnd: a session ends after an hour unused and eight hours
// after its sign-in, however used; the sessions kept are bounded.
func TestSessionsEnd(t *testing.T) {
	t.Parallel()
	c, clk := newConsole(t)
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	hc := client(t, &http.Client{})
	signedIn := func() bool {
		resp, err := hc.Get(srv.URL + "/console/pattern")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	signIn(t, hc, srv.URL, http.Header{})
	// Used every 50 minutes, it lasts its eight hours.
	for range 10 {
		if !signedIn() {
			t.Fatalf("signed out at %s", clk.now())
		}
		clk.add(50 * time.Minute)
	}
	if signedIn() {
		t.Error("a session outlived its eight hours")
	}
	signIn(t, hc, srv.URL, http.Header{})
	clk.add(61 * time.Minute)
	if signedIn() {
		t.Error("a session unused for an hour goes on")
	}

	// A sign-in without the form's token opens no session.
	req := httptest.NewRequest(http.MethodPost, "/console/signin", strings.NewReader("csrf=x&access_key_id="+key+"&secret_access_key="+secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || len(sessionsOf(c, "")) != 0 {
		t.Errorf("a sign-in without the form's cookie: %d, %d sessions", rec.Code, len(sessionsOf(c, "")))
	}
	// One key keeps at most 20 sessions: its least recently used goes.
	var first string
	for i := range maxSessionsKey + 5 {
		id := signInDirect(t, c, key)
		if i == 0 {
			first = id
		}
		clk.add(time.Millisecond)
	}
	mine := sessionsOf(c, key)
	if len(mine) != maxSessionsKey || mine[first] {
		t.Errorf("%d sessions of one key (the first kept: %v), want %d", len(mine), mine[first], maxSessionsKey)
	}
	// All keys together keep at most 10,000: the least recently used goes.
	oldest := signInDirect(t, c, "AKIACONSOLE-0")
	for i := 1; i <= maxSessions; i++ {
		clk.add(time.Millisecond)
		signInDirect(t, c, fmt.Sprintf("AKIACONSOLE-%d", i))
	}
	if all := sessionsOf(c, ""); len(all) != maxSessions || all[oldest] {
		t.Errorf("%d sessions in all (the oldest kept: %v), want %d", len(all), all[oldest], maxSessions)
	}
}

// signInDirect signs keyID in through the console's handler and returns
// the session's id.
func signInDirect(t *testing.T, c *Console, keyID string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/console/signin", strings.NewReader("csrf=tok&access_key_id="+keyID+"&secret_access_key="+secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: signinCookie, Value: "tok"})
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	ck := sessionCookieOf(rec.Result())
	if rec.Code != http.StatusSeeOther || ck == nil {
		t.Fatalf("sign-in of %s: %d", keyID, rec.Code)
	}
	return ck.Value
}

// sessionsOf returns the ids of the sessions of keyID (all when empty).
func sessionsOf(c *Console, keyID string) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for id, s := range c.sessions {
		if keyID == "" || s.keyID == keyID {
			out[id] = true
		}
	}
	return out
}

// TestHealthOf: a target's attempts of the hour go into five-minute bars,
// stacked failed, throttled, delivered; failures are counted by code;
// other targets' attempts and older ones are left out.
func TestHealthOf(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	at := func(min int, target, code string, status int, outcome string) admin.AttemptRecord {
		return admin.AttemptRecord{Time: awsapi.Time{Time: since.Add(time.Duration(min) * time.Minute)}, TargetId: target, ErrorCode: code, StatusCode: status, Outcome: outcome}
	}
	var list []admin.AttemptRecord
	for range 98 {
		list = append(list, at(1, "x", "", 200, "DELIVERED"))
	}
	list = append(list,
		at(2, "x", "ERROR_FROM_TARGET", 500, "RETRYING"),
		at(3, "x", "THROTTLING", 429, "RETRYING"),
		at(59, "x", "TIMEOUT", 0, "DEAD_LETTERED"),
		at(30, "y", "TIMEOUT", 0, "DEAD_LETTERED"), // another target
		at(-1, "x", "TIMEOUT", 0, "DROPPED"),       // before the hour
	)
	h := healthOf(list, "x", since)
	if h.Attempts != 101 || h.Failures != 3 || h.Throttles != 1 || h.Max != 100 || len(h.Bars) != buckets {
		t.Fatalf("health %+v", h)
	}
	want := []codeCount{{"ERROR_FROM_TARGET", 1}, {"THROTTLING", 1}, {"TIMEOUT", 1}}
	if fmt.Sprint(h.ByCode) != fmt.Sprint(want) {
		t.Errorf("by code %v, want %v", h.ByCode, want)
	}
	// The first bar: 1 failed, 1 throttled, 98 delivered, stacked from
	// the bottom within the chart's height.
	first := h.Bars[0]
	if len(first.Segments) != 3 || first.Segments[0].Class != "failed" || first.Segments[1].Class != "throttled" || first.Segments[2].Class != "ok" {
		t.Fatalf("first bar %+v", first)
	}
	bottom := chartHeight
	for _, sg := range first.Segments {
		if sg.H < 1 || sg.Y+sg.H != bottom || sg.Y < 0 {
			t.Errorf("segment %+v does not sit on %d", sg, bottom)
		}
		bottom = sg.Y
	}
	if last := h.Bars[buckets-1]; len(last.Segments) != 1 || last.Segments[0].Class != "failed" || !strings.Contains(last.Label, "11:55: 1 attempts, 1 failed") {
		t.Errorf("last bar %+v", last)
	}
	for _, b := range h.Bars[1 : buckets-1] {
		if len(b.Segments) != 0 {
			t.Errorf("bar %+v should be empty", b)
		}
	}
}
