package es

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// WaitForCluster polls the cluster health until it is yellow or green, at
// most timeout. GET / is not used: some distributions answer it with 405.
func (c *Client) WaitForCluster(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		status, body, err := c.Do(ctx, http.MethodGet, "/_cluster/health?wait_for_status=yellow&timeout=5s", nil, "")
		switch {
		case err != nil:
			last = err
		case status == http.StatusOK:
			return nil
		default:
			last = fmt.Errorf("cluster health: status %d: %s", status, ErrorReason(body))
		}
		c.logger.Debug("waiting for elasticsearch", "urls", c.urls, "err", last)
		select {
		case <-ctx.Done():
			//lint:ignore ST1005 it begins with the name Elasticsearch
			return fmt.Errorf("Elasticsearch at %v not ready within %s: %w (check --es.urls and that the cluster is up)", c.urls, timeout, last)
		case <-time.After(time.Second):
		}
	}
}

// PutJSON sends v as JSON with PUT to path (an index template, an ILM
// policy…) and expects 200. PUT replaces what was there, so putting the
// same thing twice is harmless.
func (c *Client) PutJSON(ctx context.Context, path string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	status, resp, err := c.Do(ctx, http.MethodPut, path, body, "")
	if err != nil {
		return err
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return fmt.Errorf("status %d: %s", status, ErrorReason(resp))
	}
	return nil
}

// Refresh makes everything written so far to the indices of pattern (a
// name, a wildcard pattern or a comma-separated list of them) visible to
// searches. Writes do not need it for durability; tests and tools call it.
func (c *Client) Refresh(ctx context.Context, pattern string) error {
	status, body, err := c.Do(ctx, http.MethodPost, "/"+pattern+"/_refresh?allow_no_indices=true&ignore_unavailable=true", nil, "")
	if err != nil {
		return fmt.Errorf("cannot refresh %s: %w", pattern, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("cannot refresh %s: status %d: %s", pattern, status, ErrorReason(body))
	}
	return nil
}

// CheckIndexPrefix rejects prefixes Elasticsearch would refuse as index
// names or that would make an index pattern match foreign indices.
func CheckIndexPrefix(p string) error {
	if p != strings.ToLower(p) || strings.ContainsAny(p, `\/*?"<>| ,#:`) || strings.HasPrefix(p, "_") ||
		strings.HasPrefix(p, "-") || strings.HasPrefix(p, "+") || strings.HasPrefix(p, ".") {
		return fmt.Errorf("index prefix %q: must be lower case, must not start with _ - + . and must not contain \\ / * ? \" < > | , # : or spaces", p)
	}
	return nil
}
