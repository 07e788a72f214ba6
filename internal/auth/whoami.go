package auth

import (
	"net/http"
	"strings"

	"github.com/vigilhq/vigil/internal/httpserver"
)

// WhoAmIPath answers who the request's credentials are.
const WhoAmIPath = "/vigil/api/v1/whoami"

// WhoAmI is the answer of WhoAmIPath.
type WhoAmI struct {
	// Auth is false when authentication is off.
	Auth   bool     `json:"auth"`
	Tenant string   `json:"tenant"`
	Scopes []string `json:"scopes"`
}

// WhoAmIHandler answers the tenant and scopes of the request, as the
// Authenticator's middleware put them on its context: the web UI shows
// the tenant beside its "Sign out". With auth off it answers
// DefaultTenant with every scope and auth false.
func WhoAmIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpserver.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"status": "error", "errorType": "bad_data", "error": "method " + r.Method + " not allowed: " + WhoAmIPath + " takes GET"})
			return
		}
		id, ok := FromContext(r.Context())
		if !ok {
			id = Identity{Tenant: DefaultTenant, Scopes: ScopeWrite | ScopeRead | ScopeAdmin}
		}
		scopes := []string{}
		if s := id.Scopes.String(); s != "" {
			scopes = strings.Split(s, ",")
		}
		httpserver.WriteJSON(w, http.StatusOK, WhoAmI{Auth: ok, Tenant: id.Tenant, Scopes: scopes})
	})
}
