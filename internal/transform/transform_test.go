package transform

import (
	"encoding/json"
	"testing"
	"time"
)

const event = `{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"123456789012","time":"2015-11-11T21:29:54Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],"detail":{"instance-id":"i-0123456789","state":"RUNNING","n":5,"ok":true,"tags":["ACTIVE","INACTIVE"],"obj":{"acc_id":"0a787ecb-4015","sf_id":"baz"},"quote":"say \"hi\"","odd key":1}}`

func TestSelect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path, want string
		ok         bool
	}{
		{"$", "", true},
		{"$.detail.state", `"RUNNING"`, true},
		{"$.detail.n", `5`, true},
		{"$.detail.tags[1]", `"INACTIVE"`, true},
		{"$.detail.tags[*]", `["ACTIVE","INACTIVE"]`, true},
		{"$.detail['odd key']", `1`, true},
		{"$.detail.obj", `{"acc_id":"0a787ecb-4015","sf_id":"baz"}`, true},
		{"$.detail.missing", "", false},
		{"$.detail.tags[9]", "", false},
		{"$.detail.state.deeper", "", false},
	} {
		got, ok, err := Select([]byte(event), tc.path)
		if err != nil || ok != tc.ok || (tc.want != "" && string(got) != tc.want) {
			t.Errorf("Select(%s) = %s, %v, %v; want %s, %v", tc.path, got, ok, err, tc.want, tc.ok)
		}
	}
	for _, bad := range []string{"", "detail", "$.", "$..a", "$[", "$[x]", "$[-1]", "$detail"} {
		if ValidPath(bad) {
			t.Errorf("ValidPath(%q) = true", bad)
		}
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	ctx := Context{RuleArn: "arn:aws:events:us-east-1:123456789012:rule/r", RuleName: "r", Ingestion: time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)}
	paths := map[string]string{"instance": "$.detail.instance-id", "state": "$.detail.state", "n": "$.detail.n", "tags": "$.detail.tags",
		"obj": "$.detail.obj", "missing": "$.detail.missing", "quote": "$.detail.quote"}
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name string
		in   Input
		want string
	}{
		{"whole event", Input{}, event},
		{"constant", Input{Constant: s(`{"fixed":1}`)}, `{"fixed":1}`},
		{"input path", Input{Path: s("$.detail.obj")}, `{"acc_id":"0a787ecb-4015","sf_id":"baz"}`},
		{"input path selecting nothing", Input{Path: s("$.nope")}, ``},
		// AWS's documented examples.
		{"string template", Input{Paths: paths, Template: s(`"instance <instance> is in <state>"`)}, `"instance i-0123456789 is in RUNNING"`},
		{"json template", Input{Paths: paths, Template: s(`{"instance": <instance>, "state": [9, <state>, true]}`)}, `{"instance": "i-0123456789", "state": [9, "RUNNING", true]}`},
		{"inside quotes", Input{Paths: paths, Template: s(`{"instance" : "<instance>", "n": <n>}`)}, `{"instance" : "i-0123456789", "n": 5}`},
		// Recorded quirks: objects and lists unquoted inside strings,
		// missing paths empty, values not escaped.
		{"object in string", Input{Paths: paths, Template: s(`"<obj>"`)}, `"{acc_id:0a787ecb-4015,sf_id:baz}"`},
		{"list in string", Input{Paths: paths, Template: s(`"<tags>"`)}, `"[ACTIVE,INACTIVE]"`},
		{"missing in string", Input{Paths: paths, Template: s(`{"command": "<missing>"}`)}, `{"command": ""}`},
		{"missing as value", Input{Paths: paths, Template: s(`{"command": <missing>}`)}, `{"command": ""}`},
		{"not escaped", Input{Paths: paths, Template: s(`"<quote>"`)}, `"say "hi""`},
		{"predefined", Input{Paths: paths, Template: s(`{"rule":<aws.events.rule-name>,"arn":"<aws.events.rule-arn>","at":<aws.events.event.ingestion-time>}`)},
			`{"rule":"r","arn":"arn:aws:events:us-east-1:123456789012:rule/r","at":"2026-11-22T01:02:03.000Z"}`},
		{"event without detail", Input{Template: s(`{"e":<aws.events.event>}`)},
			`{"e":{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detailType":"EC2 Instance State-change Notification","source":"aws.ec2","account":"123456789012","time":"2026-11-22T01:02:03.000Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"]}}`},
		{"whole event json", Input{Template: s(`{"e":<aws.events.event.json>}`)}, `{"e":` + event + `}`},
		{"escaped quote in template", Input{Paths: paths, Template: s(`"a \"<state>\""`)}, `"a \"RUNNING\""`},
	} {
		got, err := Render([]byte(event), tc.in, ctx)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: Render = %s, %v\nwant %s", tc.name, got, err, tc.want)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add(`{"a":[1,{"b":"c"}]}`, "$.a[1].b", `{"x": <v>, "y": "<v>"}`)
	f.Add(`{}`, "$", `"<v>"`)
	f.Fuzz(func(t *testing.T, ev, path, tmpl string) {
		if !json.Valid([]byte(ev)) {
			return
		}
		_, _ = Render([]byte(ev), Input{Paths: map[string]string{"v": path}, Template: &tmpl}, Context{})
		_, _ = Render([]byte(ev), Input{Path: &path}, Context{})
	})
}

var benchEvent = []byte(`{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"OrderPlaced","source":"shop",` +
	`"account":"000000000000","time":"2026-12-01T10:00:00Z","region":"us-east-1","resources":[],` +
	`"detail":{"orderId":"o-1","customer":{"id":"c-9","tier":"gold"},"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}],"total":150.5}}`)

// BenchmarkRenderTransformer measures an InputTransformer with three paths.
func BenchmarkRenderTransformer(b *testing.B) {
	tmpl := `{"order": <id>, "customer": <customer>, "total": <total>, "rule": <aws.events.rule-name>}`
	in := Input{Paths: map[string]string{"id": "$.detail.orderId", "customer": "$.detail.customer", "total": "$.detail.total"}, Template: &tmpl}
	c := Context{RuleArn: "arn:aws:events:us-east-1:000000000000:rule/r", RuleName: "r"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(benchEvent, in, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderPath measures an InputPath.
func BenchmarkRenderPath(b *testing.B) {
	p := "$.detail"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(benchEvent, Input{Path: &p}, Context{}); err != nil {
			b.Fatal(err)
		}
	}
}
