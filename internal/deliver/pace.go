package deliver

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"sync"
	"time"

	"bridgeport/internal/wait"
)

// pacer holds the replay lane to the machine's spare capacity: a replay
// is background work, and run flat out it takes the cores that live
// events wait for (yieldToLive only reacts once they are late). Each
// replayed job reserves a start time rate⁻¹ after the previous one's; every
// paceCheck the rate is set from the share of the machine's CPU time that
// was busy since the last check: cut by a quarter above high, raised by a
// tenth below high minus paceBand, never under paceMin. Both go from what
// the lane used: a rate the lane did not reach (its backlog ran dry, or
// yieldToLive held it) is cut from the rate it did reach, and raised only
// up to twice that (or paceStart), so that it neither climbs without bound
// while the lane cannot use it nor takes many checks to come down. Where
// the machine's CPU times cannot be read (not Linux), or high is 0 or 1
// and more, the rate is not limited.
//
// Safe for concurrent use.
type pacer struct {
	// cpu returns the machine's busy and total CPU time so far, in any
	// unit; ok false when they cannot be read.
	cpu func() (busy, total uint64, ok bool)
	// high is the busy share above which the rate falls.
	high float64

	mu          sync.Mutex
	rate        float64   // jobs a second allowed now; 0: not limited
	next        time.Time // when the next job may start
	checked     time.Time // when the rate was last set
	busy, total uint64    // cpu's figures then
	reserved    int       // jobs since then
	last        time.Time // when the last job came
}

// The pacer's settings: the band of busy shares below high in which the
// rate holds, how often it looks, and the rate it starts at and never goes
// below.
const (
	paceBand  = 0.10
	paceCheck = 100 * time.Millisecond
	paceStart = 1000.0
	paceMin   = 200.0
	paceSleep = time.Millisecond
	paceIdle  = 5 * time.Second
)

func newPacer(cpu func() (busy, total uint64, ok bool), high float64) *pacer {
	if high <= 0 || high >= 1 {
		return &pacer{}
	}
	if _, _, ok := cpu(); !ok {
		return &pacer{}
	}
	return &pacer{cpu: cpu, high: high, rate: paceStart}
}

// reserve returns how long a job arriving at now waits before it starts.
func (p *pacer) reserve(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.checked) >= paceCheck {
		p.adjust(now)
	}
	if p.rate == 0 {
		return 0
	}
	p.reserved++
	p.last = now
	start := p.next
	if start.Before(now) {
		start = now
	}
	p.next = start.Add(time.Duration(float64(time.Second) / p.rate))
	return start.Sub(now)
}

// adjust sets the rate from the busy share since the last check. p.mu is
// held.
func (p *pacer) adjust(now time.Time) {
	if p.cpu == nil {
		return
	}
	busy, total, ok := p.cpu()
	if !ok {
		// Not limited; looked at again in paceCheck, from scratch.
		p.rate, p.checked, p.busy, p.total, p.reserved = 0, now, 0, 0, 0
		return
	}
	if p.rate == 0 {
		p.rate = paceStart
	}
	if p.total > 0 && total > p.total && busy >= p.busy && now.After(p.checked) {
		share := float64(busy-p.busy) / float64(total-p.total)
		used := float64(p.reserved) / now.Sub(p.checked).Seconds()
		switch {
		case share > p.high:
			p.rate = max(min(p.rate, used)*0.75, paceMin)
		case share < p.high-paceBand:
			p.rate = min(p.rate*1.1, max(2*used, paceStart))
		}
	}
	p.checked, p.busy, p.total, p.reserved = now, busy, total, 0
}

// perSecond returns the rate allowed at now; 0 when not limited, or when
// no job came in the last paceIdle (the rate is set as jobs come, so it
// would be that of the last replay).
func (p *pacer) perSecond(now time.Time) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.last) > paceIdle {
		return 0
	}
	return p.rate
}

// wait waits for the job's turn; false if ctx ended first. A turn less
// than paceSleep away starts at once: a timer wakes up about that late
// anyway, and the reservation is kept, so the jobs after it wait longer.
func (p *pacer) wait(ctx context.Context) bool {
	d := p.reserve(time.Now())
	if d < paceSleep {
		return ctx.Err() == nil
	}
	return wait.For(ctx, d)
}

// machineCPU reads the machine's CPU times from /proc/stat: busy is all
// but idle and iowait (steal included: time the machine was not ours),
// total all of them, in clock ticks.
func machineCPU() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := bytes.Fields(line)
	// cpu user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is counted in user already.
	if len(fields) < 9 || string(fields[0]) != "cpu" {
		return 0, 0, false
	}
	for i, f := range fields[1:9] {
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total, true
}
