package es

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Search runs one search of body (a query DSL object) over index (a name,
// pattern or comma-separated list; missing indices match nothing) and
// decodes the answer into out.
func (c *Client) Search(ctx context.Context, index string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	status, resp, err := c.Do(ctx, http.MethodPost, "/"+index+"/_search?ignore_unavailable=true&allow_no_indices=true", b, "")
	if err != nil {
		return fmt.Errorf("cannot search %s: %w", index, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("cannot search %s: status %d: %s", index, status, ErrorReason(resp))
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("cannot parse search response of %s: %w", index, err)
	}
	return nil
}
