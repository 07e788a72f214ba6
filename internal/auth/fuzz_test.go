package auth

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseConfig: any file either parses into a configuration whose keys
// all belong to a tenant, or is refused with an error naming the file.
func FuzzParseConfig(f *testing.F) {
	files, err := filepath.Glob("testdata/configs/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatal("no seeds in testdata/configs")
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("auth.yaml", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "auth.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, k := range append(c.keys, c.dsn...) {
			if k.tenant == nil || c.Tenants[k.tenant.ID] != k.tenant || k.scopes == 0 {
				t.Fatalf("key at line %d has tenant %v scopes %s", k.line, k.tenant, k.scopes)
			}
		}
	})
}

// FuzzParseAuthorization: a header yields a key or a reason, never both,
// and never a key longer than the header.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", basic("u", "p"), "Basic !!", "Digest x", "bearer", "Basic " + strings.Repeat("A", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		key, malformed := ParseAuthorization(h)
		if key != "" && malformed != "" {
			t.Fatalf("%q: got key %q and reason %q", h, key, malformed)
		}
		if len(key) > len(h) {
			t.Fatalf("%q: got a key longer than the header", h)
		}
	})
}

// FuzzWebSocketKey: a handshake's subprotocols yield a key or a reason,
// never both; the key subprotocol never reaches the other subprotocols.
func FuzzWebSocketKey(f *testing.F) {
	for _, s := range []string{"", "vigil, " + keyProtocol("abc"), keyProtocol("a") + "," + keyProtocol("b"), WebSocketKeyProtocol + "!!", WebSocketKeyProtocol, "a,,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Sec-WebSocket-Protocol", h)
		key, malformed, others, found := webSocketKey(r)
		if key != "" && malformed != "" {
			t.Fatalf("%q: got key %q and reason %q", h, key, malformed)
		}
		if (key != "" || malformed != "") && !found {
			t.Fatalf("%q: got a key or a reason without a key subprotocol", h)
		}
		for _, p := range others {
			if strings.HasPrefix(p, WebSocketKeyProtocol) {
				t.Fatalf("%q: the key subprotocol %q is among the others", h, p)
			}
		}
	})
}
