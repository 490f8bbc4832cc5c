package pattern

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// An EC2 state-change event from the EventBridge user guide.
const ec2Event = `{
  "version": "0",
  "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "111122223333",
  "time": "2017-12-22T18:43:48Z",
  "region": "us-west-1",
  "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
  "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"}
}`

// matchCase is a pattern, an event, and whether they match.
type matchCase struct {
	name    string
	pattern string
	event   string
	want    bool
}

var matchCases = []matchCase{
	// The user guide's examples.
	{"guide: ec2 termination", `{"source":["aws.ec2"],"detail-type":["EC2 Instance State-change Notification"],"detail":{"state":["terminated"]}}`, ec2Event, true},
	{"guide: other state", `{"source":["aws.ec2"],"detail":{"state":["running"]}}`, ec2Event, false},
	{"guide: several values", `{"source":["aws.ec2","aws.fargate"]}`, ec2Event, true},
	{"guide: resources array", `{"resources":["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"]}`, ec2Event, true},
	{"guide: arn is exact", `{"resources":["arn:aws:ec2:us-west-1:123456789012:instance:i-1234567890abcdef0"]}`, ec2Event, false},
	{"guide: prefix on time", `{"time":[{"prefix":"2017-12-22"}]}`, ec2Event, true},
	{"guide: missing field", `{"detail":{"c-count":[{"exists":true}]}}`, ec2Event, false},
	{"guide: field not in pattern ignored", `{"region":["us-west-1"]}`, ec2Event, true},

	// Exact values.
	{"string equal", `{"a":["x"]}`, `{"a":"x"}`, true},
	{"string differs in case", `{"a":["x"]}`, `{"a":"X"}`, false},
	{"string not number", `{"a":["5"]}`, `{"a":5}`, false},
	{"number not string", `{"a":[5]}`, `{"a":"5"}`, false},
	{"number by text", `{"a":[300]}`, `{"a":300}`, true},
	{"number 300.0 is 300 (AWS, not its guide)", `{"a":[300]}`, `{"a":300.0}`, true},
	{"number 3.0e2 is 300", `{"a":[300]}`, `{"a":3.0e2}`, true},
	{"number 300.5 is not 300", `{"a":[300]}`, `{"a":300.5}`, false},
	{"string 300 is not the number", `{"a":[300]}`, `{"a":"300"}`, false},
	{"number 300 is 300.0", `{"a":[300.0]}`, `{"a":300}`, true},
	{"number same text float", `{"a":[3.0e2]}`, `{"a":3.0e2}`, true},
	{"negative number", `{"a":[-1]}`, `{"a":-1}`, true},
	{"true", `{"a":[true]}`, `{"a":true}`, true},
	{"true is not the string", `{"a":[true]}`, `{"a":"true"}`, false},
	{"false", `{"a":[false]}`, `{"a":false}`, true},
	{"null matches null", `{"a":[null]}`, `{"a":null}`, true},
	{"null is not empty string", `{"a":[null]}`, `{"a":""}`, false},
	{"null is not missing", `{"a":[null]}`, `{"b":1}`, false},
	{"empty string matches empty", `{"a":[""]}`, `{"a":""}`, true},
	{"empty string is not null", `{"a":[""]}`, `{"a":null}`, false},
	{"exactly operator", `{"a":[{"exactly":"x"}]}`, `{"a":"x"}`, true},
	{"escaped string", `{"a":["caf\u00e9 \"q\""]}`, `{"a":"café \"q\""}`, true},
	{"event escapes decoded", `{"a":["line\nnext"]}`, `{"a":"line\u000anext"}`, true},
	{"surrogate pair", `{"a":["😀"]}`, `{"a":"\ud83d\ude00"}`, true},
	{"ip literal by address", `{"ip":["2001:db8::1"]}`, `{"ip":"2001:0db8:0:0::1"}`, true},
	{"ip literal other", `{"ip":["10.0.0.1"]}`, `{"ip":"10.0.0.2"}`, false},

	// Prefix and suffix.
	{"prefix", `{"a":[{"prefix":"us-"}]}`, `{"a":"us-east-1"}`, true},
	{"prefix miss", `{"a":[{"prefix":"us-"}]}`, `{"a":"eu-west-1"}`, false},
	{"prefix empty matches any string", `{"a":[{"prefix":""}]}`, `{"a":"anything"}`, true},
	{"prefix empty matches empty", `{"a":[{"prefix":""}]}`, `{"a":""}`, true},
	{"prefix never number", `{"a":[{"prefix":"1"}]}`, `{"a":123}`, false},
	{"prefix never null", `{"a":[{"prefix":"n"}]}`, `{"a":null}`, false},
	{"prefix longer than value", `{"a":[{"prefix":"abcd"}]}`, `{"a":"abc"}`, false},
	{"suffix", `{"a":[{"suffix":".png"}]}`, `{"a":"image.png"}`, true},
	{"suffix miss", `{"a":[{"suffix":".png"}]}`, `{"a":"image.jpg"}`, false},
	{"suffix never number", `{"a":[{"suffix":"3"}]}`, `{"a":123}`, false},
	{"prefix ignore case", `{"a":[{"prefix":{"equals-ignore-case":"EventB"}}]}`, `{"a":"eventbridge"}`, true},
	{"prefix ignore case miss", `{"a":[{"prefix":{"equals-ignore-case":"EventC"}}]}`, `{"a":"eventbridge"}`, false},
	{"suffix ignore case", `{"a":[{"suffix":{"equals-ignore-case":"tBridge"}}]}`, `{"a":"EVENTBRIDGE"}`, true},
	{"suffix ignore case non-ascii", `{"a":[{"suffix":{"equals-ignore-case":"ÉTÉ"}}]}`, `{"a":"l'été"}`, true},

	// Equals-ignore-case.
	{"ignore case", `{"a":[{"equals-ignore-case":"ec2 instance state-change notification"}]}`, ec2Event[:0] + `{"a":"EC2 Instance State-change Notification"}`, true},
	{"ignore case miss", `{"a":[{"equals-ignore-case":"abc"}]}`, `{"a":"abd"}`, false},
	{"ignore case empty only matches empty", `{"a":[{"equals-ignore-case":""}]}`, `{"a":"x"}`, false},
	{"ignore case empty matches empty", `{"a":[{"equals-ignore-case":""}]}`, `{"a":""}`, true},
	{"ignore case greek sigma", `{"a":[{"equals-ignore-case":"ΣΊΣΥΦΟΣ"}]}`, `{"a":"σίσυφος"}`, true},
	{"ignore case cyrillic", `{"a":[{"equals-ignore-case":"ПРИВЕТ"}]}`, `{"a":"привет"}`, true},
	{"ignore case kelvin sign", `{"a":[{"equals-ignore-case":"k"}]}`, `{"a":"\u212a"}`, true},
	{"ignore case not number", `{"a":[{"equals-ignore-case":"5"}]}`, `{"a":5}`, false},

	// Wildcards.
	{"wildcard suffix", `{"a":[{"wildcard":"*.png"}]}`, `{"a":"dir/file.png"}`, true},
	{"wildcard middle", `{"a":[{"wildcard":"Simple*Service"}]}`, `{"a":"SimpleStorageService"}`, true},
	{"wildcard empty star", `{"a":[{"wildcard":"Simple*Service"}]}`, `{"a":"SimpleService"}`, true},
	{"wildcard miss", `{"a":[{"wildcard":"Simple*Service"}]}`, `{"a":"SimpleStorage"}`, false},
	{"wildcard several", `{"a":[{"wildcard":"a*b*c"}]}`, `{"a":"axxbyyc"}`, true},
	{"wildcard order matters", `{"a":[{"wildcard":"a*b*c"}]}`, `{"a":"acb"}`, false},
	{"wildcard overlap", `{"a":[{"wildcard":"*ab*ab"}]}`, `{"a":"abab"}`, true},
	{"wildcard no star is exact", `{"a":[{"wildcard":"abc"}]}`, `{"a":"abc"}`, true},
	{"wildcard escaped star", `{"a":[{"wildcard":"a\\*b"}]}`, `{"a":"a*b"}`, true},
	{"wildcard escaped star not wild", `{"a":[{"wildcard":"a\\*b"}]}`, `{"a":"axb"}`, false},
	{"wildcard escaped backslash", `{"a":[{"wildcard":"a\\\\*"}]}`, `{"a":"a\\bc"}`, true},
	{"wildcard star alone", `{"a":[{"wildcard":"*"}]}`, `{"a":""}`, true},
	{"wildcard never number", `{"a":[{"wildcard":"*"}]}`, `{"a":1}`, false},
	{"wildcard newline", `{"a":[{"wildcard":"a*b"}]}`, `{"a":"a\nb"}`, true},
	{"wildcard non-ascii", `{"a":[{"wildcard":"é*ü"}]}`, `{"a":"éaü"}`, true},

	// Anything-but.
	{"anything-but string", `{"a":[{"anything-but":"initializing"}]}`, `{"a":"running"}`, true},
	{"anything-but string excluded", `{"a":[{"anything-but":"initializing"}]}`, `{"a":"initializing"}`, false},
	{"anything-but matches null", `{"a":[{"anything-but":"x"}]}`, `{"a":null}`, true},
	{"anything-but not missing", `{"a":[{"anything-but":"x"}]}`, `{"b":"y"}`, false},
	{"anything-but matches number", `{"a":[{"anything-but":"x"}]}`, `{"a":5}`, true},
	{"anything-but matches boolean", `{"a":[{"anything-but":"x"}]}`, `{"a":false}`, true},
	{"anything-but number", `{"a":[{"anything-but":123}]}`, `{"a":123}`, false},
	{"anything-but number by value", `{"a":[{"anything-but":123}]}`, `{"a":123.0}`, false},
	{"anything-but number other", `{"a":[{"anything-but":123}]}`, `{"a":124}`, true},
	{"anything-but number vs string", `{"a":[{"anything-but":123}]}`, `{"a":"123"}`, true},
	{"anything-but list", `{"a":[{"anything-but":["stopped","overloaded"]}]}`, `{"a":"stopped"}`, false},
	{"anything-but list passes", `{"a":[{"anything-but":["stopped","overloaded"]}]}`, `{"a":"running"}`, true},
	{"anything-but number list", `{"a":[{"anything-but":[100,200,300]}]}`, `{"a":200}`, false},
	{"anything-but number list passes", `{"a":[{"anything-but":[100,200,300]}]}`, `{"a":250}`, true},
	{"anything-but prefix", `{"a":[{"anything-but":{"prefix":"init"}}]}`, `{"a":"initializing"}`, false},
	{"anything-but prefix passes", `{"a":[{"anything-but":{"prefix":"init"}}]}`, `{"a":"running"}`, true},
	{"anything-but prefix number", `{"a":[{"anything-but":{"prefix":"1"}}]}`, `{"a":123}`, true},
	{"anything-but prefix list", `{"a":[{"anything-but":{"prefix":["init","error"]}}]}`, `{"a":"error-5"}`, false},
	{"anything-but suffix", `{"a":[{"anything-but":{"suffix":".png"}}]}`, `{"a":"x.png"}`, false},
	{"anything-but suffix passes", `{"a":[{"anything-but":{"suffix":".png"}}]}`, `{"a":"x.jpg"}`, true},
	{"anything-but suffix list", `{"a":[{"anything-but":{"suffix":[".png",".jpg"]}}]}`, `{"a":"x.jpg"}`, false},
	{"anything-but ignore case", `{"a":[{"anything-but":{"equals-ignore-case":"Stopped"}}]}`, `{"a":"STOPPED"}`, false},
	{"anything-but ignore case passes", `{"a":[{"anything-but":{"equals-ignore-case":"Stopped"}}]}`, `{"a":"running"}`, true},
	{"anything-but ignore case list", `{"a":[{"anything-but":{"equals-ignore-case":["x","Y"]}}]}`, `{"a":"y"}`, false},
	{"anything-but wildcard", `{"a":[{"anything-but":{"wildcard":"*/lib/*"}}]}`, `{"a":"/usr/lib/x"}`, false},
	{"anything-but wildcard passes", `{"a":[{"anything-but":{"wildcard":"*/lib/*"}}]}`, `{"a":"/usr/bin/x"}`, true},
	{"anything-but wildcard list", `{"a":[{"anything-but":{"wildcard":["*/lib/*","*/bin/*"]}}]}`, `{"a":"/usr/bin/x"}`, false},
	{"anything-but in array any element", `{"a":[{"anything-but":"x"}]}`, `{"a":["x","y"]}`, true},
	{"anything-but in array all excluded", `{"a":[{"anything-but":"x"}]}`, `{"a":["x","x"]}`, false},

	// Numeric.
	{"numeric range in", `{"a":[{"numeric":[">",0,"<=",5]}]}`, `{"a":5}`, true},
	{"numeric range out", `{"a":[{"numeric":[">",0,"<=",5]}]}`, `{"a":0}`, false},
	{"numeric equals float", `{"a":[{"numeric":["=",3.018e2]}]}`, `{"a":301.8}`, true},
	{"numeric int vs float", `{"a":[{"numeric":[">",100]}]}`, `{"a":101.0}`, true},
	{"numeric less", `{"a":[{"numeric":["<",10]}]}`, `{"a":-3}`, true},
	{"numeric less equal edge", `{"a":[{"numeric":["<=",10]}]}`, `{"a":10}`, true},
	{"numeric less edge", `{"a":[{"numeric":["<",10]}]}`, `{"a":10}`, false},
	{"numeric ge", `{"a":[{"numeric":[">=",1e3]}]}`, `{"a":1000}`, true},
	{"numeric not string", `{"a":[{"numeric":[">",0]}]}`, `{"a":"5"}`, false},
	{"numeric not null", `{"a":[{"numeric":[">",0]}]}`, `{"a":null}`, false},
	{"numeric big", `{"a":[{"numeric":[">",1e300]}]}`, `{"a":1e301}`, true},
	{"numeric in array", `{"a":[{"numeric":[">",10]}]}`, `{"a":[1,2,30]}`, true},

	// CIDR.
	{"cidr v4", `{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":"10.0.0.255"}`, true},
	{"cidr v4 out", `{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":"10.0.1.0"}`, false},
	{"cidr v4 not a string", `{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":10}`, false},
	{"cidr v4 not an ip", `{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":"10.0.0.x"}`, false},
	{"cidr v6", `{"ip":[{"cidr":"2001:db8:1234:1a00::/64"}]}`, `{"ip":"2001:db8:1234:1a00::1"}`, true},
	{"cidr v6 out", `{"ip":[{"cidr":"2001:db8:1234:1a00::/64"}]}`, `{"ip":"2001:db8:1234:1a01::1"}`, false},
	{"cidr v6 vs v4", `{"ip":[{"cidr":"::/0"}]}`, `{"ip":"10.0.0.1"}`, false},
	{"cidr starts at the address given", `{"ip":[{"cidr":"10.0.0.5/24"}]}`, `{"ip":"10.0.0.4"}`, false},
	{"cidr starts at the address given in", `{"ip":[{"cidr":"10.0.0.5/24"}]}`, `{"ip":"10.0.0.6"}`, true},
	{"cidr mapped v6 event", `{"ip":[{"cidr":"10.0.0.0/8"}]}`, `{"ip":"::ffff:a00:1"}`, true},

	// Exists.
	{"exists true", `{"a":[{"exists":true}]}`, `{"a":"x"}`, true},
	{"exists true null", `{"a":[{"exists":true}]}`, `{"a":null}`, true},
	{"exists true missing", `{"a":[{"exists":true}]}`, `{"b":"x"}`, false},
	{"exists true empty array", `{"a":[{"exists":true}]}`, `{"a":[]}`, false},
	{"exists true object is not a leaf", `{"a":[{"exists":true}]}`, `{"a":{"b":1}}`, false},
	{"exists false missing", `{"a":[{"exists":false}]}`, `{"b":"x"}`, true},
	{"exists false present", `{"a":[{"exists":false}]}`, `{"a":"x"}`, false},
	{"exists false null present", `{"a":[{"exists":false}]}`, `{"a":null}`, false},
	{"exists false object", `{"a":[{"exists":false}]}`, `{"a":{"b":1}}`, true},
	{"exists false empty array", `{"a":[{"exists":false}]}`, `{"a":[]}`, true},
	{"exists false nested", `{"detail":{"c":[{"exists":false}]},"source":["s"]}`, `{"source":"s","detail":{"d":1}}`, true},
	{"exists false with other field failing", `{"detail":{"c":[{"exists":false}]},"source":["s"]}`, `{"source":"t","detail":{"d":1}}`, false},
	{"exists false or value", `{"a":[{"exists":false},"x"]}`, `{"a":"x"}`, true},
	{"exists false or value missing", `{"a":[{"exists":false},"x"]}`, `{}`, true},
	{"exists false or value other", `{"a":[{"exists":false},"x"]}`, `{"a":"y"}`, false},

	// Several matchers in one list, and fields ANDed.
	{"list ORed exists", `{"k":[{"exists":true},{"prefix":"X"},{"suffix":"Y"}]}`, `{"k":"abc"}`, true},
	{"list ORed prefix", `{"k":[{"prefix":"X"},{"suffix":"Y"}]}`, `{"k":"Xa"}`, true},
	{"list ORed none", `{"k":[{"prefix":"X"},{"suffix":"Y"}]}`, `{"k":"aXa"}`, false},
	{"fields ANDed", `{"a":["1"],"b":["2"]}`, `{"a":"1","b":"3"}`, false},
	{"empty event", `{"a":["1"]}`, `{}`, false},

	// Arrays in events.
	{"array any element", `{"a":["y"]}`, `{"a":["x","y","z"]}`, true},
	{"array no element", `{"a":["w"]}`, `{"a":["x","y"]}`, false},
	{"array intersection", `{"a":["w","y"]}`, `{"a":["x","y"]}`, true},
	{"nested arrays", `{"a":[3]}`, `{"a":[[1,2],[3]]}`, true},
	{"array of objects flattened", `{"a":{"b":[2]}}`, `{"a":[{"b":1},{"b":2}]}`, true},
	{"array consistent same element", `{"a":{"b":[1],"c":[2]}}`, `{"a":[{"b":1,"c":2},{"b":3,"c":4}]}`, true},
	{"array consistent different elements", `{"a":{"b":[1],"c":[4]}}`, `{"a":[{"b":1,"c":2},{"b":3,"c":4}]}`, false},
	{"array consistent across nesting", `{"a":{"b":{"c":[1]},"d":[2]}}`, `{"a":[{"b":[{"c":1}],"d":2}]}`, true},
	{"array consistent nested different", `{"a":{"b":{"c":[1]},"d":[2]}}`, `{"a":[{"b":[{"c":1}],"d":3},{"d":2}]}`, false},
	{"two arrays independent", `{"a":{"x":[1]},"b":{"y":[2]}}`, `{"a":[{"x":0},{"x":1}],"b":[{"y":2}]}`, true},
	{"field outside array", `{"a":{"b":[1]},"c":[2]}`, `{"a":[{"b":0},{"b":1}],"c":2}`, true},
	{"exists false array consistent", `{"a":{"b":[1],"c":[{"exists":false}]}}`, `{"a":[{"b":1},{"b":2,"c":3}]}`, true},
	{"exists false array consistent same element", `{"a":{"b":[1],"c":[{"exists":false}]}}`, `{"a":[{"b":1,"c":3}]}`, false},

	// Dotted keys.
	{"dotted pattern key", `{"detail":{"state.status":["running"]}}`, `{"detail":{"state":{"status":"running"}}}`, true},
	{"dotted event key", `{"detail":{"state":{"status":["running"]}}}`, `{"detail":{"state.status":"running"}}`, true},
	{"dotted both", `{"detail.state":["x"]}`, `{"detail.state":"x"}`, true},
	{"empty key is a name", `{"":{"b":[1]}}`, `{"":{"b":1}}`, true},
	{"empty key is not the top", `{"":{"b":[1]}}`, `{"b":1}`, false},
	{"dotted partial", `{"detail":{"sta":["x"]}}`, `{"detail":{"state":"x"}}`, false},
	{"duplicate keys last wins", `{"a":["x"],"a":["y"]}`, `{"a":"y"}`, true},
	{"duplicate keys earlier lost", `{"a":["x"],"a":["y"]}`, `{"a":"x"}`, false},

	// $or.
	{"or first", `{"$or":[{"a":[1]},{"b":[2]}]}`, `{"a":1}`, true},
	{"or second", `{"$or":[{"a":[1]},{"b":[2]}]}`, `{"b":2}`, true},
	{"or neither", `{"$or":[{"a":[1]},{"b":[2]}]}`, `{"c":3}`, false},
	{"or with and", `{"source":["s"],"$or":[{"a":[1]},{"b":[2]}]}`, `{"source":"t","a":1}`, false},
	{"or nested", `{"$or":[{"a":[1]},{"$or":[{"b":[2]},{"c":[3]}]}]}`, `{"c":3}`, true},
	{"or in detail", `{"detail":{"$or":[{"c-count":[{"numeric":[">",0,"<=",5]}]},{"d-count":[{"numeric":["<",10]}]}]}}`, `{"detail":{"d-count":3}}`, true},
	{"or overrides outer", `{"a":[1],"$or":[{"a":[2]},{"b":[3]}]}`, `{"a":2}`, true},
	{"or two ors multiply", `{"$or":[{"a":[1]},{"a":[2]}],"x":{"$or":[{"b":[1]},{"b":[2]}]}}`, `{"a":2,"x":{"b":1}}`, true},
	{"dollar or as field in value", `{"a":["$or"]}`, `{"a":"$or"}`, true},
}

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range matchCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(tc.pattern)
			if err != nil {
				t.Fatalf("Compile(%s): %v", tc.pattern, err)
			}
			got, err := p.Match([]byte(tc.event))
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != tc.want {
				t.Errorf("Match(%s, %s) = %v, want %v", tc.pattern, tc.event, got, tc.want)
			}
			ref, err := refMatch([]byte(tc.pattern), []byte(tc.event))
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			if ref != tc.want {
				t.Errorf("reference(%s, %s) = %v, want %v", tc.pattern, tc.event, ref, tc.want)
			}
		})
	}
}

// invalidCases pairs invalid patterns with the start of AWS's reason.
var invalidCases = []struct {
	pattern string
	reason  string
}{
	{`"string"`, `Filter is not an object`},
	{`[1]`, `Filter is not an object`},
	{`{"a":"string"}`, `"a" must be an object or an array`},
	{`{"a":1}`, `"a" must be an object or an array`},
	{`{"a":[]}`, `Empty arrays are not allowed`},
	{`{}`, `Empty objects are not allowed`},
	{`{"a":{}}`, `Empty objects are not allowed`},
	{`{"a":[[1]]}`, `Match value must be String, number, true, false, or null`},
	{`{"a":[{}]}`, `Match expression name not found`},
	{`{"a":[{"NUMERIC":[">",1]}]}`, `Unrecognized match type NUMERIC`},
	{`{"a":[{"regex":"x"}]}`, `Unrecognized match type regex`},
	{`{"a":[{"prefix":"a","suffix":"b"}]}`, `Only one key allowed in match expression`},
	{`{"a":[{"prefix":1}]}`, `prefix match pattern must be a string`},
	{`{"a":[{"prefix":null}]}`, `prefix match pattern must be a string`},
	{`{"a":[{"prefix":{"x":"a"}}]}`, `Unsupported prefix pattern: x`},
	{`{"a":[{"prefix":{}}]}`, `Prefix expression name not found`},
	{`{"a":[{"prefix":{"equals-ignore-case":1}}]}`, `equals-ignore-case match pattern must be a string`},
	{`{"a":[{"suffix":true}]}`, `suffix match pattern must be a string`},
	{`{"a":[{"suffix":{"y":"a"}}]}`, `Unsupported suffix pattern: y`},
	{`{"a":[{"equals-ignore-case":5}]}`, `equals-ignore-case match pattern must be a string`},
	{`{"a":[{"wildcard":5}]}`, `wildcard match pattern must be a string`},
	{`{"a":[{"wildcard":"abc**"}]}`, `Consecutive wildcard characters at pos 4`},
	{`{"a":[{"wildcard":"a\\b"}]}`, `Invalid escape character at pos 2`},
	{`{"a":[{"wildcard":"ab\\"}]}`, `Invalid escape character at pos 3`},
	{`{"a":[{"exactly":1}]}`, `exact match pattern must be a string`},
	{`{"a":[{"exists":"yes"}]}`, `exists match pattern must be either true or false.`},
	{`{"a":[{"exists":true,"x":1}]}`, `Only one key allowed in match expression`},
	{`{"a":[{"numeric":">"}]}`, `Value of numeric must be an array.`},
	{`{"a":[{"numeric":[]}]}`, `Invalid member in numeric match: ]`},
	{`{"a":[{"numeric":[1,">"]}]}`, `Invalid member in numeric match: 1`},
	{`{"a":[{"numeric":["!",1]}]}`, `Unrecognized numeric range operator: !`},
	{`{"a":[{"numeric":["<","x"]}]}`, `Value of < must be numeric`},
	{`{"a":[{"numeric":["<"]}]}`, `Value of < must be numeric`},
	{`{"a":[{"numeric":["=","x"]}]}`, `Value of equals must be numeric`},
	{`{"a":[{"numeric":["<",1,">",0]}]}`, `Too many elements in numeric expression`},
	{`{"a":[{"numeric":["=",1,"<",0]}]}`, `Too many elements in numeric expression`},
	{`{"a":[{"numeric":[">",0,">",5]}]}`, `Bad numeric range operator: >`},
	{`{"a":[{"numeric":[">",0,5]}]}`, `Bad value in numeric range: 5`},
	{`{"a":[{"numeric":[">",0,"<","x"]}]}`, `Value of < must be numeric`},
	{`{"a":[{"numeric":[">",5,"<",1]}]}`, `Bottom must be less than top`},
	{`{"a":[{"numeric":[">",0,"<",5,"<",6]}]}`, `Too many terms in numeric range expression`},
	{`{"a":[{"numeric":[">",0],"x":1}]}`, `Too many elements in numeric expression`},
	{`{"a":[{"anything-but":true}]}`, `Value of anything-but must be an array or single string/number value.`},
	{`{"a":[{"anything-but":null}]}`, `Value of anything-but must be an array or single string/number value.`},
	{`{"a":[{"anything-but":[null]}]}`, `Inside anything but list, start|null|boolean is not supported.`},
	{`{"a":[{"anything-but":["a",1]}]}`, `Inside anything but list, either all values are number or string, mixed type is not supported`},
	{`{"a":[{"anything-but":[]}]}`, `Inside anything but list, either all values are number or string, mixed type is not supported`},
	{`{"a":[{"anything-but":{"regex":"x"}}]}`, `Unsupported anything-but pattern: regex`},
	{`{"a":[{"anything-but":{}}]}`, `Anything-But expression name not found`},
	{`{"a":[{"anything-but":{"prefix":""}}]}`, `Null prefix/suffix not allowed`},
	{`{"a":[{"anything-but":{"suffix":["x",""]}}]}`, `Null prefix/suffix not allowed`},
	{`{"a":[{"anything-but":{"prefix":1}}]}`, `prefix/suffix match pattern must be a string`},
	{`{"a":[{"anything-but":{"prefix":{"equals-ignore-case":"x"}}}]}`, `Value of anything-but must be an array or single string/number value.`},
	{`{"a":[{"anything-but":{"equals-ignore-case":1}}]}`, `Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.`},
	{`{"a":[{"anything-but":{"equals-ignore-case":[1]}}]}`, `Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.`},
	{`{"a":[{"anything-but":{"wildcard":["a**b"]}}]}`, `Consecutive wildcard characters at pos 2`},
	{`{"a":[{"anything-but":{"wildcard":1}}]}`, `wildcard match pattern must be a string`},
	{`{"a":[{"anything-but":{"prefix":"a","suffix":"b"}}]}`, `Too many elements in numeric expression`},
	{`{"a":[{"cidr":1}]}`, `prefix match pattern must be a string`},
	{`{"a":[{"cidr":"10.0.0.0"}]}`, `Malformed CIDR, one '/' required`},
	{`{"a":[{"cidr":"10.0.0.0/"}]}`, `Malformed CIDR, one '/' required`},
	{`{"a":[{"cidr":"10.0.0.0/x"}]}`, `Malformed CIDR, mask bits must be an integer`},
	{`{"a":[{"cidr":"10.0.0.0/-1"}]}`, `Malformed CIDR, mask bits must not be negative`},
	{`{"a":[{"cidr":"xx.11.xx/24"}]}`, `Nonstandard IP address: xx.11.xx`},
	{`{"a":[{"cidr":"999.0.0.0/24"}]}`, `Invalid IP address: 999.0.0.0`},
	{`{"a":[{"cidr":"10.0.0.0/32"}]}`, `IPv4 mask bits must be < 32`},
	{`{"a":[{"cidr":"::/128"}]}`, `IPv6 mask bits must be < 128`},
	{`{"$or":{"a":[1]}}`, `It must be an Array followed with $or.`},
	{`{"$or":[{"a":[1]}]}`, `There must have at least 2 Objects in $or relationship.`},
	{`{"$or":[]}`, `There must have at least 2 Objects in $or relationship.`},
	{`{"$or":[{"a":[1]},"b"]}`, `Only JSON object is allowed in array of $or relationship.`},
	{`{"$or":[{"a":[1]},{}]}`, `Empty objects are not allowed`},
	{`{"$or":[{"a":[1]},{"prefix":["x"]}]}`, `prefix is Ruler reserved fieldName which cannot be used inside $or.`},
	{`{"a":[{"wildcard":"*a*a*a*a*a*a*a*a*a*a*a*a*"}]}`, `Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character`},
	{`{this}`, `Unexpected character ('t' (code 116)): was expecting double-quote to start field name`},
	{`{"a": this}`, `Unrecognized token 'this': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')`},
	{`{"a":["x"]`, `Unexpected end-of-input: expected close marker for Object`},
	{`{"a":["x"]} extra`, `Unexpected character ('e' (code 101)): expected end-of-input`},
	{`{"a":[01]}`, `Invalid numeric value: Leading zeroes not allowed`},
	{`{"a":["\x"]}`, `Unrecognized character escape 'x' (code 120)`},
	{"{\"a\":[\"\x01\"]}", `Illegal unquoted character ((CTRL-CHAR, code 1)): has to be escaped using backslash to be included in string value`},
	{``, `No content to map due to end-of-input`},
}

func TestInvalidPatterns(t *testing.T) {
	t.Parallel()
	for _, tc := range invalidCases {
		t.Run(tc.pattern, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(tc.pattern)
			if err == nil {
				t.Fatalf("Compile(%s) succeeded with %d alternatives", tc.pattern, p.nalts)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not *Error", err)
			}
			if !strings.HasPrefix(perr.Reason, tc.reason) {
				t.Errorf("reason = %q, want prefix %q", perr.Reason, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "Event pattern is not valid. Reason: ") {
				t.Errorf("message = %q", err.Error())
			}
		})
	}
}

func TestErrorLocation(t *testing.T) {
	t.Parallel()
	_, err := Compile("{\n  \"detail\": {\n    \"slug\": \"some-pipeline\"\n  }\n}")
	want := "Event pattern is not valid. Reason: \"slug\" must be an object or an array\n at [Source: (String)\"{\n  \"detail\": {\n    \"slug\": \"some-pipeline\"\n  }\n}\"; line: 3, column: 28]"
	if err == nil || err.Error() != want {
		t.Errorf("got %q\nwant %q", err, want)
	}
	long := `{"a":[` + strings.Repeat(`"x",`, 200) + `{"bad":1}]}`
	_, err = Compile(long)
	if err == nil || !strings.Contains(err.Error(), `"[truncated 317 chars]; line: 1, column: 813]`) {
		t.Errorf("long pattern: %v", err)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	long := `{"a":["` + strings.Repeat("x", 2100) + `"]}`
	if _, err := Compile(long); err == nil || !strings.Contains(err.Error(), "the maximum is 2048") {
		t.Errorf("default length limit: %v", err)
	}
	if _, err := CompileWithLimits(long, Limits{MaxLength: APIMaxLength}); err != nil {
		t.Errorf("with the API limit: %v", err)
	}
	// Length counts characters, not bytes.
	wide := `{"a":["` + strings.Repeat("é", 2030) + `"]}`
	if _, err := Compile(wide); err != nil {
		t.Errorf("2040 characters in %d bytes: %v", len(wide), err)
	}

	// 10 x 10 x 10 = 1000 combinations are allowed; 1001 are not.
	or := func(field string, n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `{"` + field + `":[` + strings.Repeat("1", i+1) + `]}`
		}
		return `{"$or":[` + strings.Join(parts, ",") + `]}`
	}
	three := `{"x":` + or("a", 10) + `,"y":` + or("b", 10) + `,"z":` + or("c", 10) + `}`
	p, err := CompileWithLimits(three, Limits{MaxLength: 10000})
	if err != nil {
		t.Fatalf("1000 combinations: %v", err)
	}
	if p.nalts != 1000 {
		t.Errorf("alternatives = %d, want 1000", p.nalts)
	}
	over := `{"w":{"$or":[{"q":[1]},{"q":[2]}]},"x":` + or("a", 10) + `,"y":` + or("b", 10) + `,"z":` + or("c", 10) + `}`
	if _, err := CompileWithLimits(over, Limits{MaxLength: 10000}); err == nil || !strings.Contains(err.Error(), "more than 1000 combinations") {
		t.Errorf("2000 combinations: %v", err)
	}
	if _, err := CompileWithLimits(three, Limits{MaxLength: 10000, MaxCombinations: 999}); err == nil {
		t.Errorf("a lower combination limit is not applied")
	}
}

func TestComplexity(t *testing.T) {
	t.Parallel()
	cases := []struct {
		wildcards []string
		want      int
	}{
		{[]string{"abc"}, 1},
		{[]string{"*.png"}, 3},
		{[]string{"a*b*c"}, 5},
		{[]string{"*a*a*a*"}, 8},
		{[]string{"*.tiff", "*.tif", "*.svs"}, 9},
		{[]string{"*.tiff", "*.tif", "*.svs", "*.jpg"}, 10}, // capped
	}
	for _, tc := range cases {
		var ops []string
		for _, w := range tc.wildcards {
			ops = append(ops, `{"wildcard":"`+w+`"}`)
		}
		src := `{"f":[` + strings.Join(ops, ",") + `]}`
		p, err := CompileWithLimits(src, Limits{MaxComplexity: 9})
		got := 10
		if err == nil {
			got = p.Complexity()
		}
		if got != tc.want {
			t.Errorf("%v: complexity %d (err %v), want %d", tc.wildcards, got, err, tc.want)
		}
	}
	// The user-reported pattern AWS refuses as too complex.
	if _, err := Compile(`{"detail":{"key":[{"wildcard":"datasync/*.tiff"},{"wildcard":"datasync/*.tif"},{"wildcard":"datasync/*.svs"},{"wildcard":"*.jpg"}]}}`); err == nil {
		t.Errorf("four wildcard suffixes accepted")
	}
}

func TestMalformedEvents(t *testing.T) {
	t.Parallel()
	p, err := Compile(`{"a":{"b":[1]}}`)
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{
		``, ` `, `[]`, `"x"`, `1`, `{`, `{"a"`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a":[1,]}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":01}`, `{"a":"x\q"}`,
		`{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":"unterminated}`, `{"a":{"b":1}} x`, `{a:1}`,
		`{"z":[1,2}`, `{"z":{"y":[}}`,
		strings.Repeat(`{"a":`, 1001) + `1` + strings.Repeat(`}`, 1001),
		strings.Repeat(`{"z":`, 1001) + `1` + strings.Repeat(`}`, 1001),
	}
	for _, ev := range bad {
		if _, err := p.Match([]byte(ev)); err == nil {
			t.Errorf("Match(%.40q) succeeded", ev)
		} else if _, ok := err.(*EventError); !ok {
			t.Errorf("Match(%.40q): error %T", ev, err)
		}
	}
	deep := strings.Repeat(`{"a":`, 1000) + `1` + strings.Repeat(`}`, 1000)
	if _, err := p.Match([]byte(deep)); err != nil {
		t.Errorf("1000 levels: %v", err)
	}
}

func TestCheckEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		event string
		ok    bool
	}{
		{`{}`, true},
		{`{"a":[1,{"b":null}],"c":"\u00e9"}`, true},
		{`[]`, false},
		{`{"a":}`, false},
		{`{"a":1}x`, false},
		{strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000), true},
		{strings.Repeat(`{"a":`, 1001) + "1" + strings.Repeat("}", 1001), false},
	} {
		err := CheckEvent([]byte(tc.event))
		if (err == nil) != tc.ok {
			t.Errorf("CheckEvent(%.40s) = %v, want ok=%v", tc.event, err, tc.ok)
		}
	}
}

// TestPathLookup checks the trie's field-name lookup, perfect hash or not,
// on names that share signatures, the empty name and dotted names.
func TestPathLookup(t *testing.T) {
	t.Parallel()
	sets := [][]string{
		{"a"},
		{"", "a", "ab", "abc"},
		{"source", "detail-type", "detail", "detail.x"},
		{"axb", "ayb", "azb", "a.b", "a"},
		{"aXcdeYf", "aYcdeXf", "aXcdeYfg", "b.c", "b"}, // the same signature
	}
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("f%d", i))
	}
	sets = append(sets, many, many[:60])
	for _, keys := range sets {
		tr := newPathTrie()
		for _, k := range keys {
			tr.id(k)
		}
		tr.root.finish()
		for _, k := range keys {
			want := tr.ids[k]
			c := tr.root.child([]byte(k))
			if c == nil || c.leaf != want {
				t.Errorf("keys %q: child(%q) = %v, want leaf %d", keys, k, c, want)
			}
		}
		for _, k := range []string{"", "z", "ax", "axc", "aZcdeZf", "f200", "detail.y", "sourcf", "a.c"} {
			if _, ok := tr.ids[k]; ok {
				continue
			}
			if c := tr.root.child([]byte(k)); c != nil && c.leaf >= 0 {
				t.Errorf("keys %q: child(%q) found leaf %d", keys, k, c.leaf)
			}
		}
	}
}
