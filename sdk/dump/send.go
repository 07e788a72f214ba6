package dump

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// errRejected marks a delivery the intake refused for good (a 4xx other
// than 429): retrying the same bytes cannot succeed.
type errRejected struct{ status int }

func (e errRejected) Error() string {
	return fmt.Sprintf("intake rejected the report: HTTP %d", e.status)
}

// errRateLimited carries the time until which the intake asked not to be
// sent errors.
type errRateLimited struct{ until time.Time }

func (e errRateLimited) Error() string {
	return "intake rate-limited the report until " + e.until.UTC().Format(time.RFC3339)
}

// post sends one envelope. A nil error means the intake accepted it.
// Any rate limit the response announces, even with a 2xx, is returned in
// limit.
func post(ctx context.Context, c *http.Client, d dsn, envelope []byte) (limit time.Time, err error) {
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	_, _ = zw.Write(envelope)
	_ = zw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.envelope, &body)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot build request to %s: %w", d.envelope, err)
	}
	req.Header.Set("Content-Type", "application/x-sentry-envelope")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", sdkName+"/"+Version)
	req.Header.Set("X-Sentry-Auth", d.authHeader())
	resp, err := c.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot send report to %s: %w", d.envelope, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()

	now := time.Now()
	limit = rateLimit(resp, now)
	switch {
	case resp.StatusCode/100 == 2:
		return limit, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		if limit.IsZero() {
			limit = now.Add(time.Minute)
		}
		return limit, errRateLimited{until: limit}
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout:
		return limit, errRejected{status: resp.StatusCode}
	default:
		return limit, errStatus{url: d.envelope, status: resp.StatusCode}
	}
}

// rateLimit reads X-Sentry-Rate-Limits (limits for the "error" category
// or for all categories), else, on a 429, Retry-After. Zero means none.
func rateLimit(resp *http.Response, now time.Time) time.Time {
	var until time.Time
	if h := resp.Header.Get("X-Sentry-Rate-Limits"); h != "" {
		until = parseSentryRateLimits(h, now)
		return until
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		until = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return until
}

// parseSentryRateLimits parses "60:error;transaction:key, 2700::organization":
// comma-separated limits of retry_after:categories:scope[:reason], an
// empty category list meaning every category. It returns the furthest
// deadline that applies to events ("error", "default" or all).
func parseSentryRateLimits(h string, now time.Time) time.Time {
	var until time.Time
	for _, limit := range strings.Split(h, ",") {
		parts := strings.Split(strings.TrimSpace(limit), ":")
		secs, err := strconv.ParseFloat(strings.TrimSpace(parts[0]), 64)
		if err != nil || math.IsNaN(secs) || secs < 0 {
			continue
		}
		applies := len(parts) < 2 || strings.TrimSpace(parts[1]) == ""
		if !applies {
			for _, c := range strings.Split(parts[1], ";") {
				switch strings.ToLower(strings.TrimSpace(c)) {
				case "error", "default":
					applies = true
				}
			}
		}
		if !applies {
			continue
		}
		secs = math.Min(math.Ceil(secs), 24*3600)
		if t := now.Add(time.Duration(secs) * time.Second); t.After(until) {
			until = t
		}
	}
	return until
}

// parseRetryAfter parses Retry-After as seconds or an HTTP date; a
// missing or bad value means one minute, as Sentry's SDKs assume.
func parseRetryAfter(s string, now time.Time) time.Time {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
		return now.Add(time.Duration(min(n, 24*3600)) * time.Second)
	}
	if t, err := http.ParseTime(s); err == nil {
		return t
	}
	return now.Add(time.Minute)
}

func isPermanent(err error) bool {
	var r errRejected
	return errors.As(err, &r)
}

func asRateLimited(err error, rl *errRateLimited) bool { return errors.As(err, rl) }

// errStatus is an HTTP status the intake answered that is worth a retry.
type errStatus struct {
	url    string
	status int
}

func (e errStatus) Error() string { return fmt.Sprintf("intake %s answered HTTP %d", e.url, e.status) }

func isHTTPStatusErr(err error) bool {
	var s errStatus
	return errors.As(err, &s)
}
