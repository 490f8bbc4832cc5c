package console

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/redrive"
)

// run is a redrive run started from the console. It goes on when the
// page that started it is closed; its progress page follows it.
type run struct {
	id      string
	keyID   string // only the key that started a run sees it
	queue   string
	opts    redrive.Options
	started time.Time
	r       *redrive.Run
}

// redrivePage is a run's progress.
type redrivePage struct {
	ID, Queue, QueueName string
	Opts                 redrive.Options
	Started              time.Time
	P                    redrive.Progress
	Pending              int
	err                  *problem
}

func (p redrivePage) refresh() int {
	if p.P.Done {
		return 0
	}
	return 2
}

func (p redrivePage) problem() *problem { return p.err }

// Again lists the events that failed again.
func (p redrivePage) Again() []redrive.Outcome {
	var out []redrive.Outcome
	for _, o := range p.P.Outcomes {
		if o.Result != nil && o.Result.Outcome != "DELIVERED" {
			out = append(out, o)
		}
	}
	return out
}

func (c *Console) startRedrive(w http.ResponseWriter, r *http.Request, u *user) {
	opts := redrive.Options{QueueURL: r.PostFormValue("url"), Rule: strings.TrimSpace(r.PostFormValue("rule")),
		ErrorCode: strings.TrimSpace(r.PostFormValue("code")), Wait: 30 * time.Second}
	var bad []string
	if opts.QueueURL == "" {
		bad = append(bad, "the queue is missing")
	}
	if v := strings.TrimSpace(r.PostFormValue("rate")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 10000 {
			bad = append(bad, "the rate must be a number of events per second from 0 (no limit) to 10000")
		}
		opts.Rate = f
	}
	if v := strings.TrimSpace(r.PostFormValue("max")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad = append(bad, "the most events to redrive must be a whole number, 0 for all")
		}
		opts.Max = n
	}
	if len(bad) > 0 {
		c.fail(w, r, u, http.StatusBadRequest, "The redrive was not started: "+strings.Join(bad, "; ")+".", "Go back and correct the form.")
		return
	}
	c.mu.Lock()
	running := 0
	for _, x := range c.runs {
		if !x.r.Progress().Done {
			running++
		}
	}
	if running >= maxRunning {
		c.mu.Unlock()
		c.fail(w, r, u, http.StatusTooManyRequests, "Too many redrives are running from the console at once ("+strconv.Itoa(maxRunning)+").",
			"Wait for one to finish, or use bridgeport redrive from the command line.")
		return
	}
	if len(c.runs) >= maxRuns {
		c.forgetOldestRun()
	}
	x := &run{id: randomID()[:16], keyID: u.s.keyID, queue: opts.QueueURL, opts: opts, started: time.Now(), r: redrive.New(caller{c, u}, opts)}
	c.runs[x.id] = x
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := x.r.Do(c.ctx); err != nil {
			c.log.Warn("console: redrive ended with an error", "queue", opts.QueueURL, "error", err)
		}
	}()
	c.log.Info("console: redrive started", "queue", opts.QueueURL, "access_key_id", u.s.keyID)
	http.Redirect(w, r, "/console/redrive?run="+x.id, http.StatusSeeOther)
}

// forgetOldestRun drops the oldest finished run. Called with c.mu held.
func (c *Console) forgetOldestRun() {
	var oldest *run
	for _, x := range c.runs {
		if x.r.Progress().Done && (oldest == nil || x.started.Before(oldest.started)) {
			oldest = x
		}
	}
	if oldest != nil {
		delete(c.runs, oldest.id)
	}
}

func (c *Console) redriveProgress(w http.ResponseWriter, r *http.Request, u *user) {
	c.mu.Lock()
	x := c.runs[r.URL.Query().Get("run")]
	c.mu.Unlock()
	if x == nil || x.keyID != u.s.keyID {
		c.fail(w, r, u, http.StatusNotFound, "There is no such redrive run: runs are kept by the node that started them, until 50 newer ones have run.", "")
		return
	}
	p := redrivePage{ID: x.id, Queue: x.queue, QueueName: x.queue[strings.LastIndexByte(x.queue, '/')+1:], Opts: x.opts, Started: x.started, P: x.r.Progress()}
	p.Pending = p.P.Redriven - p.P.Delivered - p.P.FailedAgain
	if p.P.Err != nil {
		p.err, _ = explain(p.P.Err)
	}
	c.render(w, r, u, http.StatusOK, "redrive", "Redrive from "+p.QueueName, p, "")
}
