package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/connection"
	"bridgeport/internal/secretbox"
	"bridgeport/internal/store"
)

// newTestService starts a Service on a fresh embedded store.
func newTestService(t testing.TB) *Service {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.Load(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	conns := connection.New(connection.Config{Store: st, Region: "us-east-1", AccountID: "123456789012", Secrets: box,
		Quotas: connection.Quotas{Connections: 100, ApiDestinations: 100}})
	if err := conns.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Store: st, Region: "us-east-1", AccountID: "123456789012", Connections: conns,
		Quotas: Quotas{EventBuses: 100, RulesPerBus: 300, TargetsPerRule: 5, PatternSize: 2048, WildcardRules: 30, EventSize: 1 << 20}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		conns.Stop()
		st.Close()
	})
	return s
}

// checkAPIError fails unless err is nil or an *awsapi.Error a client may
// see: a 4xx with a code and a message.
func checkAPIError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var aerr *awsapi.Error
	if !errors.As(err, &aerr) {
		t.Fatalf("error %v (%T) is not an API error", err, err)
	}
	if aerr.HTTPStatus() >= 500 || aerr.Code == "" {
		t.Fatalf("error %+v", aerr)
	}
}

// FuzzPutEvents sends arbitrary request bodies to PutEvents: every answer is
// an API error or one result per entry, never a panic or an internal error.
func FuzzPutEvents(f *testing.F) {
	for _, seed := range []string{
		`{"Entries":[{"Source":"s","DetailType":"t","Detail":"{\"a\":1}"}]}`,
		`{"Entries":[{"Source":"s","DetailType":"t","Detail":"[1]"}]}`,
		`{"Entries":[{"Source":"s","DetailType":"t","Detail":"{}","EventBusName":"arn:aws:events:us-east-1:123456789012:event-bus/default"}]}`,
		`{"Entries":[{"Source":"s","DetailType":"t","Detail":"{}","Time":1700000000.5,"Resources":["r"]}]}`,
		`{"Entries":[{"Source":1}]}`,
		`{"Entries":[]}`,
		`{"Entries":null}`,
		`[]`,
		`{"Entries":[{"Detail":"{\"a\":` + strings.Repeat("[", 1200) + `"}]}`,
		`{"Entries":[{"Source":"s","DetailType":"t","Detail":"{}","Time":"not a time"}]}`,
		`{"Entries":[{"Source":"s","DetailType":"t","Detail":"{}","Time":1e400}]}`,
	} {
		f.Add([]byte(seed))
	}
	s := newTestService(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := s.putEvents(context.Background(), body)
		checkAPIError(t, err)
		if err != nil {
			return
		}
		var in putEventsInput
		if jerr := json.Unmarshal(body, &in); jerr != nil {
			t.Fatalf("accepted a body encoding/json rejects: %v", jerr)
		}
		data, _ := json.Marshal(out)
		var res struct {
			FailedEntryCount int
			Entries          []putEventsResult
		}
		if err := json.Unmarshal(data, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) != len(in.Entries) {
			t.Fatalf("%d results for %d entries", len(res.Entries), len(in.Entries))
		}
		failed := 0
		for _, r := range res.Entries {
			if (r.ErrorCode == "") == (r.EventId == "") {
				t.Fatalf("result %+v has neither or both of an id and an error", r)
			}
			if r.ErrorCode != "" {
				failed++
			}
		}
		if failed != res.FailedEntryCount {
			t.Fatalf("FailedEntryCount %d, %d failed", res.FailedEntryCount, failed)
		}
	})
}

// FuzzRequests sends arbitrary bodies to every operation: each answers with
// a result or an API error, never a panic or an internal error.
func FuzzRequests(f *testing.F) {
	s := newTestService(f)
	ops := s.Operations()
	names := slices.Sorted(maps.Keys(ops))
	for _, seed := range []string{`{}`, `{"Name":"x"}`, `{"Name":"x","EventPattern":"{\"a\":[1]}"}`,
		`{"Rule":"x","Targets":[{"Id":"a","Arn":"b","Input":"{"}]}`, `{"Limit":0}`, `{"NextToken":"bjpa"}`,
		`{"ResourceARN":"arn:aws:events:us-east-1:123456789012:rule/x","Tags":[{"Key":"","Value":"v"}]}`,
		`{"EventPattern":"{}","Event":"{}"}`, `{"Name":"default"}`, `null`, `{"Name":1}`} {
		for i := range names {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := names[int(op)%len(names)]
		_, err := ops[name](context.Background(), body)
		checkAPIError(t, err)
	})
}
