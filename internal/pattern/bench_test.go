package pattern

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// The benchmark corpus: realistic events of about 1 KB (an EventBridge
// envelope around an order, with nested objects, arrays, numbers, IP
// addresses and timestamps) and rule sets of mixed operators over the same
// vocabulary, so that some rules match each event.

var (
	benchSources = []string{"com.shop.orders", "com.shop.payments", "com.shop.inventory", "com.shop.shipping", "com.shop.users",
		"aws.ec2", "aws.s3", "aws.rds", "com.partner.alpha", "com.partner.beta"}
	benchTypes = []string{"OrderPlaced", "OrderCancelled", "OrderShipped", "PaymentAuthorized", "PaymentFailed",
		"StockLow", "UserSignedUp", "UserDeleted", "RefundIssued", "ParcelDelivered"}
	benchStatus    = []string{"pending", "confirmed", "shipped", "delivered", "cancelled", "failed", "refunded"}
	benchCountries = []string{"US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "AU", "NL", "SE", "ES"}
	benchTiers     = []string{"free", "silver", "gold", "platinum"}
	benchRegions   = []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"}
	benchCurrency  = []string{"USD", "EUR", "GBP", "JPY", "BRL"}
	benchDomains   = []string{"example.com", "mail.example.org", "corp.example.net", "shop.example.io"}
	benchChannels  = []string{"web", "ios", "android", "pos", "api"}
)

func oneOf(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }

// benchEvent returns one ~1 KB event.
func benchEvent(r *rand.Rand) []byte {
	var items []string
	for range 2 + r.IntN(3) {
		items = append(items, fmt.Sprintf(`{"sku":"SKU-%s-%04d","qty":%d,"price":%d.%02d,"warehouse":{"id":"wh-%d","zone":"%s"}}`,
			oneOf(r, []string{"BOOK", "TOY", "ELEC", "HOME", "FOOD"}), r.IntN(10000), 1+r.IntN(5), r.IntN(500), r.IntN(100), r.IntN(20), oneOf(r, benchRegions)))
	}
	return []byte(fmt.Sprintf(`{"version":"0","id":"%08x-%04x-%04x-%04x-%012x","detail-type":%q,"source":%q,"account":"%012d",`+
		`"time":"2026-11-%02dT%02d:%02d:%02dZ","region":%q,"resources":["arn:aws:shop:%s:%012d:order/%d"],`+
		`"detail":{"orderId":"ord-%d","status":%q,"total":%d.%02d,"currency":%q,"channel":%q,`+
		`"customer":{"id":"cus-%d","tier":%q,"email":"user%d@%s","country":%q,"vip":%v,"age":%d},`+
		`"items":[%s],"sourceIPAddress":"%d.%d.%d.%d","retries":%d,"tags":["%s","%s"],"notes":null}}`,
		r.Uint32(), r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16), r.Int64N(1<<48),
		oneOf(r, benchTypes), oneOf(r, benchSources), r.Int64N(1e12),
		1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), oneOf(r, benchRegions), oneOf(r, benchRegions), r.Int64N(1e12), r.IntN(1e6),
		r.IntN(1e6), oneOf(r, benchStatus), r.IntN(2000), r.IntN(100), oneOf(r, benchCurrency), oneOf(r, benchChannels),
		r.IntN(1e6), oneOf(r, benchTiers), r.IntN(1e5), oneOf(r, benchDomains), oneOf(r, benchCountries), r.IntN(2) == 0, 18+r.IntN(60),
		strings.Join(items, ","), []int{10, 172, 192, 52}[r.IntN(4)], r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(4),
		oneOf(r, benchChannels), oneOf(r, benchTiers)))
}

// benchRule returns one rule of mixed operators. Every rule names a source
// and most a detail-type, as real rules do; then one to three conditions on
// the detail, drawn from every operator. withWildcard allows the wildcard
// operator, which AWS limits to 30 rules per bus.
func benchRule(r *rand.Rand, withWildcard bool) string {
	conds := []string{}
	switch r.IntN(4) {
	case 0:
		src := oneOf(r, benchSources)
		conds = append(conds, fmt.Sprintf(`"source":[{"prefix":%q}]`, src[:min(8, len(src))]))
	default:
		conds = append(conds, fmt.Sprintf(`"source":[%q]`, oneOf(r, benchSources)))
	}
	switch r.IntN(5) {
	case 0:
	case 1:
		conds = append(conds, fmt.Sprintf(`"detail-type":[{"equals-ignore-case":%q}]`, strings.ToLower(oneOf(r, benchTypes))))
	default:
		conds = append(conds, fmt.Sprintf(`"detail-type":[%q,%q]`, oneOf(r, benchTypes), oneOf(r, benchTypes)))
	}
	var detail []string
	for range 1 + r.IntN(3) {
		var c string
		switch r.IntN(12) {
		case 0:
			c = fmt.Sprintf(`"status":[%q]`, oneOf(r, benchStatus))
		case 1:
			c = fmt.Sprintf(`"status":[{"anything-but":[%q,%q]}]`, oneOf(r, benchStatus), oneOf(r, benchStatus))
		case 2:
			lo := r.IntN(1500)
			c = fmt.Sprintf(`"total":[{"numeric":[">=",%d,"<",%d]}]`, lo, lo+1+r.IntN(500))
		case 3:
			c = fmt.Sprintf(`"customer":{"country":[%q,%q,%q]}`, oneOf(r, benchCountries), oneOf(r, benchCountries), oneOf(r, benchCountries))
		case 4:
			c = fmt.Sprintf(`"customer":{"tier":[%q],"vip":[true]}`, oneOf(r, benchTiers))
		case 5:
			c = fmt.Sprintf(`"sourceIPAddress":[{"cidr":"%d.%d.0.0/16"}]`, []int{10, 172, 192, 52}[r.IntN(4)], r.IntN(256))
		case 6:
			c = fmt.Sprintf(`"items":{"sku":[{"prefix":"SKU-%s"}]}`, oneOf(r, []string{"BOOK", "TOY", "ELEC", "HOME", "FOOD"}))
		case 7:
			c = fmt.Sprintf(`"customer":{"email":[{"suffix":"@%s"}]}`, oneOf(r, benchDomains))
		case 8:
			c = fmt.Sprintf(`"currency":[{"anything-but":{"prefix":%q}}]`, oneOf(r, benchCurrency)[:1])
		case 9:
			c = `"notes":[null],"coupon":[{"exists":false}]`
		case 10:
			c = fmt.Sprintf(`"items":{"qty":[{"numeric":[">",%d]}],"warehouse":{"zone":[%q]}}`, r.IntN(5), oneOf(r, benchRegions))
		default:
			if withWildcard {
				c = fmt.Sprintf(`"customer":{"email":[{"wildcard":"user*@%s"}]}`, oneOf(r, benchDomains))
			} else {
				c = fmt.Sprintf(`"channel":[%q]`, oneOf(r, benchChannels))
			}
		}
		detail = append(detail, c)
	}
	if r.IntN(10) == 0 {
		detail = append(detail, fmt.Sprintf(`"$or":[{"channel":[%q]},{"customer":{"age":[{"numeric":["<",%d]}]}}]`, oneOf(r, benchChannels), 20+r.IntN(40)))
	}
	conds = append(conds, `"detail":{`+strings.Join(detail, ",")+`}`)
	return "{" + strings.Join(conds, ",") + "}"
}

// benchMatcher builds a matcher of n rules, at most 30 of them with
// wildcards, as AWS's quota allows per bus.
func benchMatcher(tb testing.TB, n int) *Matcher {
	r := rand.New(rand.NewPCG(42, uint64(n)))
	rules := make(map[string]*Pattern, n)
	wild := 0
	for i := range n {
		src := benchRule(r, wild < 30)
		p, err := CompileWithLimits(src, Limits{MaxLength: APIMaxLength})
		if err != nil {
			tb.Fatalf("rule %s: %v", src, err)
		}
		if p.HasWildcard() {
			wild++
		}
		rules[fmt.Sprintf("rule-%05d", i)] = p
	}
	m := NewMatcher()
	m.Replace(rules)
	return m
}

func benchEvents(n int) ([][]byte, int) {
	r := rand.New(rand.NewPCG(7, 7))
	events := make([][]byte, n)
	total := 0
	for i := range events {
		events[i] = benchEvent(r)
		total += len(events[i])
	}
	return events, total / n
}

// BenchmarkMatch matches the event corpus against rule sets of 1 to 10,000
// rules. Run it on one core: go test -bench Match -cpu 1 ./internal/pattern
func BenchmarkMatch(b *testing.B) {
	events, avg := benchEvents(1024)
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			m := benchMatcher(b, n)
			var dst []string
			matched := 0
			b.SetBytes(int64(avg))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				var err error
				dst, err = m.AppendMatches(dst[:0], events[i%len(events)])
				if err != nil {
					b.Fatal(err)
				}
				matched += len(dst)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(matched)/float64(b.N), "matches/event")
		})
	}
}

// BenchmarkFlatten measures scanning events for the fields 1,000 rules use.
func BenchmarkFlatten(b *testing.B) {
	events, avg := benchEvents(1024)
	m := benchMatcher(b, 1000).cur.Load()
	var f flatEvent
	b.SetBytes(int64(avg))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.reset(events[i%len(events)], m.npaths)
		if err := f.flatten(m.trie.root); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile measures parsing and validating one rule.
func BenchmarkCompile(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	srcs := make([]string, 256)
	for i := range srcs {
		srcs[i] = benchRule(r, true)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := CompileWithLimits(srcs[i%len(srcs)], Limits{MaxLength: APIMaxLength}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild measures building the machine for a whole rule set, which
// every Add, Delete and Replace does.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			m := benchMatcher(b, n)
			b.ReportAllocs()
			for b.Loop() {
				m.Replace(m.rules)
			}
		})
	}
}

func TestBenchCorpus(t *testing.T) {
	t.Parallel()
	events, avg := benchEvents(64)
	if avg < 800 || avg > 1300 {
		t.Errorf("average event size %d bytes, want about 1 KB", avg)
	}
	m := benchMatcher(t, 1000)
	matched := 0
	for _, ev := range events {
		got, err := m.Match(ev)
		if err != nil {
			t.Fatal(err)
		}
		matched += len(got)
	}
	if matched == 0 {
		t.Errorf("no rule matched any event: the corpus does not exercise matching")
	}
}
