// Package transform computes what a target receives: the event, a constant
// Input, the part of the event an InputPath selects, or an InputTransformer's
// template filled from the event; and the JSONPath values of HttpParameters.
// It is pure: no I/O, no logging, the standard library only.
package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// step is one step of a JSONPath: a member name, an array index, or every
// element ("*").
type step struct {
	name  string
	index int
	kind  byte // 'n' name, 'i' index, '*' all
}

// ErrPath is returned for a JSONPath EventBridge would not accept.
var ErrPath = errors.New("invalid JSONPath")

// parsePath parses "$", "$.a.b", "$.a[0]", "$['a b']", "$.a[*]".
func parsePath(p string) ([]step, error) {
	rest, ok := strings.CutPrefix(p, "$")
	if !ok {
		return nil, ErrPath
	}
	var steps []step
	for rest != "" {
		switch rest[0] {
		case '.':
			i := 1
			for i < len(rest) && rest[i] != '.' && rest[i] != '[' {
				i++
			}
			if i == 1 {
				return nil, ErrPath
			}
			name := rest[1:i]
			if name == "*" {
				steps = append(steps, step{kind: '*'})
			} else {
				steps = append(steps, step{kind: 'n', name: name})
			}
			rest = rest[i:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, ErrPath
			}
			inner := rest[1:end]
			switch {
			case inner == "*":
				steps = append(steps, step{kind: '*'})
			case len(inner) >= 2 && (inner[0] == '\'' && inner[len(inner)-1] == '\'' || inner[0] == '"' && inner[len(inner)-1] == '"'):
				steps = append(steps, step{kind: 'n', name: inner[1 : len(inner)-1]})
			default:
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return nil, ErrPath
				}
				steps = append(steps, step{kind: 'i', index: n})
			}
			rest = rest[end+1:]
		default:
			return nil, ErrPath
		}
	}
	return steps, nil
}

// ValidPath reports whether p is a JSONPath this package evaluates.
func ValidPath(p string) bool {
	_, err := parsePath(p)
	return err == nil
}

// Select evaluates a JSONPath against a JSON document and returns the
// selected value as compact JSON, or ok false when nothing is there. A
// path with "*" selects a JSON array of every match.
func Select(doc []byte, path string) (value []byte, ok bool, err error) {
	steps, err := parsePath(path)
	if err != nil {
		return nil, false, err
	}
	wild := false
	for _, s := range steps {
		wild = wild || s.kind == '*'
	}
	vals := []json.RawMessage{json.RawMessage(doc)}
	for _, s := range steps {
		var next []json.RawMessage
		for _, v := range vals {
			next = appendStep(next, v, s)
		}
		vals = next
	}
	if !wild {
		if len(vals) == 0 {
			return nil, false, nil
		}
		return compact(vals[0]), true, nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(compact(v))
	}
	b.WriteByte(']')
	return b.Bytes(), true, nil
}

func appendStep(dst []json.RawMessage, v json.RawMessage, s step) []json.RawMessage {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return dst
	}
	switch {
	case v[0] == '{' && (s.kind == 'n' || s.kind == '*'):
		members, keys := decodeObject(v)
		if s.kind == 'n' {
			if m, ok := members[s.name]; ok {
				dst = append(dst, m)
			}
			return dst
		}
		for _, k := range keys {
			dst = append(dst, members[k])
		}
	case v[0] == '[' && (s.kind == 'i' || s.kind == '*'):
		var elems []json.RawMessage
		if json.Unmarshal(v, &elems) != nil {
			return dst
		}
		if s.kind == 'i' {
			if s.index < len(elems) {
				dst = append(dst, elems[s.index])
			}
			return dst
		}
		dst = append(dst, elems...)
	}
	return dst
}

// decodeObject returns an object's members and its keys in document order.
func decodeObject(v json.RawMessage) (map[string]json.RawMessage, []string) {
	members := map[string]json.RawMessage{}
	if json.Unmarshal(v, &members) != nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	var keys []string
	if _, err := dec.Token(); err != nil { // '{'
		return members, nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			break
		}
	}
	return members, keys
}

func compact(v []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}
