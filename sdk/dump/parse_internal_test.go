package dump

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseDSN(t *testing.T) {
	f := func(in, wantURL, wantAuth string) {
		t.Helper()
		d, err := parseDSN(in)
		if err != nil {
			t.Fatalf("parseDSN(%q): %v", in, err)
		}
		if d.envelope != wantURL || d.authHeader() != wantAuth {
			t.Errorf("parseDSN(%q): got %q %q; want %q %q", in, d.envelope, d.authHeader(), wantURL, wantAuth)
		}
	}
	f("http://abc@localhost:8410/1", "http://localhost:8410/api/1/envelope/",
		"Sentry sentry_version=7, sentry_client=vigil-go/"+Version+", sentry_key=abc")
	f("https://abc:def@sentry.example.com/prefix/42/", "https://sentry.example.com/prefix/api/42/envelope/",
		"Sentry sentry_version=7, sentry_client=vigil-go/"+Version+", sentry_key=abc, sentry_secret=def")
	for _, bad := range []string{"", "localhost:8410", "ftp://k@h/1", "http://h/1", "http://k@h/", "http://k@/1"} {
		if _, err := parseDSN(bad); err == nil {
			t.Errorf("parseDSN(%q): no error", bad)
		}
	}
}

func TestParseSentryRateLimits(t *testing.T) {
	now := time.Unix(1000, 0)
	f := func(h string, want int) {
		t.Helper()
		got := parseSentryRateLimits(h, now)
		if want == 0 && !got.IsZero() || want != 0 && got.Sub(now) != time.Duration(want)*time.Second {
			t.Errorf("%q: got %v, want %d s", h, got.Sub(now), want)
		}
	}
	f("60:error;transaction:key", 60)
	f("60:transaction:key", 0)
	f("60::organization", 60)
	f("30:default:project, 90:error:key", 90)
	f("2.5:error:key", 3)
	f("x:error:key, -5:error:key", 0)
	f("60:transaction, 10:error", 10)
}

func TestFuncArgsFileLine(t *testing.T) {
	f := func(line, wantFn, wantArgs string) {
		t.Helper()
		fn, args := funcArgs(line)
		if fn != wantFn || args != wantArgs {
			t.Errorf("funcArgs(%q): got %q %q; want %q %q", line, fn, args, wantFn, wantArgs)
		}
	}
	f("main.main()", "main.main", "")
	f("github.com/a/b.(*T).M(0xc000010000, {0x4b8a40?, 0x56e4a0?})", "github.com/a/b.(*T).M", "0xc000010000, {0x4b8a40?, 0x56e4a0?}")
	f("main.F[...](...)", "main.F[...]", "...")
	f("panic({0x4b8a40?, 0x56e4a0?})", "panic", "{0x4b8a40?, 0x56e4a0?}")
	f("non-Go function", "non-Go function", "")

	g := func(line, wantFile string, wantLine int) {
		t.Helper()
		file, n := fileLine(line)
		if file != wantFile || n != wantLine {
			t.Errorf("fileLine(%q): got %q %d; want %q %d", line, file, n, wantFile, wantLine)
		}
	}
	g("/src/app/main.go:17 +0x1d", "/src/app/main.go", 17)
	g("/usr/local/go/src/runtime/panic.go:1229 +0x48 fp=0x7ffc sp=0x7ffc pc=0x48b248", "/usr/local/go/src/runtime/panic.go", 1229)
	g("C:/work/app/main.go:9 +0x2", "C:/work/app/main.go", 9)
	g("_testmain.go:52", "_testmain.go", 52)
	g("?", "?", 0)
}

func TestSplitFunctionInApp(t *testing.T) {
	f := func(name, wantPkg, wantFn string, wantInApp bool) {
		t.Helper()
		pkg, fn := splitFunction(name)
		if pkg != wantPkg || fn != wantFn || inApp(pkg, []string{"main", "github.com/acme/shop"}) != wantInApp {
			t.Errorf("%q: got %q %q %v; want %q %q %v", name, pkg, fn, inApp(pkg, []string{"main", "github.com/acme/shop"}), wantPkg, wantFn, wantInApp)
		}
	}
	f("github.com/acme/shop/cart.(*Cart).Add.func1", "github.com/acme/shop/cart", "(*Cart).Add.func1", true)
	f("github.com/acme/shopper.Run", "github.com/acme/shopper", "Run", false)
	f("main.main", "main", "main", true)
	f("net/http.(*conn).serve", "net/http", "(*conn).serve", false)
	f("github.com/vigilhq/vigil/sdk.HTTPMiddleware.func1", "github.com/vigilhq/vigil/sdk", "HTTPMiddleware.func1", false)
	f("gopkg.in/yaml%2ev3.unmarshal", "gopkg.in/yaml.v3", "unmarshal", false)
	f("panic", "", "panic", false)
}

// The crash outputs in testdata/crashes were printed by real dying
// processes (see TestParseCrashOfDyingChildren, VIGIL_UPDATE_TESTDATA=1).
func TestParseCrashTestdata(t *testing.T) {
	want := map[string]struct {
		kind, msg, top string
	}{
		"concurrent-map-writes.txt": {"fatal error", "concurrent map writes", "internal/runtime/maps.fatal"},
		"nil-map.txt":               {"panic", "assignment to entry in nil map", "github.com/vigilhq/vigil/sdk/dump_test.crashNilMap"},
		"stack-overflow.txt":        {"fatal error", "stack overflow", "github.com/vigilhq/vigil/sdk/dump_test.recurse"},
		"goroutine-panic.txt":       {"panic", "flush cart: disk on fire", "github.com/vigilhq/vigil/sdk/dump_test.goroutinePanics"},
	}
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join("testdata", "crashes", name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCrash(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Kind != w.kind || c.Message != w.msg || len(c.Goroutines) < 2 || c.Goroutines[0].Frames[0].Function != w.top {
			t.Errorf("%s: got %q %q, %d goroutines, top %q; want %q %q, top %q", name, c.Kind, c.Message, len(c.Goroutines), c.Goroutines[0].Frames[0].Function, w.kind, w.msg, w.top)
		}
	}
}

// Without its header (what SetCrashOutput receives for a fatal error,
// golang/go#76859) the message is inferred from the stack.
func TestInferFatal(t *testing.T) {
	f := func(name, want string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", "crashes", name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCrash(stripHeader(b))
		if err != nil {
			t.Fatal(err)
		}
		if c.Kind != "" {
			t.Fatalf("%s: header not stripped: %q", name, c.Kind)
		}
		if got, _ := inferFatal(c); got != want {
			t.Errorf("%s: inferred %q, want %q", name, got, want)
		}
	}
	f("concurrent-map-writes.txt", "concurrent map access")
	f("stack-overflow.txt", "stack overflow")
}

// stripHeader drops what the runtime prints before the goroutines and
// the system stack: what a crash file holds for a fatal error.
func stripHeader(b []byte) []byte {
	lines := splitLines(b)
	for i, l := range lines {
		if l == "runtime stack:" || len(l) > 10 && l[:10] == "goroutine " {
			out := []byte{}
			for _, l := range lines[i:] {
				out = append(out, l...)
				out = append(out, '\n')
			}
			return out
		}
	}
	return b
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return append(out, string(b[start:]))
}
