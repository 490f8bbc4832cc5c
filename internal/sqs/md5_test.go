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
