package eventbus

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
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
		name, ok := d.str()
		if !ok {
			return e, false
		}
		d.space()
		if !d.byte(':') {
			return e, false
		}
		d.space()
		var field **string
		switch name {
		case "Source":
			field = &e.Source
		case "DetailType":
			field = &e.DetailType
		case "Detail":
			field = &e.Detail
		case "EventBusName":
			field = &e.EventBusName
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
			v, ok := d.str()
			if !ok {
				return e, false
			}
			*field = &v
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
	if !d.byte('"') {
		return "", false
	}
	start := d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return "", false
}

// escaped finishes a string that has escapes, from its start.
func (d *peDecoder) escaped(start int) (string, bool) {
	// The unescaped string is no longer than the escaped one.
	end := d.i
	for end < len(d.b) && d.b[end] != '"' {
		if d.b[end] == '\\' {
			end++
		}
		end++
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
			j := d.i + 1
			for j < len(d.b) && d.b[j] != '\\' && d.b[j] != '"' && d.b[j] >= 0x20 {
				j++
			}
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
