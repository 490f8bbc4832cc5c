package schedule

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{
		"", "rate", "rate()", "rate(5)", "rate(minutes)", "rate(0 minutes)", "rate(-1 minutes)", "rate(+5 minutes)",
		"rate(1 minutes)", "rate(5 minute)", "rate(1 hours)", "rate(2 day)", "rate(5 seconds)", "rate(5 weeks)",
		"rate(5  minutes)", "rate( 5 minutes)", "rate(5 minutes )", "rate(1.5 hours)", "rate(99999999999999999999 days)",
		"RATE(5 minutes)", "rate(5 Minutes)", "rate 5 minutes", "every 5 minutes",
		"cron()", "cron(* * * * *)", "cron(0 12 * * ? * *)", "cron(0 12 * * * *)", "cron(0 12 ? * ? *)",
		"cron(60 * * * ? *)", "cron(0 24 * * ? *)", "cron(0 0 0 * ? *)", "cron(0 0 32 * ? *)", "cron(0 0 * 13 ? *)",
		"cron(0 0 * 0 ? *)", "cron(0 0 ? * 0 *)", "cron(0 0 ? * 8 *)", "cron(0 0 * * ? 1969)", "cron(0 0 * * ? 2200)",
		"cron(0 0 ? * MON#6 *)", "cron(0 0 ? * MON#0 *)", "cron(0 0 ? * 9L *)", "cron(0 0 32W * ? *)", "cron(0 0 W * ? *)",
		"cron(0/0 * * * ? *)", "cron(*/61 * * * ? *)", "cron(a * * * ? *)", "cron(0 0 * FOO ? *)", "cron(0 0 ? * FUN *)",
		"cron(0 0 * * ? 2030-2020)", "cron(1,,2 * * * ? *)", "cron(? * * * ? *)", "cron(0 0 * * ? ?)", "cron(L * * * ? *)",
		"cron(0 0 * * L *)", "cron(0 0 1-x * ? *)", "cron(0 0 1-2-3 * ? *)", "cron(0  0 * * ? *)", "cron( 0 0 * * ? *)",
		"cron(0 0 ? * 2#1,3#2 *)", "cron(0 0 * * ? * )",
	} {
		if e, err := Parse(s); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %+v, %v; want an ErrInvalid", s, e, err)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	for _, s := range []string{
		"rate(1 minute)", "rate(2 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)", "rate(365 days)",
		"cron(0 10 * * ? *)", "cron(15 12 * * ? *)", "cron(0 18 ? * MON-FRI *)", "cron(0 8 1 * ? *)",
		"cron(0/15 * * * ? *)", "cron(0/10 * ? * MON-FRI *)", "cron(0/5 8-17 ? * MON-FRI *)", "cron(0 9 ? * 2#1 *)",
		"cron(0 0 L * ? *)", "cron(0 0 LW * ? *)", "cron(0 0 15W * ? *)", "cron(0 0 ? * 6L *)", "cron(0 0 ? * L *)",
		"cron(0 0 ? * FRI-MON *)", "cron(50-10 * * * ? *)", "cron(0 0 1 JAN,jul ? 2027)", "cron(0 0 * * ? 1970-2199)",
		"cron(* * * * ? *)", "cron(0 0 1,15,L * ? *)", "cron(0 0 ? * SUN,SAT *)",
	} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNext(t *testing.T) {
	for _, c := range []struct{ expr, after, anchor, want string }{
		{"rate(5 minutes)", "2026-12-06T10:00:00Z", "2026-12-06T09:58:41.7Z", "2026-12-06T10:03:41Z"},
		{"rate(5 minutes)", "2026-12-06T10:03:41Z", "2026-12-06T09:58:41Z", "2026-12-06T10:08:41Z"},
		{"rate(1 minute)", "2026-12-06T09:00:00Z", "2026-12-06T09:58:41Z", "2026-12-06T09:59:41Z"}, // before the anchor
		{"rate(1 day)", "2026-12-06T10:00:00Z", "2026-12-01T23:30:10Z", "2026-12-06T23:30:10Z"},
		{"cron(0 10 * * ? *)", "2026-12-06T10:00:00Z", "", "2026-12-07T10:00:00Z"},
		{"cron(0 10 * * ? *)", "2026-12-06T09:59:59Z", "", "2026-12-06T10:00:00Z"},
		{"cron(* * * * ? *)", "2026-12-06T10:00:00.5Z", "", "2026-12-06T10:01:00Z"},
		{"cron(0/15 * * * ? *)", "2026-12-06T10:46:00Z", "", "2026-12-06T11:00:00Z"},
		{"cron(50-10/10 * * * ? *)", "2026-12-06T10:55:00Z", "", "2026-12-06T11:00:00Z"},
		{"cron(0 18 ? * MON-FRI *)", "2026-12-04T18:00:00Z", "", "2026-12-07T18:00:00Z"}, // Friday -> Monday
		{"cron(0 0 ? * FRI-MON *)", "2026-12-08T00:00:00Z", "", "2026-12-11T00:00:00Z"},  // Tuesday -> Friday
		{"cron(0 9 ? * 2#1 *)", "2026-12-08T00:00:00Z", "", "2027-01-04T09:00:00Z"},      // first Monday
		{"cron(0 9 ? * 3#2 *)", "2026-12-01T00:00:00Z", "", "2026-12-08T09:00:00Z"},      // second Tuesday
		{"cron(0 0 ? * 6L *)", "2026-12-01T00:00:00Z", "", "2026-12-25T00:00:00Z"},       // last Friday
		{"cron(0 0 ? * L *)", "2026-12-06T00:00:00Z", "", "2026-12-12T00:00:00Z"},        // Saturdays
		{"cron(0 0 L * ? *)", "2027-02-01T00:00:00Z", "", "2027-02-28T00:00:00Z"},
		{"cron(0 0 L * ? *)", "2028-02-01T00:00:00Z", "", "2028-02-29T00:00:00Z"},
		{"cron(0 0 LW * ? *)", "2027-01-01T00:00:00Z", "", "2027-01-29T00:00:00Z"},   // Jan 31 2027 is a Sunday
		{"cron(0 0 1W * ? *)", "2026-07-31T00:00:00Z", "", "2026-08-03T00:00:00Z"},   // Aug 1 2026 is a Saturday
		{"cron(0 0 15W * ? *)", "2026-11-01T00:00:00Z", "", "2026-11-16T00:00:00Z"},  // Nov 15 2026 is a Sunday
		{"cron(0 0 31W * ? *)", "2026-08-01T00:00:00Z", "", "2026-08-31T00:00:00Z"},  // a Monday
		{"cron(0 0 30 2 ? *)", "2026-01-01T00:00:00Z", "", "0001-01-01T00:00:00Z"},   // never
		{"cron(0 0 1 1 ? 2020)", "2026-01-01T00:00:00Z", "", "0001-01-01T00:00:00Z"}, // past
		{"cron(0 0 29 2 ? *)", "2026-03-01T00:00:00Z", "", "2028-02-29T00:00:00Z"},
		{"cron(0 0 1 JAN ? 2199)", "2150-01-01T00:00:00Z", "", "2199-01-01T00:00:00Z"},
	} {
		e, err := Parse(c.expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.expr, err)
		}
		var anchor time.Time
		if c.anchor != "" {
			anchor = at(c.anchor)
		}
		if got := e.Next(at(c.after), anchor); !got.Equal(at(c.want)) {
			t.Errorf("%s after %s: %s, want %s", c.expr, c.after, got.Format(time.RFC3339), c.want)
		}
	}
}

// matches says whether the minute t is one the expression names, from its
// sets, minute by minute: the slow way, to check next's search.
func (c *cronSpec) matches(t time.Time) bool {
	return c.hasYear(t.Year()) && c.months&(1<<int(t.Month())) != 0 && c.days(t.Year(), t.Month())&(1<<t.Day()) != 0 &&
		c.hours&(1<<t.Hour()) != 0 && c.minutes&(1<<t.Minute()) != 0
}

// TestNextAgainstMinutes compares next with a walk over every minute, for
// random expressions.
func TestNextAgainstMinutes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(opts ...string) string { return opts[r.IntN(len(opts))] }
	start := at("2026-02-20T00:00:00Z")
	for range 300 {
		dom, dow := "?", pick("*", "MON-FRI", "1,7", "6L", "2#1", "L", "SAT-SUN/1", "3#5")
		if r.IntN(2) == 0 {
			dom, dow = pick("*", "L", "LW", "15W", "1W", "1-10/3", "29", "31", "30W"), "?"
		}
		expr := strings.Join([]string{pick("*", "0", "*/7", "50-10", "5,35"), pick("*", "0", "23", "*/5", "22-1"),
			dom, pick("*", "FEB", "2-3", "*/4"), dow, pick("*", "2026", "2026-2027", "2027")}, " ")
		e, err := Parse("cron(" + expr + ")")
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		from := start.Add(time.Duration(r.IntN(60*24*60)) * time.Minute)
		got := e.Next(from, time.Time{})
		want := time.Time{}
		for m := from.Add(time.Minute); m.Year() < 2029; {
			if c := e.cron; !c.hasYear(m.Year()) || c.months&(1<<int(m.Month())) == 0 || c.days(m.Year(), m.Month())&(1<<m.Day()) == 0 {
				m = time.Date(m.Year(), m.Month(), m.Day()+1, 0, 0, 0, 0, time.UTC) // the day cannot match
				continue
			}
			if e.cron.matches(m) {
				want = m
				break
			}
			m = m.Add(time.Minute)
		}
		if !got.Equal(want) {
			t.Fatalf("cron(%s) after %s: %s, want %s", expr, from, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"rate(5 minutes)", "cron(0 0 ? * 6L *)", "cron(0/5 8-17 ? * MON-FRI *)", "cron(0 0 LW * ? 2030)"} {
		f.Add(s)
	}
	after := at("2026-12-06T10:00:00Z")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): %v is not an ErrInvalid", s, err)
			}
			return
		}
		next := e.Next(after, after)
		if next.IsZero() {
			return
		}
		if !next.After(after) || next.Nanosecond() != 0 || e.cron != nil && next.Second() != 0 {
			t.Fatalf("%q: next %s after %s", s, next, after)
		}
		if e.cron != nil && !e.cron.matches(next) {
			t.Fatalf("%q: next %s is not a minute it names", s, next)
		}
	})
}
