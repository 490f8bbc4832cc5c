package sqs

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"sort"
)

// Attribute is a message attribute.
type Attribute struct {
	DataType    string  `json:"DataType"`
	StringValue *string `json:"StringValue,omitempty"`
	BinaryValue []byte  `json:"BinaryValue,omitempty"`
	// Reserved by SQS; accepted and ignored.
	StringListValues []string `json:"StringListValues,omitempty"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty"`
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// attributesMD5 is SQS's digest of message attributes: for each attribute,
// in name order, the name, the data type, a transport byte (1 for string
// values, 2 for binary) and the value, each length-prefixed (4 bytes, big
// endian) except the transport byte. Empty without attributes.
func attributesMD5(attrs map[string]Attribute) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	field := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, n := range names {
		a := attrs[n]
		field([]byte(n))
		field([]byte(a.DataType))
		if a.BinaryValue != nil && isBinary(a.DataType) {
			h.Write([]byte{2})
			field(a.BinaryValue)
		} else {
			h.Write([]byte{1})
			v := ""
			if a.StringValue != nil {
				v = *a.StringValue
			}
			field([]byte(v))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
