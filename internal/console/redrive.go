package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/redrive"
)

// run is a redrive run started from the console. It goes on when the
// page that started it is closed, until it ends, is cancelled, or the key
// that started it is deleted or changed; its progress page follows it.
type run struct {
	id      string
	keyID   string // only the key that started a run sees it
	queue   string
	opts    redrive.Options
	started time.Time
	cancel  context.CancelFunc
	// r is the run while it goes on; final what it came to, once it ended
	// (the run itself, and what it kept of every event, is let go then).
	r     *redrive.Run
	final *redrive.Progress
}

// Limits on the redrive runs started from the console.
const (
	maxRuns       = 50    // runs kept, going on or ended
	maxRunning    = 4     // runs going on at once
	maxRunningKey = 2     // of them, started by one key
	maxRunEvents  = 10000 // events one run redrives at most
	minRunRate    = 0.1   // events per second, when a rate is set
	maxRunRate    = 10000 // events per second
	shownOutcomes = 100   // undelivered events a progress page lists
	runWait       = 30 * time.Second
)

// redrivePage is a run's progress.
type redrivePage struct {
	ID, Queue, QueueName string
	Opts                 redrive.Options
	Started              time.Time
	P                    redrive.Progress
	Pending              int
	// Cancelled: the user cancelled the run (or the server stopped).
	Cancelled bool
	err       *problem
}

func (p redrivePage) refresh() int {
	if p.P.Done {
		return 0
	}
	return 2
}

func (p redrivePage) problem() *problem { return p.err }

// Again lists the events that failed again (the first 100).
func (p redrivePage) Again() []redrive.Outcome {
	var out []redrive.Outcome
	for _, o := range p.P.Outcomes {
		if o.Result != nil {
			out = append(out, o)
		}
	}
	return out
}

// done reports whether the run ended. Called with c.mu held.
func (x *run) done() bool { return x.final != nil }

func (c *Console) startRedrive(w http.ResponseWriter, r *http.Request, u *user) {
	opts := redrive.Options{QueueURL: r.PostFormValue("url"), Rule: strings.TrimSpace(r.PostFormValue("rule")),
		ErrorCode: strings.TrimSpace(r.PostFormValue("code")), Max: maxRunEvents, Wait: runWait}
	var bad []string
	if opts.QueueURL == "" {
		bad = append(bad, "the queue is missing")
	}
	if v := strings.TrimSpace(r.PostFormValue("rate")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		// NaN fails both comparisons.
		if err != nil || !(f == 0 || f >= minRunRate && f <= maxRunRate) {
			bad = append(bad, "the rate must be a number of events per second from 0.1 to 10000 (empty: no limit)")
		}
		opts.Rate = f
	}
	if v := strings.TrimSpace(r.PostFormValue("max")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRunEvents {
			bad = append(bad, "the most events to redrive must be a whole number from 1 to 10000 (empty: 10000); run it again for more")
		}
		opts.Max = n
	}
	if len(bad) > 0 {
		c.fail(w, r, u, http.StatusBadRequest, "The redrive was not started: "+strings.Join(bad, "; ")+".", "Go back and correct the form.")
		return
	}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		c.fail(w, r, u, http.StatusServiceUnavailable, "The server is stopping: no redrive starts now.", "Start it again once the server is back.")
		return
	}
	running, mine := 0, 0
	for _, x := range c.runs {
		if !x.done() {
			running++
			if x.keyID == u.s.keyID {
				mine++
			}
		}
	}
	if running >= maxRunning || mine >= maxRunningKey {
		c.mu.Unlock()
		c.fail(w, r, u, http.StatusTooManyRequests, "Too many redrives are running from the console: at most "+strconv.Itoa(maxRunning)+
			" at once, "+strconv.Itoa(maxRunningKey)+" of them started with one key.",
			"Wait for one to finish, or cancel one from its page; bridgeport redrive from the command line has no such limit.")
		return
	}
	if len(c.runs) >= maxRuns {
		c.forgetOldestRun()
	}
	ctx, cancel := context.WithCancel(c.ctx)
	x := &run{id: randomID()[:16], keyID: u.s.keyID, queue: opts.QueueURL, opts: opts, started: time.Now(), cancel: cancel,
		r: redrive.New(caller{c, u}, opts)}
	c.runs[x.id] = x
	// Under c.mu, which Close takes before it waits: no run is added
	// once it waits.
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		defer cancel()
		if err := x.r.Do(ctx); err != nil {
			c.log.Warn("console: redrive ended with an error", "queue", opts.QueueURL, "error", err)
		}
		final := x.r.Progress(shownOutcomes)
		c.mu.Lock()
		x.final, x.r = &final, nil
		c.mu.Unlock()
	}()
	c.log.Info("console: redrive started", "queue", opts.QueueURL, "access_key_id", u.s.keyID)
	http.Redirect(w, r, "/console/redrive?run="+x.id, http.StatusSeeOther)
}

// forgetOldestRun drops the oldest run that ended. Called with c.mu held.
func (c *Console) forgetOldestRun() {
	var oldest *run
	for _, x := range c.runs {
		if x.done() && (oldest == nil || x.started.Before(oldest.started)) {
			oldest = x
		}
	}
	if oldest != nil {
		delete(c.runs, oldest.id)
	}
}

// userRun returns the run the request names, if the user started it.
func (c *Console) userRun(id string, u *user) (*run, *redrive.Run, *redrive.Progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	x := c.runs[id]
	if x == nil || x.keyID != u.s.keyID {
		return nil, nil, nil
	}
	return x, x.r, x.final
}

func (c *Console) redriveProgress(w http.ResponseWriter, r *http.Request, u *user) {
	x, going, final := c.userRun(r.URL.Query().Get("run"), u)
	if x == nil {
		c.fail(w, r, u, http.StatusNotFound, "There is no such redrive run: runs are kept by the node that started them, until 50 newer ones have run.", "")
		return
	}
	p := redrivePage{ID: x.id, Queue: x.queue, QueueName: x.queue[strings.LastIndexByte(x.queue, '/')+1:], Opts: x.opts, Started: x.started}
	if final != nil {
		p.P = *final
	} else {
		p.P = going.Progress(shownOutcomes)
	}
	p.Pending = p.P.Redriven - p.P.Delivered - p.P.FailedAgain
	switch {
	case errors.Is(p.P.Err, context.Canceled):
		p.Cancelled = true
	case p.P.Err != nil:
		p.err, _ = explain(p.P.Err)
	}
	c.render(w, r, u, http.StatusOK, "redrive", "Redrive from "+p.QueueName, p, "")
}

func (c *Console) cancelRedrive(w http.ResponseWriter, r *http.Request, u *user) {
	x, _, _ := c.userRun(r.PostFormValue("run"), u)
	if x == nil {
		c.fail(w, r, u, http.StatusNotFound, "There is no such redrive run.", "")
		return
	}
	x.cancel()
	http.Redirect(w, r, "/console/redrive?run="+x.id, http.StatusSeeOther)
}
