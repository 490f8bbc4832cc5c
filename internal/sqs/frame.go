package sqs

import (
	"encoding/binary"
	"errors"
	"sort"

	"bridgeport/internal/store"
)

// A stored message is framed in binary, not JSON, so that its size is the
// size SQS counts plus a few bytes, whatever its characters: a version
// byte, then length-prefixed fields (uvarint lengths), the attributes, and
// the body last.
const frameVersion = 1

var errFrame = errors.New("malformed stored message")

// encode frames a stored message.
func (m *stored) encode() []byte {
	size := 64 + len(m.Body) + len(m.MD5Body) + len(m.MD5Attrs) + len(m.Sender) + len(m.Group) + len(m.Dedupe)
	for n, a := range m.Attrs {
		size += 16 + len(n) + len(a.DataType) + len(a.BinaryValue)
		if a.StringValue != nil {
			size += len(*a.StringValue)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, frameVersion)
	for _, f := range []string{m.MD5Body, m.MD5Attrs, m.Sender, m.Group, m.Dedupe} {
		b = store.AppendField(b, []byte(f))
	}
	names := make([]string, 0, len(m.Attrs))
	for n := range m.Attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		a := m.Attrs[n]
		b = store.AppendField(b, []byte(n))
		b = store.AppendField(b, []byte(a.DataType))
		if a.StringValue != nil {
			b = append(b, 1)
			b = store.AppendField(b, []byte(*a.StringValue))
		} else {
			b = append(b, 2)
			b = store.AppendField(b, a.BinaryValue)
		}
	}
	return append(b, m.Body...)
}

// decodeStored reads a framed message.
func decodeStored(b []byte) (stored, error) {
	var m stored
	if len(b) == 0 || b[0] != frameVersion {
		return m, errFrame
	}
	b = b[1:]
	field := func() ([]byte, bool) {
		f, rest, ok := store.CutField(b)
		b = rest
		return f, ok
	}
	for _, dst := range []*string{&m.MD5Body, &m.MD5Attrs, &m.Sender, &m.Group, &m.Dedupe} {
		f, ok := field()
		if !ok {
			return m, errFrame
		}
		*dst = string(f)
	}
	count, k := binary.Uvarint(b)
	if k <= 0 || count > 100 {
		return m, errFrame
	}
	b = b[k:]
	if count > 0 {
		m.Attrs = make(map[string]Attribute, count)
	}
	for range count {
		name, ok1 := field()
		typ, ok2 := field()
		if !ok1 || !ok2 || len(b) == 0 {
			return m, errFrame
		}
		kind := b[0]
		b = b[1:]
		v, ok := field()
		if !ok {
			return m, errFrame
		}
		a := Attribute{DataType: string(typ)}
		switch kind {
		case 1:
			s := string(v)
			a.StringValue = &s
		case 2:
			a.BinaryValue = append([]byte(nil), v...)
		default:
			return m, errFrame
		}
		m.Attrs[string(name)] = a
	}
	m.Body = string(b)
	return m, nil
}
