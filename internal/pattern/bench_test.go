package pattern

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The benchmark corpus: realistic events of about 1 KB (an EventBridge
// envelope around an order, with nested objects, arrays, numbers, IP
// addresses and timestamps) and rule sets of mixed operators over the same
// vocabulary.
//
// Two vocabularies. In the tenant corpus (BenchmarkMatch) events come from
// 1,000 sources, 100 tenants with 10 services each, and rules are written
// for one source or one tenant, so that a bus with more rules routes more
// kinds of events, as real buses do: a handful of rules match each event at
// 10,000 rules. In the dense corpus (BenchmarkMatchDense) there are only 10
// sources, so every rule is relevant to a tenth of all events and the number
// of matches grows with the number of rules: the worst case.

var (
	benchServices = []string{"orders", "payments", "inventory", "shipping", "users",
		"billing", "catalog", "search", "reviews", "returns"}
	benchDenseSources = []string{"com.shop.orders", "com.shop.payments", "com.shop.inventory", "com.shop.shipping", "com.shop.users",
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
	benchSKUs      = []string{"BOOK", "TOY", "ELEC", "HOME", "FOOD"}
	benchNets      = []int{10, 172, 192, 52}
)

func oneOf[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

// vocabulary says where events come from and how rules name them.
type vocabulary struct {
	source func(r *rand.Rand) string // a source of an event or rule
	prefix func(r *rand.Rand) string // a source prefix for a rule
}

var (
	tenantVocabulary = vocabulary{
		source: func(r *rand.Rand) string { return fmt.Sprintf("com.t%03d.%s", r.IntN(100), oneOf(r, benchServices)) },
		prefix: func(r *rand.Rand) string { return fmt.Sprintf("com.t%03d.", r.IntN(100)) },
	}
	denseVocabulary = vocabulary{
		source: func(r *rand.Rand) string { return oneOf(r, benchDenseSources) },
		prefix: func(r *rand.Rand) string { s := oneOf(r, benchDenseSources); return s[:min(8, len(s))] },
	}
)

// benchEvent returns one ~1 KB event.
func benchEvent(r *rand.Rand, v vocabulary) []byte {
	var items []string
	for range 2 + r.IntN(3) {
		items = append(items, fmt.Sprintf(`{"sku":"SKU-%s-%04d","qty":%d,"price":%d.%02d,"warehouse":{"id":"wh-%d","zone":"%s"}}`,
			oneOf(r, benchSKUs), r.IntN(10000), 1+r.IntN(5), r.IntN(500), r.IntN(100), r.IntN(20), oneOf(r, benchRegions)))
	}
	return []byte(fmt.Sprintf(`{"version":"0","id":"%08x-%04x-%04x-%04x-%012x","detail-type":%q,"source":%q,"account":"%012d",`+
		`"time":"2026-11-%02dT%02d:%02d:%02dZ","region":%q,"resources":["arn:aws:shop:%s:%012d:order/%d"],`+
		`"detail":{"orderId":"ord-%d","status":%q,"total":%d.%02d,"currency":%q,"channel":%q,`+
		`"customer":{"id":"cus-%d","tier":%q,"email":"user%d@%s","country":%q,"vip":%v,"age":%d},`+
		`"items":[%s],"sourceIPAddress":"%d.%d.%d.%d","retries":%d,"tags":["%s","%s"],"notes":null}}`,
		r.Uint32(), r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16), r.Int64N(1<<48),
		oneOf(r, benchTypes), v.source(r), r.Int64N(1e12),
		1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), oneOf(r, benchRegions), oneOf(r, benchRegions), r.Int64N(1e12), r.IntN(1e6),
		r.IntN(1e6), oneOf(r, benchStatus), r.IntN(2000), r.IntN(100), oneOf(r, benchCurrency), oneOf(r, benchChannels),
		r.IntN(1e6), oneOf(r, benchTiers), r.IntN(1e5), oneOf(r, benchDomains), oneOf(r, benchCountries), r.IntN(2) == 0, 18+r.IntN(60),
		strings.Join(items, ","), oneOf(r, benchNets), r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(4),
		oneOf(r, benchChannels), oneOf(r, benchTiers)))
}

// benchRule returns one rule of mixed operators. Every rule names a source
// (or a source prefix) and most a detail-type, as real rules do; then one to
// three conditions on the detail, drawn from every operator. withWildcard
// allows the wildcard operator, which AWS limits to 30 rules per bus.
func benchRule(r *rand.Rand, v vocabulary, withWildcard bool) string {
	conds := []string{}
	switch r.IntN(4) {
	case 0:
		conds = append(conds, fmt.Sprintf(`"source":[{"prefix":%q}]`, v.prefix(r)))
	default:
		conds = append(conds, fmt.Sprintf(`"source":[%q]`, v.source(r)))
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
			c = fmt.Sprintf(`"sourceIPAddress":[{"cidr":"%d.%d.0.0/16"}]`, oneOf(r, benchNets), r.IntN(256))
		case 6:
			c = fmt.Sprintf(`"items":{"sku":[{"prefix":"SKU-%s"}]}`, oneOf(r, benchSKUs))
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

// benchRules returns n rules, at most 30 of them with wildcards, as AWS's
// quota allows per bus.
func benchRules(tb testing.TB, v vocabulary, n int) map[string]*Pattern {
	r := rand.New(rand.NewPCG(42, uint64(n)))
	rules := make(map[string]*Pattern, n)
	wild := 0
	for i := range n {
		src := benchRule(r, v, wild < 30)
		p, err := CompileWithLimits(src, Limits{MaxLength: APIMaxLength})
		if err != nil {
			tb.Fatalf("rule %s: %v", src, err)
		}
		if p.HasWildcard() {
			wild++
		}
		rules[fmt.Sprintf("rule-%05d", i)] = p
	}
	return rules
}

func benchMatcher(tb testing.TB, v vocabulary, n int) *Matcher {
	m := NewMatcher()
	m.Replace(benchRules(tb, v, n))
	return m
}

func benchEvents(v vocabulary, n int) ([][]byte, int) {
	r := rand.New(rand.NewPCG(7, 7))
	events := make([][]byte, n)
	total := 0
	for i := range events {
		events[i] = benchEvent(r, v)
		total += len(events[i])
	}
	return events, total / n
}

// BenchmarkMatch matches the tenant corpus against rule sets of 1 to 10,000
// rules. Run it on one core: go test -run ^$ -bench Match -cpu 1 ./internal/pattern
func BenchmarkMatch(b *testing.B) { benchMatch(b, tenantVocabulary) }

// BenchmarkMatchDense is BenchmarkMatch over the dense corpus.
func BenchmarkMatchDense(b *testing.B) { benchMatch(b, denseVocabulary) }

func benchMatch(b *testing.B, v vocabulary) {
	events, avg := benchEvents(v, 1024)
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			m := benchMatcher(b, v, n)
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
	events, avg := benchEvents(tenantVocabulary, 1024)
	trie := benchMatcher(b, tenantVocabulary, 1000).cur.Load().trie
	var f flatEvent
	b.SetBytes(int64(avg))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.reset(events[i%len(events)], len(trie.ids))
		if err := f.flatten(trie.root); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile measures parsing and validating one rule.
func BenchmarkCompile(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	srcs := make([]string, 256)
	for i := range srcs {
		srcs[i] = benchRule(r, tenantVocabulary, true)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := CompileWithLimits(srcs[i%len(srcs)], Limits{MaxLength: APIMaxLength}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild measures building the machine for a whole rule set, which
// Replace does, and a compaction that merges every level.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			rules := benchRules(b, tenantVocabulary, n)
			m := NewMatcher()
			b.ReportAllocs()
			for b.Loop() {
				m.Replace(rules)
			}
		})
	}
}

// BenchmarkChange measures one change on a matcher of n rules: in turn, a
// rule's pattern replaced, a new rule added, and an added rule deleted. The
// background compactions are counted too when it runs on one core (-cpu 1).
func BenchmarkChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			m := benchMatcher(b, tenantVocabulary, n)
			extra := benchRules(b, denseVocabulary, 256)
			pats := slices.Collect(maps.Values(extra))
			r := rand.New(rand.NewPCG(9, 9))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				p := pats[i%len(pats)]
				switch i % 3 {
				case 0:
					m.Add(fmt.Sprintf("rule-%05d", r.IntN(n)), p)
				case 1:
					m.Add(fmt.Sprintf("extra-%d", i), p)
				default:
					m.Delete(fmt.Sprintf("extra-%d", i-1-3*r.IntN(1+i/3)))
				}
			}
		})
	}
}

// TestBenchCorpus checks that the benchmark corpus is what it claims to be,
// and that the compiled matcher agrees with the reference matcher on it.
func TestBenchCorpus(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]vocabulary{"tenant": tenantVocabulary, "dense": denseVocabulary} {
		events, avg := benchEvents(v, 32)
		if avg < 800 || avg > 1300 {
			t.Errorf("%s: average event size %d bytes, want about 1 KB", name, avg)
		}
		rules := benchRules(t, v, 1000)
		m := NewMatcher()
		m.Replace(rules)
		matched := 0
		for _, ev := range events {
			got, err := m.Match(ev)
			if err != nil {
				t.Fatal(err)
			}
			matched += len(got)
			gotSet := make(map[string]bool, len(got))
			for _, g := range got {
				gotSet[g] = true
			}
			for rule, p := range rules {
				want, err := refMatch([]byte(p.String()), ev)
				if err != nil {
					t.Fatal(err)
				}
				if want != gotSet[rule] {
					t.Fatalf("%s: rule %s %s on event %s: matcher says %v, reference %v", name, rule, p, ev, gotSet[rule], want)
				}
			}
		}
		if matched == 0 {
			t.Errorf("%s: no rule matched any event: the corpus does not exercise matching", name)
		}
	}
}

// BenchmarkCheckEvent measures PutEvents' check of one ~1 KB event: the
// tenant corpus's, and the one `bridgeport bench` sends, whose detail is
// mostly one long string.
func BenchmarkCheckEvent(b *testing.B) {
	events, avg := benchEvents(tenantVocabulary, 64)
	b.Run("corpus", func(b *testing.B) {
		b.SetBytes(int64(avg))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := CheckEvent(events[i%len(events)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	long := []byte(`{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"bench","source":"bench.ingest","account":"123456789012","time":"2026-12-07T03:31:39Z","region":"us-east-1","resources":[],"detail":{"sent":1796615499000000000,"pad":"` +
		strings.Repeat("x", 964) + `"}}`)
	b.Run("long-string", func(b *testing.B) {
		b.SetBytes(int64(len(long)))
		b.ReportAllocs()
		for b.Loop() {
			if err := CheckEvent(long); err != nil {
				b.Fatal(err)
			}
		}
	})
}
