package sentry

import (
	"net/url"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
)

// Filtered replaces a secret, as Sentry's SDKs and server write it.
const Filtered = "[Filtered]"

// sensitiveExact are header and parameter names that always carry
// secrets; sensitiveParts are parts of names that usually do.
var (
	sensitiveExact = map[string]bool{
		"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
		"x-sentry-auth": true, "x-api-key": true, "x-auth-token": true, "x-csrf-token": true,
		"x-xsrf-token": true, "x-forwarded-authorization": true, "sentry_key": true,
	}
	sensitiveParts = []string{"token", "secret", "password", "passwd", "api-key", "api_key", "apikey", "session", "credential", "private", "auth"}
)

// Sensitive reports whether a header or query parameter named name holds
// a secret that Vigil does not keep.
func Sensitive(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	if sensitiveExact[n] {
		return true
	}
	for _, p := range sensitiveParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return false
}

// RedactHeader returns the value to keep of a header: Filtered for a
// sensitive one (see Sensitive), the value otherwise.
func RedactHeader(name, value string) string {
	if value != "" && Sensitive(name) {
		return Filtered
	}
	return value
}

// convertRequest keeps the method, the URL without credentials or query,
// the query string and the headers, each secret redacted.
func convertRequest(r requestFields) *model.DumpRequest {
	out := &model.DumpRequest{Method: strings.ToUpper(r.Method)}
	rawURL := r.URL
	query := ""
	if u, err := url.Parse(rawURL); err == nil {
		if u.User != nil {
			u.User = nil
		}
		query = u.RawQuery
		u.RawQuery, u.ForceQuery = "", false
		rawURL = u.String()
	} else if i := strings.IndexByte(rawURL, '?'); i >= 0 {
		rawURL, query = rawURL[:i], rawURL[i+1:]
	}
	out.URL = rawURL
	switch r.QueryKind {
	case '"':
		query = strings.TrimPrefix(r.QueryText, "?")
	case 'p':
		v := url.Values{}
		for _, p := range r.QueryPairs {
			v.Add(p[0], p[1])
		}
		query = v.Encode()
	}
	out.Query = redactQuery(query)
	ps := r.Headers
	for i := range ps {
		ps[i][1] = RedactHeader(ps[i][0], ps[i][1])
	}
	out.Headers = sortedAttrs(ps)
	return out
}

// redactQuery replaces the values of sensitive parameters of a query
// string, keeping the rest as sent.
func redactQuery(q string) string {
	if q == "" {
		return ""
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" || v == Filtered {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if Sensitive(name) {
			parts[i] = k + "=" + url.QueryEscape(Filtered)
		}
	}
	return strings.Join(parts, "&")
}
