package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func keyProtocol(key string) string {
	return WebSocketKeyProtocol + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// TestWebSocketKey: a browser's websocket carries the key as a
// subprotocol; the handshake succeeds with the key's tenant, the handler
// never sees the key, and the answer selects the "vigil" subprotocol the
// browser offered beside it.
func TestWebSocketKey(t *testing.T) {
	a, _, _ := newTest(t, 0)
	h := a.Middleware(ScopeRead)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offered := strings.Join(r.Header.Values("Sec-WebSocket-Protocol"), ",")
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = c.Write(r.Context(), websocket.MessageText, []byte(Tenant(r.Context())+" "+offered))
		c.Close(websocket.StatusNormalClosure, "")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/loki/api/v1/tail"

	dial := func(protocols ...string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return websocket.Dial(ctx, ws, &websocket.DialOptions{Subprotocols: protocols})
	}

	c, _, err := dial(WebSocketProtocol, keyProtocol("a-read"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Subprotocol(); got != WebSocketProtocol {
		t.Errorf("selected subprotocol %q; want %q", got, WebSocketProtocol)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, msg, err := c.Read(ctx)
	cancel()
	c.CloseNow()
	if err != nil || string(msg) != "team-a vigil" {
		t.Errorf("handler saw %q (%v); want tenant team-a and only the vigil subprotocol", msg, err)
	}

	for _, tc := range []struct {
		protocols []string
		status    int
		reason    string
	}{
		{nil, 401, "missing credentials"},
		{[]string{WebSocketProtocol, keyProtocol("nope")}, 401, "not one of --auth.config"},
		{[]string{WebSocketProtocol, WebSocketKeyProtocol + "!!"}, 401, "does not hold a key in base64url"},
		{[]string{keyProtocol("a-read"), keyProtocol("b-admin")}, 401, "more than one"},
		{[]string{WebSocketProtocol, keyProtocol("dsnkeya")}, 401, "not one of --auth.config"},
	} {
		c, res, err := dial(tc.protocols...)
		if err == nil {
			c.CloseNow()
			t.Errorf("%v: handshake succeeded; want %d", tc.protocols, tc.status)
			continue
		}
		if res == nil || res.StatusCode != tc.status {
			t.Errorf("%v: got %v (%v); want %d", tc.protocols, res, err, tc.status)
			continue
		}
		var body struct{ Error string }
		_ = json.NewDecoder(res.Body).Decode(&body)
		if !strings.Contains(body.Error, tc.reason) {
			t.Errorf("%v: got %q; want %q", tc.protocols, body.Error, tc.reason)
		}
	}
}

// TestWebSocketKeyOnlyOnHandshakes: the subprotocol is no credential on a
// plain request, and an Authorization header wins over it.
func TestWebSocketKeyOnlyOnHandshakes(t *testing.T) {
	a, _, _ := newTest(t, 0)
	r := httptest.NewRequest("GET", "/loki/api/v1/query", nil)
	r.Header.Set("Sec-WebSocket-Protocol", keyProtocol("a-read"))
	if c := RequestCredentials(r); c.Key != "" {
		t.Errorf("plain request: got key %q from the subprotocol", c.Key)
	}
	r.Header.Set("Upgrade", "websocket")
	if c := RequestCredentials(r); c.Key != "a-read" {
		t.Errorf("handshake: got key %q; want a-read", c.Key)
	}
	r.Header.Set("Authorization", "Bearer b-admin")
	if c := RequestCredentials(r); c.Key != "b-admin" {
		t.Errorf("handshake with Authorization: got key %q; want b-admin", c.Key)
	}
	// A read key over the subprotocol may not write.
	r = httptest.NewRequest("GET", "/loki/api/v1/tail", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Protocol", keyProtocol("a-read"))
	w := httptest.NewRecorder()
	a.Middleware(ScopeWrite)(http.NotFoundHandler()).ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("read key asking write over a websocket: got %d; want 403", w.Code)
	}
}

// TestUIHeaderNoBasicChallenge: the UI's requests get their 401 without
// WWW-Authenticate (no browser dialog over the UI's form); others keep it.
func TestUIHeaderNoBasicChallenge(t *testing.T) {
	a, _, _ := newTest(t, 0)
	h := a.Middleware(ScopeRead)(http.NotFoundHandler())
	for _, ui := range []bool{false, true} {
		r := httptest.NewRequest("GET", "/loki/api/v1/labels", nil)
		if ui {
			r.Header.Set(UIHeader, UIHeaderValue)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got := w.Header().Get("WWW-Authenticate")
		if w.Code != 401 || (got == "") != ui {
			t.Errorf("UI %v: got %d WWW-Authenticate %q", ui, w.Code, got)
		}
	}
}

func TestWhoAmI(t *testing.T) {
	a, _, _ := newTest(t, 0)
	get := func(h http.Handler, method, key string) (int, WhoAmI) {
		t.Helper()
		r := httptest.NewRequest(method, WhoAmIPath, nil)
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var got WhoAmI
		_ = json.Unmarshal(w.Body.Bytes(), &got)
		return w.Code, got
	}
	guarded := a.Middleware(ScopeRead)(WhoAmIHandler())
	if code, got := get(guarded, "GET", "a-write-read"); code != 200 || !got.Auth || got.Tenant != "team-a" || strings.Join(got.Scopes, ",") != "write,read" {
		t.Errorf("a-write-read: got %d %+v", code, got)
	}
	if code, _ := get(guarded, "GET", ""); code != 401 {
		t.Errorf("no key: got %d; want 401", code)
	}
	var off *Authenticator
	if code, got := get(off.Middleware(ScopeRead)(WhoAmIHandler()), "GET", ""); code != 200 || got.Auth || got.Tenant != DefaultTenant || len(got.Scopes) != 3 {
		t.Errorf("auth off: got %d %+v", code, got)
	}
	if code, _ := get(guarded, "POST", "a-read"); code != 405 {
		t.Errorf("POST: got %d; want 405", code)
	}
}
