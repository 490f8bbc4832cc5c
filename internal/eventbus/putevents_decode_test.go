package eventbus

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"bridgeport/internal/awsapi"
)

// sdkBody is a PutEvents request as the SDKs send it: ten entries, each
// with a detail of about 1 KB.
func sdkBody() []byte {
	var b strings.Builder
	b.WriteString(`{"Entries":[`)
	for i := range 10 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Detail":"{\"orderId\":\"o-%d\",\"total\":12.5,\"note\":\"caf\u00e9 \\u00e9 \\ud83d\\ude00\",\"pad\":\"%s\"}","DetailType":"Order Placed","EventBusName":"orders","Resources":["arn:aws:shop:us-east-1:1:order/%d"],"Source":"com.shop"}`,
			i, strings.Repeat("x", 900), i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// TestPutEventsDecoder checks the fast decoder against encoding/json on the
// shapes it takes, and that it declines the others.
func TestPutEventsDecoder(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		string(sdkBody()),
		`{"Entries":[]}`,
		` { "Entries" : [ { } , {"Source":"a","Resources":[]} ] } `,
		`{"Entries":[{"Sour\u0063e":"s","Detail":"{\"a\":\"\\\\\\\"\"}","TraceHeader":"t"}]}`,
		"{\"Entries\":[{\"Source\":\"\\u0000\\b\\f\\n\\r\\t\\/é\"}]}",
	} {
		fast, ok := decodePutEvents([]byte(body))
		if !ok {
			t.Errorf("declined %s", body)
			continue
		}
		var slow putEventsInput
		if err := awsapi.Decode([]byte(body), &slow); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s:\nfast %#v\nslow %#v", body, fast, slow)
		}
	}
	for _, body := range []string{
		``, `{}`, `[]`, `{"Entries":null}`, `{"entries":[]}`, `{"Entries":[],"EndpointId":"x"}`,
		`{"Entries":[{"Time":1700000000}]}`, `{"Entries":[{"Source":null}]}`, `{"Entries":[{"source":"a"}]}`,
		`{"Entries":[{"Source":"a","Source":"b"}]}`, `{"Entries":[{"Resources":["a"],"Resources":["b"]}]}`,
		`{"Entries":[{"Source":"\ud800"}]}`, `{"Entries":[{"Source":"\udc00\ud800"}]}`, "{\"Entries\":[{\"Source\":\"\xff\"}]}",
		`{"Entries":[{"Source":"a"}]} x`, `{"Entries":[{"Source":"a"},]}`, `{"Entries":[{"Source":1}]}`, "{\"Entries\":[{\"Source\":\"a\nb\"}]}",
		`{"Entries":[{"Detail":{"a":1}}]}`, `{"Entries":[{"Source":"\x"}]}`, `{"Entries":[{"Source":"\u12"}]}`,
	} {
		if _, ok := decodePutEvents([]byte(body)); ok {
			t.Errorf("took %q, which is for encoding/json", body)
		}
	}
}

// FuzzPutEventsDecoder: whatever the fast decoder takes, encoding/json
// takes too and decodes alike; and it never panics.
func FuzzPutEventsDecoder(f *testing.F) {
	f.Add(sdkBody())
	f.Add([]byte(`{"Entries":[{"Source":"a","Resources":["x","y"],"Detail":"{\"k\":\"\\u00e9\"}"}]}`))
	f.Add([]byte(`{"Entries":[{"Source":"\ud83d\ude00"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodePutEvents(body)
		if !ok {
			return
		}
		var slow putEventsInput
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast decoder took what encoding/json refuses (%v): %q", err, body)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", body, fast, slow)
		}
	})
}

// BenchmarkPutEventsDecode compares the fast decoder with encoding/json on
// a request of ten 1 KB entries.
func BenchmarkPutEventsDecode(b *testing.B) {
	body := sdkBody()
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := decodePutEvents(body); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var in putEventsInput
			if err := awsapi.Decode(body, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
