package profiler

import (
	"errors"
	"fmt"
	"net/http"
)

// maxRedirects bounds the redirects a scrape follows on its target.
const maxRedirects = 5

// redirectError is a redirect a scrape refused to follow.
type redirectError struct {
	from, to string
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("redirect to %s refused: a scrape fetches its configured target %s only (same scheme, host and port)", e.to, e.from)
}

// sameTarget is an http.Client's CheckRedirect that follows a redirect
// only to the scheme, host and port of the first request: a target (or an
// http_sd_configs URL) may move a scrape to another path of itself, as
// /debug/pprof/heap to /debug/pprof/heap/, but never point the profiler at
// another host, such as a cloud metadata endpoint or an internal service
// that trusts the profiler's address.
func sameTarget(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return &redirectError{from: first.Scheme + "://" + first.Host, to: req.URL.Scheme + "://" + req.URL.Host}
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// isRedirectRefused reports whether err is a refused redirect.
func isRedirectRefused(err error) bool {
	var re *redirectError
	return errors.As(err, &re)
}
