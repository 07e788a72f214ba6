package drain

import (
	"reflect"
	"sort"
	"testing"
)

func TestTokenize(t *testing.T) {
	f := func(line string, want ...Token) {
		t.Helper()
		got := Tokenize(line)
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Tokenize(%q):\ngot  %+v\nwant %+v", line, got, want)
		}
	}
	w := func(s string) Token { return Token{Text: s} }
	g := func(s string) Token { return Token{Text: s, Glued: true} }
	f("")
	f("   \t ")
	f("GET /index.html 200", w("GET"), w("/index.html"), w("200"))
	f("  two   spaces\t", w("two"), w("spaces"))
	f("level=info msg=started", w("level="), g("info"), w("msg="), g("started"))
	f(`{"status":503,"took":"1ms"}`, w(`{"status":`), g(`503`), g(","), g(`"took":`), g(`"1ms"}`))
	f("at 12:00:01, ok", w("at"), w("12:00:01"), g(","), w("ok"))
	f("a= b", w("a="), w("b"))
	f("url=http://x/y", w("url="), g("http:"), g("//x/y"))
}

func TestTokenizeMaxTokens(t *testing.T) {
	line := ""
	for i := 0; i < MaxTokens+10; i++ {
		line += "k=v "
	}
	toks := Tokenize(line)
	if len(toks) != MaxTokens {
		t.Fatalf("got %d tokens; want %d", len(toks), MaxTokens)
	}
	if got, want := Join(toks), line[:len(line)-1]; got != want {
		t.Fatalf("Join(Tokenize(line)) lost text:\ngot  %q\nwant %q", got, want)
	}
}

// patterns trains a miner on lines and returns its patterns with their
// sizes, sorted.
func patterns(cfg Config, lines ...string) map[string]int64 {
	d := New(cfg)
	for _, l := range lines {
		d.Train(l)
	}
	out := map[string]int64{}
	for _, c := range d.Clusters() {
		out[c.Pattern()] += c.Size
	}
	return out
}

func TestPatterns(t *testing.T) {
	f := func(lines []string, want map[string]int64) {
		t.Helper()
		got := patterns(DefaultConfig(), lines...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("patterns:\ngot  %v\nwant %v", got, want)
		}
	}
	f([]string{
		"ts=2024-05-01T12:00:00Z level=info msg=started",
		"ts=2024-05-01T12:00:01Z level=info msg=stopped",
		"ts=2024-05-01T12:00:02Z level=info msg=restarted",
	}, map[string]int64{"ts=<_> level=info msg=<_>": 3})

	// Different lengths never share a cluster; the first two tokens
	// route a line (Depth 4), the rest may vary.
	f([]string{
		"GET /api/users 200 12ms",
		"GET /api/orders 200 3ms",
		"GET /api/users 503 1200ms",
		"connection reset by peer",
		"connection reset by peer now",
	}, map[string]int64{
		"GET /api/users <_> <_>":       2,
		"GET /api/orders 200 3ms":      1,
		"connection reset by peer":     1,
		"connection reset by peer now": 1,
	})

	// A token with a digit takes the wildcard branch of the tree, so
	// ids and times in the first tokens still group.
	f([]string{
		"12:00:01 worker-1 job done in 3s",
		"12:00:07 worker-2 job done in 5s",
		"12:00:09 worker-3 job failed in 1s",
	}, map[string]int64{"<_> <_> job <_> in <_>": 3})

	// Too different: below the similarity threshold they stay apart.
	f([]string{
		"user alice logged in from 10.0.0.1",
		"disk sda1 is 93 percent full",
	}, map[string]int64{
		"user alice logged in from 10.0.0.1": 1,
		"disk sda1 is 93 percent full":       1,
	})

	// The same line again does not widen the pattern.
	f([]string{"cache warmed", "cache warmed"}, map[string]int64{"cache warmed": 2})

	// JSON lines: keys stay, values vary.
	f([]string{
		`{"msg":"request","status":200,"took":"10ms"}`,
		`{"msg":"request","status":503,"took":"90ms"}`,
	}, map[string]int64{`{"msg":"request","status":<_>,"took":<_>`: 2})
}

func TestMaxClustersEvictsLeastRecentlyMatched(t *testing.T) {
	d := New(Config{MaxClusters: 2})
	var evicted []string
	d.OnEvict = func(c *Cluster) { evicted = append(evicted, c.Pattern()) }
	d.Train("alpha one")
	d.Train("beta two three")
	d.Train("alpha one") // alpha is now the most recent
	d.Train("gamma four five six")
	var got []string
	for _, c := range d.Clusters() {
		got = append(got, c.Pattern())
	}
	sort.Strings(got)
	if want := []string{"alpha one", "gamma four five six"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("clusters after eviction: got %q; want %q", got, want)
	}
	if want := []string{"beta two three"}; !reflect.DeepEqual(evicted, want) {
		t.Errorf("OnEvict saw %q; want %q", evicted, want)
	}
	if d.Len() != 2 {
		t.Errorf("Len = %d; want 2", d.Len())
	}
	// The evicted cluster left the tree: beta starts afresh.
	if c := d.Train("beta two three"); c.Size != 1 {
		t.Fatalf("beta after eviction: size %d; want 1", c.Size)
	}
}

func TestMaxLineLength(t *testing.T) {
	d := New(Config{MaxLineLength: 10})
	if c := d.Train("this line is longer than ten bytes"); c != nil {
		t.Fatalf("long line mined: %q", c.Pattern())
	}
	if c := d.Train("short"); c == nil || c.Pattern() != "short" {
		t.Fatalf("short line: got %v", c)
	}
}
