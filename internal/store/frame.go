package store

import "encoding/binary"

// AppendField appends a length-prefixed field (uvarint length, then the
// bytes) to b: the framing of batches here and of SQS's stored messages.
func AppendField(b, field []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(field)))
	return append(b, field...)
}

// CutField reads a field AppendField wrote at the start of b, and returns
// it and the rest of b; ok is false when b is cut short.
func CutField(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, b, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}
