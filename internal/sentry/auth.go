package sentry

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Auth is a request's DSN key authentication.
type Auth struct {
	Key    string // sentry_key: the DSN's public key
	Client string // sentry_client, e.g. "sentry.go/0.50.0"
}

// ParseAuthHeader parses an X-Sentry-Auth (or Authorization) header:
//
//	Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=abc
//
// The "Sentry " prefix is optional; sentry_secret, deprecated, is
// ignored. It returns an error when the header is present but has no key.
func ParseAuthHeader(h string) (Auth, error) {
	s := strings.TrimSpace(h)
	if len(s) >= 7 && strings.EqualFold(s[:7], "sentry ") {
		s = s[7:]
	}
	var a Auth
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "sentry_key":
			a.Key = strings.TrimSpace(v)
		case "sentry_client":
			a.Client = strings.TrimSpace(v)
		}
	}
	if a.Key == "" {
		return a, fmt.Errorf("auth header %q has no sentry_key", redactAuth(h))
	}
	return a, nil
}

// redactAuth drops what follows sentry_secret= from an auth header
// quoted back to a client or a log.
func redactAuth(h string) string {
	if i := strings.Index(h, "sentry_secret="); i >= 0 {
		return h[:i] + "sentry_secret=[Filtered]"
	}
	return h
}

// RequestAuth returns the key of r, taken as Sentry's ingestion does from
// X-Sentry-Auth, else an Authorization header of the "Sentry ..." form,
// else the sentry_key query parameter (browser SDKs). found is false
// when none is present, which is not an error for an envelope: it may be
// self-authenticated by the DSN in its header (see KeyFromDSN).
func RequestAuth(r *http.Request) (a Auth, found bool, err error) {
	if h := r.Header.Get("X-Sentry-Auth"); h != "" {
		a, err = ParseAuthHeader(h)
		return a, true, err
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "sentry ") {
		a, err = ParseAuthHeader(h)
		return a, true, err
	}
	q := r.URL.Query()
	if q.Has("sentry_key") {
		a = Auth{Key: q.Get("sentry_key"), Client: q.Get("sentry_client")}
		if a.Key == "" {
			return a, true, fmt.Errorf("query parameter sentry_key is empty")
		}
		return a, true, nil
	}
	return Auth{}, false, nil
}

// KeyFromDSN returns the public key and the project id of a DSN,
// scheme://key@host/[path/]project.
func KeyFromDSN(dsn string) (key, project string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", fmt.Errorf("cannot parse DSN %q: %w", dsn, err)
	}
	if u.User == nil || u.User.Username() == "" {
		return "", "", fmt.Errorf("DSN %q has no public key (scheme://KEY@host/project)", u.Redacted())
	}
	p := strings.TrimSuffix(u.Path, "/")
	project = p[strings.LastIndexByte(p, '/')+1:]
	if project == "" {
		return "", "", fmt.Errorf("DSN %q has no project id", u.Redacted())
	}
	return u.User.Username(), project, nil
}
