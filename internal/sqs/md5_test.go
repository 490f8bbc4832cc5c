package sqs

import "testing"

func str(s string) *string { return &s }

// The digests are the samples AWS's SDKs check against (published with
// SQS's description of the algorithm).
func TestAttributesMD5(t *testing.T) {
	t.Parallel()
	cases := []struct {
		attrs map[string]Attribute
		want  string
	}{
		{map[string]Attribute{
			"test_attribute_name_2": {DataType: "String", StringValue: str("test_attribute_value_2")},
			"test_attribute_name_1": {DataType: "String", StringValue: str("test_attribute_value_1")},
		}, "d53f3b558fe951154770f25cb63dbba9"},
		{map[string]Attribute{
			"test_attribute_name": {DataType: "Binary", BinaryValue: []byte("test_attribute_value")},
		}, "23f6bd27ea87aab7dfeadcc9aebee495"},
		{nil, ""},
	}
	for _, c := range cases {
		if got := attributesMD5(c.attrs); got != c.want {
			t.Errorf("attributesMD5(%v) = %s, want %s", c.attrs, got, c.want)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	m := stored{Body: `<&>"` + "\t\u00e9", MD5Body: "a", MD5Attrs: "b", Sender: "c", Group: "g", Dedupe: "d",
		Attrs: map[string]Attribute{"s": {DataType: "String", StringValue: str("<v>")}, "b": {DataType: "Binary", BinaryValue: []byte{0, 255}}}}
	data := m.encode()
	if extra := len(data) - len(m.Body); extra > 64 {
		t.Errorf("framing costs %d bytes", extra)
	}
	back, err := decodeStored(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Body != m.Body || back.Group != "g" || *back.Attrs["s"].StringValue != "<v>" || string(back.Attrs["b"].BinaryValue) != "\x00\xff" {
		t.Errorf("round trip: %+v", back)
	}
	for i := range data {
		if _, err := decodeStored(data[:i]); err == nil && i < len(data)-len(m.Body) {
			t.Errorf("truncated at %d decoded", i)
		}
	}
}

func FuzzDecodeStored(f *testing.F) {
	f.Add((&stored{Body: "x", Attrs: map[string]Attribute{"a": {DataType: "String", StringValue: str("v")}}}).encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeStored(data)
		if err != nil {
			return
		}
		back, err := decodeStored(m.encode())
		if err != nil || back.Body != m.Body || len(back.Attrs) != len(m.Attrs) {
			t.Fatalf("re-encoding %+v: %+v, %v", m, back, err)
		}
	})
}
