package store

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"
	"testing"
	"time"
)

// sameAsMarshal checks that appendAttempt's encoding of a decodes to what
// json.Marshal's does, and that it is refused where json.Marshal fails.
func sameAsMarshal(t *testing.T, a Attempt) {
	t.Helper()
	want, err := json.Marshal(a)
	got, ok := appendAttempt([]byte("prefix"), &a)
	if err != nil || !ok {
		if err == nil || ok || string(got) != "prefix" {
			t.Fatalf("%+v: json.Marshal: %v; appendAttempt: ok %v, %q", a, err, ok, got)
		}
		return
	}
	var x, y Attempt
	if err := json.Unmarshal(want, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got[len("prefix"):], &y); err != nil {
		t.Fatalf("%+v: %q does not decode: %v", a, got, err)
	}
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("%+v:\n json.Marshal decodes to %+v\nappendAttempt decodes to %+v (%s)", a, x, y, got)
	}
}

func TestAppendAttempt(t *testing.T) {
	at := time.Date(2026, 12, 7, 13, 4, 5, 123456789, time.FixedZone("x", 3600))
	retry := at.Add(90 * time.Second).UTC()
	for _, a := range []Attempt{
		{},
		{Time: at, EventID: "7e1b3b5c-41c5-4a63-9d3c-000000000001", Bus: "default", RuleArn: "arn:aws:events:us-east-1:000000000000:rule/r",
			TargetID: "t", TargetArn: "arn:aws:events:us-east-1:000000000000:api-destination/d/x", Attempt: 1, Duration: 900 * time.Microsecond,
			Status: 200, Outcome: OutcomeDelivered},
		{Time: at, EventID: "e", Attempt: 3, Duration: -1, Status: 503, Code: "SDK_CLIENT_ERROR",
			Message: "quote \" backslash \\ newline \n tab \t cr \r nul \x00 bell \x07 del \x7f <html> & \u2028 \u2029 é 中 😀",
			Outcome: OutcomeRetrying, RetryAt: &retry, DeadLetterQueue: "arn:aws:sqs:us-east-1:000000000000:dlq"},
		{Time: at, EventID: "invalid \xff utf-8 \xc3 end \xe2\x82", Message: "\xed\xa0\x80 surrogate, \xef\xbf\xbd replacement", Outcome: OutcomeDropped},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Outcome: OutcomeDelivered},
		{Time: at, RetryAt: new(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)), Outcome: OutcomeRetrying},
		{Time: at.In(time.FixedZone("far", 24*3600)), Outcome: OutcomeDelivered},
		{Time: at.In(time.FixedZone("near", 24*3600-60)), Outcome: OutcomeDelivered},
		{Time: at.In(time.FixedZone("west", -24*3600)), Outcome: OutcomeDelivered},
	} {
		sameAsMarshal(t, a)
	}
}

func FuzzAppendAttempt(f *testing.F) {
	f.Add("e-1", "arn:aws:events:us-east-1:000000000000:rule/r", "t", "timeout \"x\"\n", 1, int64(1e6), 200, int64(0), 3600, true)
	f.Add("\xff\x00", "", "", "\u2028<&>", -1, int64(-5), 0, int64(1)<<62, -86400, false)
	f.Add("", "", "", "", 0, int64(0), 0, int64(-1)<<63, 86399, true)
	f.Fuzz(func(t *testing.T, id, rule, target, msg string, attempt int, dur int64, status int, unix int64, zone int, retry bool) {
		when := time.Unix(0, unix).In(time.FixedZone("z", zone%(48*3600)))
		a := Attempt{Time: when, EventID: id, RuleArn: rule, TargetID: target, Attempt: attempt,
			Duration: time.Duration(dur), Status: status, Code: msg, Message: msg, Outcome: msg}
		if retry {
			later := when.Add(time.Duration(dur))
			a.RetryAt = &later
		}
		sameAsMarshal(t, a)
	})
}

// TestAttemptSubject: the subject built in place is the one of the
// target's key and the event's bucket.
func TestAttemptSubject(t *testing.T) {
	for _, a := range []Attempt{
		{RuleArn: "arn:aws:events:us-east-1:000000000000:rule/r", TargetID: "t", EventID: "e-1"},
		{RuleArn: "arn:aws:events:eu-west-1:123456789012:rule/bus/rule-名", TargetID: "Id-7", EventID: "7e1b3b5c-41c5-4a63-9d3c-000000000001"},
		{RuleArn: "a", TargetID: "", EventID: ""},
		{EventID: "routed-nowhere"},
	} {
		key := TargetKey(a.RuleArn, a.TargetID)
		if a.RuleArn == "" {
			key = routerKey
		}
		want := attemptsSubject + "." + key + "." + eventBucket(a.EventID)
		if got := string(appendAttemptSubject(nil, &a)); got != want {
			t.Errorf("%+v: subject %s, want %s", a, got, want)
		}
		// The hashes are FNV-1a's, as stored subjects were named with
		// hash/fnv before they were computed in place.
		h64 := fnv.New64a()
		h64.Write([]byte(a.RuleArn + "\x00" + a.TargetID))
		if got, want := TargetKey(a.RuleArn, a.TargetID), fmt.Sprintf("%016x", h64.Sum64()); got != want {
			t.Errorf("%+v: target key %s, want %s", a, got, want)
		}
		h32 := fnv.New32a()
		h32.Write([]byte(a.EventID))
		if got, want := eventHash(a.EventID), h32.Sum32(); got != want {
			t.Errorf("%+v: event hash %x, want %x", a, got, want)
		}
	}
}
