// Package console serves bridgeport's web console at /console/ on the API's
// listener: server-rendered pages for following events through rules,
// targets, attempts and dead-letter queues, and for fixing what failed
// (redrive, the pattern tester).
//
// The console is a client of the same operations the API serves: every
// page calls them in-process (awsapi.Server.Invoke) as the signed-in
// principal, so a user sees and does exactly what their keys allow
// through the AWS CLI, with the same errors. Nothing is loaded from
// outside: templates and the stylesheet are embedded, and the pages have
// no script at all.
//
// Signing in takes an access key ID and its secret. A session is a random
// id in an HttpOnly, SameSite=Strict cookie (Secure under TLS), kept in
// this node's memory: it ends after its lifetime, after an hour unused,
// when the user signs out, or as soon as its key is deleted or changed.
// Every form that changes something carries the session's CSRF token.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
	"bridgeport/internal/redrive"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Config is what the console needs from the server.
type Config struct {
	// API runs the operations the pages call.
	API *awsapi.Server
	// Lookup finds an access key (the root key, an IAM user's).
	Lookup func(accessKeyID string) (awsapi.Key, bool)
	// LastMatched says when this node last routed an event the rule
	// matched, if it has since it started.
	LastMatched func(ruleArn string) (time.Time, bool)
	Log         *slog.Logger
	// SessionLifetime bounds a session from its sign-in (default 8 h);
	// IdleTimeout ends one unused for that long (default 1 h).
	SessionLifetime time.Duration
	IdleTimeout     time.Duration
}

// Console is the web console's HTTP handler.
type Console struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template

	mu       sync.Mutex
	sessions map[string]*session
	// runs are the redrive runs started from the console, by id.
	runs map[string]*run

	// now is the sessions' clock (tests move it).
	now func() time.Time

	ctx  context.Context // ends when the console is closed
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// session is a signed-in user.
type session struct {
	id, csrf  string
	keyID     string
	secretSum [32]byte // of the key's secret: a changed key ends the session
	principal string   // the IAM user's ARN; empty for the root key
	created   time.Time
	seen      time.Time
}

// Limits on the sessions the console keeps in memory: in all, and of one
// key (so that one key cannot sign everyone else out).
const (
	maxSessions    = 10000
	maxSessionsKey = 20
)

const (
	sessionCookie = "bp_console"
	signinCookie  = "bp_console_signin" // the sign-in form's CSRF token
)

// New returns the console. Its templates are part of the binary: one that
// does not parse is a bug, and panics.
func New(cfg Config) *Console {
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = 8 * time.Hour
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Hour
	}
	c := &Console{cfg: cfg, log: cfg.Log, sessions: map[string]*session{}, runs: map[string]*run{}, now: time.Now}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.parse()
	c.routes()
	return c
}

// Close cancels the redrive runs started from the console and waits for
// them: each makes the messages it held visible again, as an interrupted
// `bridgeport redrive` does.
func (c *Console) Close() {
	c.mu.Lock()
	c.stop()
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *Console) parse() {
	funcs := template.FuncMap{"utc": utc, "ago": ago, "epoch": epoch, "failed": failed}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html"))
	names, _ := fs.Glob(assets, "templates/*.html")
	c.pages = map[string]*template.Template{}
	for _, name := range names {
		if name != "templates/layout.html" {
			c.pages[name[len("templates/"):len(name)-len(".html")]] = template.Must(template.Must(base.Clone()).ParseFS(assets, name))
		}
	}
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /console/signin", c.signinForm)
	m.HandleFunc("POST /console/signin", c.signin)
	m.HandleFunc("POST /console/signout", c.user(c.signout))
	m.HandleFunc("GET /console/{$}", c.user(func(w http.ResponseWriter, r *http.Request, u *user) {
		http.Redirect(w, r, "/console/buses", http.StatusSeeOther)
	}))
	m.HandleFunc("GET /console/buses", c.user(c.buses))
	m.HandleFunc("GET /console/rules", c.user(c.rules))
	m.HandleFunc("GET /console/rule", c.user(c.rule))
	m.HandleFunc("GET /console/trace", c.user(c.trace))
	m.HandleFunc("GET /console/connections", c.user(c.connections))
	m.HandleFunc("GET /console/queues", c.user(c.queues))
	m.HandleFunc("GET /console/queue", c.user(c.queue))
	m.HandleFunc("POST /console/redrive", c.user(c.startRedrive))
	m.HandleFunc("GET /console/redrive", c.user(c.redriveProgress))
	m.HandleFunc("POST /console/redrive/cancel", c.user(c.cancelRedrive))
	m.HandleFunc("GET /console/archives", c.user(c.archives))
	m.HandleFunc("GET /console/pattern", c.user(c.pattern))
	m.HandleFunc("POST /console/pattern", c.user(c.pattern))
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusNotFound, "There is no such page in the console.", "")
	})
	c.mux = m
}

// ServeHTTP serves the console, with headers that keep its pages from
// being framed, cached, or made to load anything from elsewhere.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodPost {
		// A form of the pattern tester holds an event (256 KB at most);
		// the sign-in form, sent before anyone is known, two short fields.
		limit := int64(1 << 20)
		if r.URL.Path == "/console/signin" {
			limit = 8 << 10
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	c.mux.ServeHTTP(w, r)
}

// user is a signed-in request: its session and how it calls operations.
type user struct {
	s  *session
	id awsapi.Identity
	// host is the request's Host, from which queue URLs are made.
	host string
}

// Name is how the page names the signed-in principal.
func (u *user) Name() string {
	if u.s.principal == "" {
		return "root (" + u.s.keyID + ")"
	}
	return u.s.principal
}

// user wraps a handler for signed-in users: others are sent to sign in,
// and a POST without the session's CSRF token is refused.
func (c *Console) user(h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := c.current(r)
		if u == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, http.StatusUnauthorized, "You are not signed in, or your session ended.", "Sign in again.")
			return
		}
		if r.Method == http.MethodPost && !sameToken(r.PostFormValue("csrf"), u.s.csrf) {
			c.fail(w, r, u, http.StatusForbidden, "This form was not sent from a page of this session (its CSRF token is missing or wrong), so nothing was changed.",
				"Reload the page and send the form again.")
			return
		}
		h(w, r, u)
	}
}

// current returns the request's signed-in user, or nil.
func (c *Console) current(r *http.Request) *user {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	now := c.now()
	c.mu.Lock()
	s := c.sessions[ck.Value]
	if s != nil && (now.Sub(s.created) > c.cfg.SessionLifetime || now.Sub(s.seen) > c.cfg.IdleTimeout) {
		delete(c.sessions, s.id)
		s = nil
	}
	if s != nil {
		s.seen = now
	}
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	// The key is looked up again at each request: a user deleted, or a
	// key deleted or made inactive, is signed out at once.
	if !c.keyHolds(s) {
		c.mu.Lock()
		delete(c.sessions, s.id)
		c.mu.Unlock()
		return nil
	}
	return &user{s: s, id: awsapi.Identity{AccessKeyID: s.keyID, Principal: s.principal}, host: r.Host}
}

// keyHolds reports whether the key a session signed in with still exists,
// with the same secret and principal.
func (c *Console) keyHolds(s *session) bool {
	key, ok := c.cfg.Lookup(s.keyID)
	return ok && sha256.Sum256([]byte(key.Secret)) == s.secretSum && key.Principal == s.principal
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	if c.current(r) != nil {
		http.Redirect(w, r, "/console/buses", http.StatusSeeOther)
		return
	}
	c.showSignin(w, r, http.StatusOK, "")
}

func (c *Console) showSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomID()
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: token, Path: "/console/", HttpOnly: true, Secure: overTLS(r),
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	c.render(w, r, nil, status, "signin", "Sign in", struct{ Message, KeyID string }{msg, r.PostFormValue("access_key_id")}, token)
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(signinCookie)
	if err != nil || !sameToken(r.PostFormValue("csrf"), ck.Value) {
		c.fail(w, r, nil, http.StatusForbidden, "This sign-in form was not sent from this console's sign-in page (its CSRF token is missing or wrong).",
			"Open the sign-in page again and sign in from there.")
		return
	}
	keyID, secret := r.PostFormValue("access_key_id"), r.PostFormValue("secret_access_key")
	key, ok := c.cfg.Lookup(keyID)
	// The same answer for an unknown key and a wrong secret.
	if !ok || keyID == "" || subtle.ConstantTimeCompare([]byte(key.Secret), []byte(secret)) != 1 {
		c.showSignin(w, r, http.StatusUnauthorized, "The access key ID or the secret access key is not right.")
		return
	}
	if key.TokenSHA256 != "" {
		c.showSignin(w, r, http.StatusUnauthorized, "Temporary credentials (those of an assumed role, with a session token) cannot sign in: use an IAM user's access key or the root key.")
		return
	}
	now := c.now()
	s := &session{id: randomID(), csrf: randomID(), keyID: keyID, secretSum: sha256.Sum256([]byte(secret)), principal: key.Principal, created: now, seen: now}
	c.mu.Lock()
	c.evictSessions(now, keyID)
	c.sessions[s.id] = s
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/console/", HttpOnly: true, Secure: overTLS(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.SessionLifetime / time.Second)})
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Path: "/console/", MaxAge: -1})
	c.log.Info("console sign-in", "access_key_id", keyID, "principal", key.Principal)
	http.Redirect(w, r, "/console/buses", http.StatusSeeOther)
}

// evictSessions makes room for a session of keyID: when that key has
// maxSessionsKey sessions, its least recently used goes; when all keys
// have maxSessions, the expired ones go, and if none has, the least
// recently used. Called with c.mu held.
func (c *Console) evictSessions(now time.Time, keyID string) {
	var oldest, oldestOfKey *session
	ofKey := 0
	for _, s := range c.sessions {
		if s.keyID == keyID {
			ofKey++
			if oldestOfKey == nil || s.seen.Before(oldestOfKey.seen) {
				oldestOfKey = s
			}
		}
		if oldest == nil || s.seen.Before(oldest.seen) {
			oldest = s
		}
	}
	if ofKey >= maxSessionsKey {
		delete(c.sessions, oldestOfKey.id)
		return
	}
	if len(c.sessions) < maxSessions {
		return
	}
	for id, s := range c.sessions {
		if now.Sub(s.created) > c.cfg.SessionLifetime || now.Sub(s.seen) > c.cfg.IdleTimeout {
			delete(c.sessions, id)
		}
	}
	if len(c.sessions) >= maxSessions {
		delete(c.sessions, oldest.id)
	}
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, u *user) {
	c.mu.Lock()
	delete(c.sessions, u.s.id)
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/console/", MaxAge: -1})
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

// call runs an operation as the user: target is its X-Amz-Target.
func (c *Console) call(ctx context.Context, u *user, target string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	data, err := c.cfg.API.Invoke(ctx, u.id, u.host, target, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func (c *Console) events(r *http.Request, u *user, op string, in, out any) error {
	return c.call(r.Context(), u, "AWSEvents."+op, in, out)
}

func (c *Console) admin(r *http.Request, u *user, op string, in, out any) error {
	return c.call(r.Context(), u, admin.TargetPrefix+"."+op, in, out)
}

func (c *Console) sqs(r *http.Request, u *user, op string, in, out any) error {
	return c.call(r.Context(), u, "AmazonSQS."+op, in, out)
}

// caller makes a redrive run's calls as the user who started it.
type caller struct {
	c *Console
	u *user
}

var _ redrive.Caller = caller{}

func (k caller) SQS(ctx context.Context, op string, in, out any) error {
	return k.do(ctx, "AmazonSQS."+op, in, out)
}

func (k caller) Admin(ctx context.Context, op string, in, out any) error {
	return k.do(ctx, admin.TargetPrefix+"."+op, in, out)
}

// do makes a call of a run as long as the key that started it holds: a
// run stops when its key is deleted, made inactive or changed.
func (k caller) do(ctx context.Context, target string, in, out any) error {
	if !k.c.keyHolds(k.u.s) {
		return awsapi.Errorf(awsapi.CodeAccessDenied, "The access key %s that started this redrive was deleted, made inactive or changed: the redrive stopped.", k.u.s.keyID)
	}
	return k.c.call(ctx, k.u, target, in, out)
}

// page is what every template receives.
type page struct {
	Title string
	User  *user
	CSRF  string
	// Refresh, when above 0, reloads the page after that many seconds
	// (a redrive's progress).
	Refresh int
	Error   *problem
	Data    any
}

// problem is an error shown to the user: what happened, and what to do.
type problem struct {
	Message string
	Code    string
	Fix     string
}

// render writes a page with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, u *user, status int, name, title string, data any, csrf string) {
	t := c.pages[name]
	p := page{Title: title, User: u, Data: data, CSRF: csrf}
	if u != nil {
		p.CSRF = u.s.csrf
	}
	if rp, ok := data.(interface{ refresh() int }); ok {
		p.Refresh = rp.refresh()
	}
	if pr, ok := data.(interface{ problem() *problem }); ok {
		p.Error = pr.problem()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout.html", p); err != nil {
		c.log.Error("console: render", "page", name, "error", err)
	}
}

// errorPage is the data of the error page.
type errorPage struct{ p *problem }

func (e errorPage) problem() *problem { return e.p }

// fail shows an error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, u *user, status int, msg, fix string) {
	c.render(w, r, u, status, "error", "Error", errorPage{&problem{Message: msg, Fix: fix}}, "")
}

// failed shows the error an operation returned, in its words, with the
// HTTP status the API would have answered.
func (c *Console) failed(w http.ResponseWriter, r *http.Request, u *user, err error) {
	pr, status := explain(err)
	c.render(w, r, u, status, "error", "Error", errorPage{pr}, "")
}

// explain turns an operation's error into what the user reads.
func explain(err error) (*problem, int) {
	var aerr *awsapi.Error
	if !errors.As(err, &aerr) {
		return &problem{Message: "Something went wrong inside bridgeport; the server's log has the details.", Code: "InternalFailure",
			Fix: "Try again; if it keeps failing, run bridgeport diagnose."}, http.StatusInternalServerError
	}
	p := &problem{Message: aerr.Message, Code: aerr.Code}
	switch aerr.Code {
	case "AccessDeniedException", "AccessDenied":
		p.Fix = "Your user lacks this permission: ask for it to be added to one of your IAM policies, or sign in with a key that has it."
	case "ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist":
		p.Fix = "It may have been deleted, or its name is misspelt."
	}
	return p, aerr.HTTPStatus()
}

// overTLS says whether the browser reached the console over TLS: directly,
// or through a proxy that ended TLS and says so (X-Forwarded-Proto). A
// client that claims it falsely only makes its own cookies Secure.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func randomID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sameToken(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
