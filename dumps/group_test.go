package dumps

import (
	"regexp"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// goPanic is a Go panic in an HTTP handler's closure, as the SDK reports
// it: runtime frames not in app, the handler's frames in app.
func goPanic(value, closure string, line int) model.Dump {
	return model.Dump{
		Service: "checkout", Platform: "go", Level: "fatal",
		Exceptions: []model.Exception{{
			Type: "runtime.Error", Value: value, Mechanism: "panic",
			Frames: []model.Frame{
				{Module: "net/http", Function: "HandlerFunc.ServeHTTP", Line: 2220},
				{Module: "main", Function: "handler", Line: line, InApp: true},
				{Module: "main", Function: "handler." + closure, Line: line + 3, InApp: true},
				{Module: "runtime", Function: "gopanic", Line: 770},
			},
		}},
	}
}

func pythonError(value string, line int) model.Dump {
	return model.Dump{
		Service: "billing", Platform: "python", Level: "error",
		Exceptions: []model.Exception{{
			Type: "KeyError", Value: value, Module: "builtins",
			Frames: []model.Frame{
				{Module: "flask.app", Function: "full_dispatch_request", Line: 880},
				{Module: "billing.views", Function: "charge", Line: line, InApp: true},
				{Module: "billing.models", Function: "lookup", Line: line + 40, InApp: true},
			},
		}},
	}
}

func TestGroupSameIssue(t *testing.T) {
	same := func(name string, a, b model.Dump) {
		t.Helper()
		ga, gb := Group(&a), Group(&b)
		if ga.IssueID != gb.IssueID {
			t.Errorf("%s: issue ids %s and %s differ; want one issue\nkey a: %q\nkey b: %q", name, ga.IssueID, gb.IssueID, ga.Key, gb.Key)
		}
	}
	differ := func(name string, a, b model.Dump) {
		t.Helper()
		ga, gb := Group(&a), Group(&b)
		if ga.IssueID == gb.IssueID {
			t.Errorf("%s: both in issue %s (key %q); want two issues", name, ga.IssueID, ga.Key)
		}
	}
	same("go: other line numbers, closure numbers and value", goPanic("index out of range [5] with length 3", "func1", 40),
		goPanic("nil map", "func2", 52))
	same("go: gowrap numbers", goPanic("x", "gowrap1", 40), goPanic("x", "gowrap2", 40))
	differ("go: another function", goPanic("x", "func1", 40), func() model.Dump {
		d := goPanic("x", "func1", 40)
		d.Exceptions[0].Frames[1].Function = "other"
		return d
	}())
	differ("go: another service", goPanic("x", "func1", 40), func() model.Dump {
		d := goPanic("x", "func1", 40)
		d.Service = "cart"
		return d
	}())
	same("python: other line numbers and key", pythonError("'user-17'", 10), pythonError("'user-99'", 12))

	noFrames := func(typ, value string) model.Dump {
		return model.Dump{Service: "s", Exceptions: []model.Exception{{Type: typ, Value: value,
			Frames: []model.Frame{{Module: "runtime", Function: "gopanic"}}}}}
	}
	same("no in-app frames: numbers masked", noFrames("*errors.errorString", "timeout after 30s on shard 4"),
		noFrames("*errors.errorString", "timeout after 31s on shard 7"))
	same("no in-app frames: addresses and uuids masked",
		noFrames("E", "object 0xc000123450 of request 123e4567-e89b-12d3-a456-426614174000 (trace 4bf92f3577b34da6a3ce929d0e0e4736)"),
		noFrames("E", "object 0xc0009abcd0 of request 00000000-0000-4000-8000-000000000001 (trace 00f067aa0ba902b700f067aa0ba902b7)"))
	differ("no in-app frames: other type", noFrames("A", "x"), noFrames("B", "x"))
	differ("no in-app frames: other words", noFrames("A", "connection refused"), noFrames("A", "connection reset"))

	msg := func(m string) model.Dump { return model.Dump{Service: "s", Message: m} }
	same("message: numbers masked", msg("retry 3 of 5 failed"), msg("retry 4 of 5 failed"))
	differ("message: other words", msg("disk full"), msg("disk gone"))

	fp := func(d model.Dump, fp ...string) model.Dump { d.Fingerprint = fp; return d }
	pyInCheckout := pythonError("y", 3)
	pyInCheckout.Service = "checkout"
	same("fingerprint overrides frames", fp(goPanic("x", "func1", 1), "db-down"), fp(pyInCheckout, "db-down"))
	differ("one fingerprint, two services", fp(goPanic("x", "func1", 1), "db-down"), fp(pythonError("y", 3), "db-down"))
	differ("fingerprint differs", fp(goPanic("x", "func1", 1), "db-down"), fp(goPanic("x", "func1", 1), "db-slow"))
	same("{{ default }} expands to the default grouping",
		fp(goPanic("x", "func1", 1), "{{ default }}", "eu"), fp(goPanic("y", "func3", 9), "{{default}}", "eu"))
	differ("{{ default }} keeps the frames apart", fp(goPanic("x", "func1", 1), "{{ default }}", "eu"),
		fp(pythonError("x", 1), "{{ default }}", "eu"))
	differ("fingerprint {{ default }} alone is the default grouping, not the literal",
		fp(goPanic("x", "func1", 1), "{{ default }}"), fp(pythonError("x", 1), "{{ default }}"))
	same("fingerprint {{ default }} alone equals no fingerprint", fp(goPanic("x", "func1", 1), "{{ default }}"), goPanic("x", "func1", 1))
}

func TestGroupID(t *testing.T) {
	d := goPanic("x", "func1", 1)
	g := Group(&d)
	if !regexp.MustCompile(`^[0-9]{1,16}$`).MatchString(g.IssueID) {
		t.Errorf("issue id %q; want decimal digits that fit a JavaScript number", g.IssueID)
	}
	// Every ingester, every version: the id is part of stored data.
	if want := Group(&d).IssueID; g.IssueID != want {
		t.Errorf("issue id %s, then %s; want the same", g.IssueID, want)
	}
}

func TestNormalize(t *testing.T) {
	f := func(name string, norm func(string) string, in, want string) {
		t.Helper()
		if got := norm(in); got != want {
			t.Errorf("%s(%q) = %q; want %q", name, in, got, want)
		}
	}
	fn := func(in, want string) { t.Helper(); f("NormalizeFunction", NormalizeFunction, in, want) }
	fn("handler.func1", "handler.func")
	fn("handler.func12.3.1", "handler.func")
	fn("(*Server).serve.gowrap3", "(*Server).serve.gowrap")
	fn("run.deferwrap1", "run.deferwrap")
	fn("main.worker(0xc000010000, 0x3)", "main.worker")
	fn("main.worker(...)", "main.worker")
	fn("main.worker +0x1d", "main.worker")
	fn("function1", "function1")
	fn("charge", "charge")
	fn("(*T).funcName", "(*T).funcName")

	val := func(in, want string) { t.Helper(); f("NormalizeValue", NormalizeValue, in, want) }
	val("index out of range [5] with length 3", "index out of range [<num>] with length <num>")
	val("invalid memory address or nil pointer dereference [signal SIGSEGV addr=0x0 pc=0x4a1b2c]",
		"invalid memory address or nil pointer dereference [signal SIGSEGV addr=<hex> pc=<hex>]")
	val("user 123e4567-e89b-12d3-a456-426614174000 not found", "user <uuid> not found")
	val("took 1.5s", "took <num>s")
	val("no digits here", "no digits here")
}

func TestTitleCulprit(t *testing.T) {
	f := func(name string, d model.Dump, title, culprit string) {
		t.Helper()
		g := Group(&d)
		if g.Title != title || g.Culprit != culprit {
			t.Errorf("%s: title %q, culprit %q; want %q, %q", name, g.Title, g.Culprit, title, culprit)
		}
	}
	f("go panic", goPanic("index out of range [5] with length 3", "func1", 40),
		"runtime.Error: index out of range [5] with length 3", "main.handler.func1")
	f("python", pythonError("'user-17'", 1), "KeyError: 'user-17'", "billing.models.lookup")
	f("message only", model.Dump{Message: "disk full\nsecond line", Transaction: "GET /x"}, "disk full", "GET /x")
	f("nothing", model.Dump{}, "<unlabeled event>", "")
	f("no in-app frame", model.Dump{Exceptions: []model.Exception{{Type: "E", Frames: []model.Frame{
		{Module: "a", Function: "b"}, {Module: "c", Function: "c.d"}}}}}, "E", "c.d")
}

// BenchmarkGroup is the grouping cost of one event: a Go panic with a
// realistic stack.
func BenchmarkGroup(b *testing.B) {
	d := goPanic("index out of range [5] with length 3", "func1", 40)
	frames := d.Exceptions[0].Frames
	for i := 0; i < 20; i++ {
		frames = append([]model.Frame{{Module: "github.com/acme/shop/internal/cart", Function: "(*Service).Checkout.func2", InApp: i%2 == 0, Line: 100 + i}}, frames...)
	}
	d.Exceptions[0].Frames = frames
	b.ReportAllocs()
	for b.Loop() {
		Group(&d)
	}
}
