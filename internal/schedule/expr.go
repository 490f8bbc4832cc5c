// Package schedule parses EventBridge schedule expressions, rate(...) and
// cron(...), and computes their due times, always in UTC, to the minute.
package schedule

import (
	"errors"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Expr is a parsed schedule expression. The zero value is not valid.
type Expr struct {
	every time.Duration // rate(...): the period; 0 for cron(...)
	cron  *cronSpec
}

// ErrInvalid is returned, wrapped, for every expression Parse refuses; its
// message says what is wrong, for logs and tests (AWS's own answer is one
// sentence, whatever the fault).
var ErrInvalid = errors.New("invalid schedule expression")

type parseError struct{ why string }

func (e *parseError) Error() string { return "invalid schedule expression: " + e.why }
func (e *parseError) Unwrap() error { return ErrInvalid }

func fail(format string, args ...string) error {
	for _, a := range args {
		format = strings.Replace(format, "%s", a, 1)
	}
	return &parseError{format}
}

// MinYear and MaxYear bound the years a cron expression may name.
const (
	MinYear = 1970
	MaxYear = 2199
)

// Parse parses "rate(value unit)" or "cron(fields)".
func Parse(s string) (*Expr, error) {
	switch {
	case strings.HasPrefix(s, "rate(") && strings.HasSuffix(s, ")"):
		return parseRate(s[len("rate(") : len(s)-1])
	case strings.HasPrefix(s, "cron(") && strings.HasSuffix(s, ")"):
		c, err := parseCron(s[len("cron(") : len(s)-1])
		if err != nil {
			return nil, err
		}
		return &Expr{cron: c}, nil
	}
	return nil, fail("not rate(...) or cron(...)")
}

// parseRate parses "value unit": a positive whole number and minute,
// hour or day, singular for 1 and plural otherwise.
func parseRate(s string) (*Expr, error) {
	num, unit, ok := strings.Cut(s, " ")
	if !ok {
		return nil, fail("rate needs a value and a unit")
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return nil, fail("rate value %s is not a positive whole number", strconv.Quote(num))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 {
		return nil, fail("rate value %s is not a positive whole number", strconv.Quote(num))
	}
	var d time.Duration
	switch strings.TrimSuffix(unit, "s") {
	case "minute":
		d = time.Minute
	case "hour":
		d = time.Hour
	case "day":
		d = 24 * time.Hour
	default:
		return nil, fail("rate unit %s is not minute(s), hour(s) or day(s)", strconv.Quote(unit))
	}
	if plural := strings.HasSuffix(unit, "s"); plural != (n != 1) {
		return nil, fail("rate unit %s: use the singular for 1 and the plural otherwise", strconv.Quote(unit))
	}
	// A period past a few centuries never fires; refuse it rather than
	// overflow.
	if n > int64(200*366*24*time.Hour/d) {
		return nil, fail("rate value %s is too large", num)
	}
	return &Expr{every: time.Duration(n) * d}, nil
}

// Rate returns the period of a rate expression, 0 for a cron expression.
func (e *Expr) Rate() time.Duration { return e.every }

// Next returns the first due time strictly after t, in UTC, or the zero
// time when there is none (a cron expression whose years are past). A rate
// expression's due times are anchor (when the rule was created), to the
// second, plus one or more periods: the countdown begins when the rule is
// created, as AWS documents. A cron expression's are the minutes it
// names.
func (e *Expr) Next(t, anchor time.Time) time.Time {
	t = t.UTC()
	if e.every > 0 {
		a := anchor.UTC().Truncate(time.Second)
		if t.Before(a) {
			t = a
		}
		k := t.Sub(a)/e.every + 1
		return a.Add(k * e.every)
	}
	return e.cron.next(t)
}

// cronSpec holds the sets of a cron expression's six fields.
type cronSpec struct {
	minutes uint64 // bits 0-59
	hours   uint64 // bits 0-23
	months  uint64 // bits 1-12
	years   [4]uint64
	dom     *domSpec // nil when day-of-month is "?"
	dow     *dowSpec // nil when day-of-week is "?"
}

// domSpec is a day-of-month field.
type domSpec struct {
	days     uint64 // bits 1-31
	last     bool   // L: the month's last day
	lastWeek bool   // LW: the month's last weekday
	nearest  uint64 // nW: the weekday nearest day n, in the month
}

// dowSpec is a day-of-week field; weekdays are 1 (Sunday) to 7.
type dowSpec struct {
	days uint64 // bits 1-7
	last uint64 // nL: the month's last weekday n
	nth  []nth  // n#k: the month's k-th weekday n
}

type nth struct{ weekday, k int }

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8,
		"SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	dayNames = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
)

// field describes one of the fields parsed into a plain set.
type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	minuteField = field{"minutes", 0, 59, nil}
	hourField   = field{"hours", 0, 23, nil}
	domField    = field{"day-of-month", 1, 31, nil}
	monthField  = field{"month", 1, 12, monthNames}
	dowField    = field{"day-of-week", 1, 7, dayNames}
	yearField   = field{"year", MinYear, MaxYear, nil}
)

func parseCron(s string) (*cronSpec, error) {
	f := strings.Split(s, " ") // one space apart, as AWS requires
	if len(f) != 6 {
		return nil, fail("cron needs six fields (minutes hours day-of-month month day-of-week year), not %s", strconv.Itoa(len(f)))
	}
	var c cronSpec
	var err error
	if c.minutes, err = minuteField.set(f[0]); err != nil {
		return nil, err
	}
	if c.hours, err = hourField.set(f[1]); err != nil {
		return nil, err
	}
	if c.months, err = monthField.set(f[3]); err != nil {
		return nil, err
	}
	if err := yearField.each(f[5], func(y int) { c.years[(y-MinYear)/64] |= 1 << ((y - MinYear) % 64) }); err != nil {
		return nil, err
	}
	switch {
	case f[2] == "?" && f[4] == "?":
		return nil, fail("day-of-month and day-of-week cannot both be ?")
	case f[2] != "?" && f[4] != "?":
		return nil, fail("one of day-of-month and day-of-week must be ?")
	case f[2] != "?":
		c.dom, err = parseDom(f[2])
	default:
		c.dow, err = parseDow(f[4])
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// set parses a field that is a plain set of values.
func (fd field) set(s string) (uint64, error) {
	var m uint64
	err := fd.each(s, func(v int) { m |= 1 << v })
	return m, err
}

// each parses a comma-separated list of items: *, a value, a range a-b
// (which wraps around for fields that cycle), any of those with /step, or
// v/step (v to the field's end), and calls fn with each value it names.
func (fd field) each(s string, fn func(int)) error {
	if s == "" {
		return fail("%s field is empty", fd.name)
	}
	for item := range strings.SplitSeq(s, ",") {
		if err := fd.item(item, fn); err != nil {
			return err
		}
	}
	return nil
}

func (fd field) item(item string, fn func(int)) error {
	rng, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepText)
		if err != nil || n < 1 || n > fd.max-fd.min+1 || strings.TrimLeft(stepText, "0123456789") != "" {
			return fail("%s step %s is not valid", fd.name, strconv.Quote(stepText))
		}
		step = n
	}
	var from, to int
	switch {
	case rng == "*":
		from, to = fd.min, fd.max
	default:
		a, b, isRange := strings.Cut(rng, "-")
		var err error
		if from, err = fd.value(a); err != nil {
			return err
		}
		to = from
		switch {
		case isRange:
			if to, err = fd.value(b); err != nil {
				return err
			}
		case hasStep:
			to = fd.max
		}
	}
	span := fd.max - fd.min + 1
	n := to - from
	if n < 0 {
		if fd.name == yearField.name {
			return fail("year range %s runs backwards", strconv.Quote(rng))
		}
		n += span // a range that wraps, such as FRI-MON or 22-2
	}
	for i := 0; i <= n; i += step {
		fn(fd.min + (from-fd.min+i)%span)
	}
	return nil
}

// value parses one value of the field, a number or a name.
func (fd field) value(s string) (int, error) {
	if v, ok := fd.names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || strings.TrimLeft(s, "0123456789") != "" || v < fd.min || v > fd.max {
		return 0, fail("%s value %s is not valid", fd.name, strconv.Quote(s))
	}
	return v, nil
}

func parseDom(s string) (*domSpec, error) {
	var d domSpec
	for item := range strings.SplitSeq(s, ",") {
		switch {
		case item == "L":
			d.last = true
		case item == "LW":
			d.lastWeek = true
		case strings.HasSuffix(item, "W"):
			v, err := domField.value(strings.TrimSuffix(item, "W"))
			if err != nil {
				return nil, err
			}
			d.nearest |= 1 << v
		default:
			if err := domField.each(item, func(v int) { d.days |= 1 << v }); err != nil {
				return nil, err
			}
		}
	}
	return &d, nil
}

func parseDow(s string) (*dowSpec, error) {
	var d dowSpec
	for item := range strings.SplitSeq(s, ",") {
		switch {
		case item == "L":
			d.days |= 1 << 7 // the week's last day, Saturday
		case strings.Contains(item, "#"):
			a, b, _ := strings.Cut(item, "#")
			w, err := dowField.value(a)
			if err != nil {
				return nil, err
			}
			k, err := strconv.Atoi(b)
			if err != nil || k < 1 || k > 5 || len(b) != 1 {
				return nil, fail("day-of-week %s: the number after # must be 1 to 5", strconv.Quote(item))
			}
			if len(d.nth) > 0 {
				return nil, fail("day-of-week %s: only one # is allowed", strconv.Quote(s))
			}
			d.nth = append(d.nth, nth{w, k})
		case len(item) > 1 && strings.HasSuffix(item, "L"):
			w, err := dowField.value(strings.TrimSuffix(item, "L"))
			if err != nil {
				return nil, err
			}
			d.last |= 1 << w
		default:
			if err := dowField.each(item, func(v int) { d.days |= 1 << v }); err != nil {
				return nil, err
			}
		}
	}
	return &d, nil
}

func (c *cronSpec) hasYear(y int) bool {
	i := y - MinYear
	return i >= 0 && y <= MaxYear && c.years[i/64]&(1<<(i%64)) != 0
}

// days returns the set of days (bits 1-31) of a month the expression
// names.
func (c *cronSpec) days(year int, month time.Month) uint64 {
	last := time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
	first := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC).Weekday() // 0 = Sunday
	weekday := func(day int) int { return (int(first)+day-1)%7 + 1 }   // 1 = Sunday
	inMonth := uint64(1)<<(last+1) - 2                                 // bits 1..last
	var m uint64
	if d := c.dom; d != nil {
		m = d.days & inMonth
		if d.last {
			m |= 1 << last
		}
		if d.lastWeek {
			m |= 1 << nearestWeekday(last, last, weekday)
		}
		for n := d.nearest & inMonth; n != 0; n &= n - 1 {
			m |= 1 << nearestWeekday(bits.TrailingZeros64(n), last, weekday)
		}
		return m
	}
	d := c.dow
	for day := 1; day <= last; day++ {
		w := weekday(day)
		switch {
		case d.days&(1<<w) != 0,
			d.last&(1<<w) != 0 && day+7 > last:
			m |= 1 << day
		}
		for _, n := range d.nth {
			if n.weekday == w && (day-1)/7+1 == n.k {
				m |= 1 << day
			}
		}
	}
	return m
}

// nearestWeekday returns the weekday (Monday to Friday) nearest day in its
// month, never crossing into another month.
func nearestWeekday(day, last int, weekday func(int) int) int {
	switch weekday(day) {
	case 7: // Saturday: Friday before, or Monday after on the 1st
		if day == 1 {
			return 3
		}
		return day - 1
	case 1: // Sunday: Monday after, or Friday before on the last day
		if day == last {
			return day - 2
		}
		return day + 1
	}
	return day
}

// next returns the first minute strictly after t that the expression
// names, or the zero time.
func (c *cronSpec) next(t time.Time) time.Time {
	t = t.Truncate(time.Minute).Add(time.Minute)
	year, month, day, hour, minute := t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute()
	for ; year <= MaxYear; year, month, day, hour, minute = year+1, 1, 1, 0, 0 {
		if !c.hasYear(year) {
			continue
		}
		for ; month <= 12; month, day, hour, minute = month+1, 1, 0, 0 {
			if c.months&(1<<month) == 0 {
				continue
			}
			days := c.days(year, time.Month(month))
			for ; day <= 31; day, hour, minute = day+1, 0, 0 {
				if days&(1<<day) == 0 {
					continue
				}
				for ; hour <= 23; hour, minute = hour+1, 0 {
					if c.hours&(1<<hour) == 0 {
						continue
					}
					if m := c.minutes >> minute; m != 0 {
						minute += bits.TrailingZeros64(m)
						return time.Date(year, time.Month(month), day, hour, minute, 0, 0, time.UTC)
					}
				}
			}
		}
	}
	return time.Time{}
}
