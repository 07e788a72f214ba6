package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/config"
)

func TestDumpsFlags(t *testing.T) {
	f := func(args []string, wantErr string, check func(*dumpsFlags)) {
		t.Helper()
		fs := config.NewFlagSet("test", "")
		df := addDumpsFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		w, err := df.webhook(nil, slog.New(slog.DiscardHandler), nil)
		if got := errString(err); !strings.Contains(got, wantErr) || (wantErr == "") != (err == nil) {
			t.Errorf("%v: webhook error %q; want %q", args, got, wantErr)
		}
		if err == nil && (w != nil) != strings.Contains(strings.Join(args, " "), "webhook-url") {
			t.Errorf("%v: webhook %v", args, w)
		}
		if check != nil {
			check(df)
		}
	}
	f(nil, "", func(df *dumpsFlags) {
		if o := df.apiOptions(); o.Org != "vigil" || len(o.Tokens) != 0 {
			t.Errorf("default API options %+v; want org vigil, no tokens", o)
		}
	})
	f([]string{"--dumps.webhook-url=https://hooks.slack.com/services/T/B/x", "--dumps.tokens=a,b", "--dumps.org=acme"}, "", func(df *dumpsFlags) {
		if o := df.apiOptions(); o.Org != "acme" || strings.Join(o.Tokens, ",") != "a,b" {
			t.Errorf("API options %+v; want org acme, tokens a and b", o)
		}
	})
	f([]string{"--dumps.webhook-url=hooks.slack.com/x"}, `--dumps.webhook-url "hooks.slack.com/x": want an http or https URL`, nil)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
