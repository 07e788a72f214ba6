package auth

import (
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/vigilhq/vigil/internal/httpserver"
)

// OrgIDHeader is the tenant header of Loki, Tempo, Mimir and Pyroscope.
const OrgIDHeader = "X-Scope-OrgID"

// maxHeaderKey bounds a key read from a header; longer is malformed.
const maxHeaderKey = 4096

// ParseAuthorization returns the key of an Authorization header value:
// "Bearer KEY", or "Basic base64(user:KEY)" (the password is the key, as
// Grafana's data sources and Loki's clients send it; the user name is not
// checked). An empty header is no key; malformed says why an unreadable
// one is refused.
func ParseAuthorization(h string) (key, malformed string) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", ""
	}
	if len(h) > maxHeaderKey {
		return "", "the Authorization header is longer than 4096 bytes"
	}
	scheme, rest, _ := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if rest == "" {
			return "", "the Authorization header's Bearer token is empty"
		}
		return rest, ""
	case strings.EqualFold(scheme, "Basic"):
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", "the Authorization header's basic credentials are not base64"
		}
		_, pw, ok := strings.Cut(string(b), ":")
		if !ok || pw == "" {
			return "", "the Authorization header's basic credentials have no password: send the tenant key as the password"
		}
		return pw, ""
	}
	return "", "the Authorization header's scheme is neither Bearer nor Basic"
}

// A browser cannot set headers on a websocket: the web UI sends its key
// as one of the subprotocols it offers, WebSocketKeyProtocol followed by
// the key in unpadded base64url, beside WebSocketProtocol, which the
// server then selects (as Kubernetes does with its bearer subprotocol).
// Only the handshake carries it, never the URL, which lands in logs.
const (
	WebSocketKeyProtocol = "base64url.bearer.vigil."
	WebSocketProtocol    = "vigil"
)

// UIHeader and UIHeaderValue mark the web UI's requests: their 401 carries
// no WWW-Authenticate, so that the browser does not pop up its own basic
// auth dialog over the UI's sign-in form.
const (
	UIHeader      = "X-Requested-With"
	UIHeaderValue = "vigil-ui"
)

// isWebSocket tells a websocket handshake.
func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket")
}

// webSocketKey returns the key in the subprotocols a websocket handshake
// offers, the other subprotocols, and whether one carried a key.
func webSocketKey(r *http.Request) (key, malformed string, others []string, found bool) {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			enc, ok := strings.CutPrefix(p, WebSocketKeyProtocol)
			if !ok {
				others = append(others, p)
				continue
			}
			found = true
			if key != "" || malformed != "" {
				malformed = "the websocket handshake offers more than one " + WebSocketKeyProtocol + " subprotocol"
				continue
			}
			if len(enc) > maxHeaderKey {
				malformed = "the websocket subprotocol " + WebSocketKeyProtocol + "… is longer than 4096 bytes"
				continue
			}
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(enc, "="))
			if err != nil || len(b) == 0 {
				malformed = "the websocket subprotocol " + WebSocketKeyProtocol + "… does not hold a key in base64url"
				continue
			}
			key = string(b)
		}
	}
	if malformed != "" {
		key = ""
	}
	return key, malformed, others, found
}

// RequestCredentials returns the credentials of r: the key of its
// Authorization header or, for a websocket handshake without one, of its
// WebSocketKeyProtocol subprotocol.
func RequestCredentials(r *http.Request) Credentials {
	var c Credentials
	c.Key, c.Malformed = ParseAuthorization(r.Header.Get("Authorization"))
	if c.Key == "" && c.Malformed == "" && isWebSocket(r) {
		c.Key, c.Malformed, _, _ = webSocketKey(r)
	}
	c.OrgID = strings.TrimSpace(r.Header.Get(OrgIDHeader))
	c.Remote = remoteAddr(r.RemoteAddr)
	return c
}

func remoteAddr(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, _ := netip.ParseAddr(host)
	return a
}

// Middleware returns a middleware that lets through the requests whose
// credentials grant scope, with their Identity on the request's context,
// and answers the others 401 or 403. On a nil Authenticator (auth off) it
// lets every request through.
func (a *Authenticator) Middleware(scope Scope) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return a.Handler(next, func(*http.Request) Scope { return scope })
	}
}

// Open is the scope of requests let through unauthenticated (/metrics,
// /healthz, the web UI's static files), and of those that authenticate
// themselves (the Sentry intake's DSN keys).
const Open Scope = 0

// Handler returns next guarded by the scope that scope returns for each
// request; Open lets the request through unchecked. On a nil
// Authenticator it returns next.
func (a *Authenticator) Handler(next http.Handler, scope func(*http.Request) Scope) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := scope(r)
		if s == Open {
			next.ServeHTTP(w, r)
			return
		}
		id, err := a.Authenticate(RequestCredentials(r), s)
		if err != nil {
			WriteError(w, r, err.(*Error))
			return
		}
		r = r.WithContext(WithIdentity(r.Context(), id))
		if isWebSocket(r) {
			r = stripKeyProtocol(w, r)
		}
		next.ServeHTTP(w, r)
	})
}

// stripKeyProtocol hides the key subprotocol from the handler behind,
// and selects WebSocketProtocol when the handshake offered it with the
// key: a browser fails a handshake whose answer selects none of the
// subprotocols it offered. The websocket library keeps a subprotocol set
// on the response's header (github.com/coder/websocket does).
func stripKeyProtocol(w http.ResponseWriter, r *http.Request) *http.Request {
	_, _, others, found := webSocketKey(r)
	if !found {
		return r
	}
	r = r.Clone(r.Context())
	r.Header.Del("Sec-WebSocket-Protocol")
	for _, p := range others {
		r.Header.Add("Sec-WebSocket-Protocol", p)
		if p == WebSocketProtocol && w.Header().Get("Sec-WebSocket-Protocol") == "" {
			w.Header().Set("Sec-WebSocket-Protocol", WebSocketProtocol)
		}
	}
	return r
}

// WriteError answers a refusal of r in the error shape of the API r is
// for: Jaeger's envelope for the Jaeger APIs, Sentry's {"detail": …} for
// Sentry's web API, else the Prometheus API's (which Grafana shows for
// Loki too). A 401 carries WWW-Authenticate, so that browsers and Grafana
// ask for basic credentials, except to the web UI (UIHeader), which asks
// with its own form.
func WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	errorType := "forbidden"
	if e.Status == http.StatusUnauthorized {
		if r.Header.Get(UIHeader) != UIHeaderValue {
			w.Header().Set("WWW-Authenticate", `Basic realm="vigil"`)
		}
		errorType = "unauthorized"
	}
	httpserver.WriteJSON(w, e.Status, errorBody(r.URL.Path, e, errorType))
}

// jaegerPaths are the path prefixes of the Jaeger query APIs (v1, v3 and
// the monitoring API).
var jaegerPaths = []string{"/api/traces", "/api/services", "/api/operations", "/api/dependencies", "/api/metrics/", "/api/v3/"}

func errorBody(path string, e *Error, errorType string) any {
	if strings.HasPrefix(path, "/api/0/") {
		return map[string]string{"detail": e.Msg}
	}
	for _, p := range jaegerPaths {
		if strings.HasPrefix(path, p) {
			type jaegerError struct {
				Code int    `json:"code"`
				Msg  string `json:"msg"`
			}
			return map[string]any{"data": nil, "total": 0, "limit": 0, "offset": 0,
				"errors": []jaegerError{{Code: e.Status, Msg: e.Msg}}}
		}
	}
	return map[string]string{"status": "error", "errorType": errorType, "error": e.Msg}
}
