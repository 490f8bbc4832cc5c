package transform

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// Input says how a target's input is made from the event. At most one
// member is set; none means the whole event.
type Input struct {
	Constant *string           // Input: sent as is
	Path     *string           // InputPath: the selected part of the event
	Paths    map[string]string // InputTransformer.InputPathsMap
	Template *string           // InputTransformer.InputTemplate
}

// Context is what the predefined template variables refer to.
type Context struct {
	RuleArn   string
	RuleName  string
	Ingestion time.Time
}

// Render returns the body a target receives for event.
//
// InputPath that selects nothing gives an empty body. A template is filled
// as EventBridge fills it: a placeholder inside a JSON string is replaced by
// the value's text without escaping (strings without their quotes, objects
// and arrays with their strings unquoted, as {key:value,list:[a,b]}); a
// placeholder outside a string is replaced by the value's JSON; a path that
// selects nothing gives an empty string (outside a string, ""). The
// predefined variables are aws.events.rule-arn, aws.events.rule-name,
// aws.events.event.ingestion-time, aws.events.event (the envelope without
// detail, with detailType, and time set to the ingestion time) and
// aws.events.event.json (the whole event).
func Render(event []byte, in Input, c Context) ([]byte, error) {
	switch {
	case in.Constant != nil:
		return []byte(*in.Constant), nil
	case in.Path != nil:
		v, ok, err := Select(event, *in.Path)
		if err != nil || !ok {
			return nil, err
		}
		return v, nil
	case in.Template != nil:
		vars := make(map[string][]byte, len(in.Paths)+5)
		for name, path := range in.Paths {
			if v, ok, err := Select(event, path); err != nil {
				return nil, err
			} else if ok {
				vars[name] = v
			}
		}
		predefined(vars, event, c)
		return fill(*in.Template, vars), nil
	}
	return event, nil
}

func predefined(vars map[string][]byte, event []byte, c Context) {
	str := func(s string) []byte { b, _ := json.Marshal(s); return b }
	ingestion := c.Ingestion.UTC().Format("2006-01-02T15:04:05.000Z")
	vars["aws.events.rule-arn"] = str(c.RuleArn)
	vars["aws.events.rule-name"] = str(c.RuleName)
	vars["aws.events.event.ingestion-time"] = str(ingestion)
	vars["aws.events.event.json"] = compact(event)
	members, _ := decodeObject(event)
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, k := range []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources"} {
		v, ok := members[k]
		switch k {
		case "time":
			v, ok = str(ingestion), true
		case "detail-type":
			k = "detailType"
		}
		if !ok {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(str(k))
		b.WriteByte(':')
		b.Write(compact(v))
	}
	b.WriteByte('}')
	vars["aws.events.event"] = b.Bytes()
}

// fill replaces the placeholders of a template.
func fill(tmpl string, vars map[string][]byte) []byte {
	var out bytes.Buffer
	inString := false
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch {
		case c == '\\' && inString && i+1 < len(tmpl):
			out.WriteByte(c)
			out.WriteByte(tmpl[i+1])
			i++
			continue
		case c == '"':
			inString = !inString
		case c == '<':
			end := strings.IndexByte(tmpl[i+1:], '>')
			if end >= 0 {
				name := tmpl[i+1 : i+1+end]
				if v, known := vars[name]; known || isPlaceholderName(name) {
					switch {
					case inString:
						out.WriteString(text(v))
					case v == nil:
						out.WriteString(`""`)
					default:
						out.Write(v)
					}
					i += end + 1
					continue
				}
			}
		}
		out.WriteByte(c)
	}
	return out.Bytes()
}

// isPlaceholderName reports whether <name> is a placeholder: a variable
// name as InputPathsMap allows.
func isPlaceholderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// text renders a JSON value for use inside a string, unescaped: strings
// without quotes, objects and arrays with their strings unquoted.
func text(v []byte) string {
	if v == nil {
		return ""
	}
	var x any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if dec.Decode(&x) != nil {
		return string(v)
	}
	if _, ok := x.(map[string]any); ok {
		var b strings.Builder
		writeText(&b, v)
		return b.String()
	}
	var b strings.Builder
	writeValue(&b, x, v)
	return b.String()
}

// writeText renders raw JSON in text form, keeping object member order.
func writeText(b *strings.Builder, raw []byte) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		members, keys := decodeObject(raw)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k)
			b.WriteByte(':')
			writeText(b, members[k])
		}
		b.WriteByte('}')
		return
	}
	if len(raw) > 0 && raw[0] == '[' {
		var elems []json.RawMessage
		_ = json.Unmarshal(raw, &elems)
		b.WriteByte('[')
		for i, e := range elems {
			if i > 0 {
				b.WriteByte(',')
			}
			writeText(b, e)
		}
		b.WriteByte(']')
		return
	}
	var x any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&x) != nil {
		b.Write(raw)
		return
	}
	writeValue(b, x, raw)
}

func writeValue(b *strings.Builder, x any, raw []byte) {
	switch v := x.(type) {
	case string:
		b.WriteString(v)
	case []any:
		writeText(b, raw)
	default:
		b.Write(bytes.TrimSpace(raw))
	}
}
