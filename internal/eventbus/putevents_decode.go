package eventbus

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"bridgeport/internal/jsonscan"
)

// decodePutEvents decodes a PutEvents request of the shape SDKs send, in
// one pass and without reflection: {"Entries":[{...},...]}, each entry's
// members among Source, DetailType, Detail, EventBusName, TraceHeader
// (strings) and Resources (an array of strings), each at most once, with
// any JSON whitespace. Decoding the request was the largest part of
// PutEvents' own time with encoding/json.
//
// It reports false for anything else: a Time or an EndpointId, a null,
// a member named otherwise (encoding/json matches names ignoring case), a
// repeated member, invalid UTF-8, malformed JSON. The request is then
// decoded by awsapi.Decode as before, so this never decides an error, and
// what it accepts it decodes as encoding/json would (FuzzPutEventsDecoder
// checks both).
func decodePutEvents(body []byte) (putEventsInput, bool) {
	d := peDecoder{b: body}
	var in putEventsInput
	d.space()
	if !d.byte('{') {
		return in, false
	}
	d.space()
	if !d.literal(`"Entries"`) {
		return in, false
	}
	d.space()
	if !d.byte(':') {
		return in, false
	}
	d.space()
	if !d.byte('[') {
		return in, false
	}
	in.Entries = []putEventsEntry{}
	d.space()
	if !d.byte(']') {
		for {
			e, ok := d.entry()
			if !ok {
				return in, false
			}
			in.Entries = append(in.Entries, e)
			d.space()
			if d.byte(']') {
				break
			}
			if !d.byte(',') {
				return in, false
			}
			d.space()
		}
	}
	d.space()
	if !d.byte('}') {
		return in, false
	}
	d.space()
	return in, d.i == len(d.b)
}

type peDecoder struct {
	b []byte
	i int
	// last holds the previous entry's Source, DetailType and EventBusName:
	// the entries of a call mostly share them, and share one string then.
	last [3]*string
}

func (d *peDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte consumes c if it comes next.
func (d *peDecoder) byte(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// literal consumes s if it comes next.
func (d *peDecoder) literal(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// entry decodes one entry object.
func (d *peDecoder) entry() (putEventsEntry, bool) {
	var e putEventsEntry
	if !d.byte('{') {
		return e, false
	}
	d.space()
	if d.byte('}') {
		return e, true
	}
	for {
		view, unescaped, escaped, ok := d.rawStr()
		if !ok {
			return e, false
		}
		name := view
		if escaped {
			name = []byte(unescaped)
		}
		d.space()
		if !d.byte(':') {
			return e, false
		}
		d.space()
		var field **string
		last := -1
		switch string(name) {
		case "Source":
			field, last = &e.Source, 0
		case "DetailType":
			field, last = &e.DetailType, 1
		case "Detail":
			field = &e.Detail
		case "EventBusName":
			field, last = &e.EventBusName, 2
		case "TraceHeader":
			field = &e.TraceHeader
		case "Resources":
			if e.Resources != nil || !d.strings(&e.Resources) {
				return e, false
			}
		default:
			return e, false // Time, other names, other spellings
		}
		if field != nil {
			if *field != nil {
				return e, false // repeated: encoding/json keeps the last
			}
			if last < 0 {
				v, ok := d.str()
				if !ok {
					return e, false
				}
				*field = &v
			} else {
				v, ok := d.strLike(d.last[last])
				if !ok {
					return e, false
				}
				*field, d.last[last] = v, v
			}
		}
		d.space()
		if d.byte('}') {
			return e, true
		}
		if !d.byte(',') {
			return e, false
		}
		d.space()
	}
}

// strings decodes an array of strings.
func (d *peDecoder) strings(out *[]string) bool {
	if !d.byte('[') {
		return false
	}
	list := []string{}
	d.space()
	if !d.byte(']') {
		for {
			s, ok := d.str()
			if !ok {
				return false
			}
			list = append(list, s)
			d.space()
			if d.byte(']') {
				break
			}
			if !d.byte(',') {
				return false
			}
			d.space()
		}
	}
	*out = list
	return true
}

// str decodes a JSON string. It refuses invalid UTF-8 and escapes of lone
// surrogates, which encoding/json replaces with U+FFFD.
func (d *peDecoder) str() (string, bool) {
	view, unescaped, escaped, ok := d.rawStr()
	if escaped || !ok {
		return unescaped, ok
	}
	return string(view), true
}

// strLike decodes a JSON string as str does, and returns prev rather than
// a new string when they are equal.
func (d *peDecoder) strLike(prev *string) (*string, bool) {
	view, s, escaped, ok := d.rawStr()
	if !ok {
		return nil, false
	}
	if !escaped {
		if prev != nil && *prev == string(view) {
			return prev, true
		}
		s = string(view)
	}
	return &s, true
}

// rawStr decodes a JSON string: a string without escapes as its bytes in
// the body (view, valid as long as the body), one with escapes unescaped.
func (d *peDecoder) rawStr() (view []byte, unescaped string, escaped, ok bool) {
	if !d.byte('"') {
		return nil, "", false, false
	}
	start := d.i
	d.i = jsonscan.Plain(d.b, d.i)
	if d.i >= len(d.b) {
		return nil, "", false, false
	}
	switch d.b[d.i] {
	case '"':
		view = d.b[start:d.i]
		d.i++
		return view, "", false, utf8.Valid(view)
	case '\\':
		unescaped, ok = d.escaped(start)
		return nil, unescaped, true, ok
	}
	return nil, "", false, false // a control character
}

// escaped finishes a string that has escapes, from its start.
func (d *peDecoder) escaped(start int) (string, bool) {
	// The unescaped string is no longer than the escaped one.
	end := d.i
	for {
		if end = jsonscan.Plain(d.b, end); end >= len(d.b) || d.b[end] != '\\' {
			break
		}
		end += 2
	}
	var out strings.Builder
	out.Grow(end - start)
	out.Write(d.b[start:d.i])
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			s := out.String()
			if !utf8.ValidString(s) {
				return "", false
			}
			return s, true
		case c < 0x20:
			return "", false
		case c != '\\':
			// Up to the next escape or the end, at once.
			j := jsonscan.Plain(d.b, d.i+1)
			out.Write(d.b[d.i:j])
			d.i = j
			continue
		}
		if d.i+1 >= len(d.b) {
			return "", false
		}
		d.i += 2
		switch d.b[d.i-1] {
		case '"', '\\', '/':
			out.WriteByte(d.b[d.i-1])
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// Only a high surrogate followed by a low one.
				if r >= 0xDC00 || !d.literal(`\u`) {
					return "", false
				}
				r2, ok := d.hex4()
				if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
			}
			out.WriteRune(r)
		default:
			return "", false
		}
	}
	return "", false
}

// hex4 decodes the four hex digits of a \u escape.
func (d *peDecoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}
