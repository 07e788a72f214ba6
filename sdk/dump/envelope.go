package dump

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// encodeEnvelope frames one event as a Sentry envelope
// (develop.sentry.dev/sdk/envelopes/): a header line, an item header line
// with the payload's length, the payload and a newline.
func encodeEnvelope(d dsn, eventID string, payload []byte) ([]byte, error) {
	hdr, err := json.Marshal(struct {
		EventID string  `json:"event_id"`
		DSN     string  `json:"dsn,omitempty"`
		SDK     sdkInfo `json:"sdk"`
	}{eventID, d.raw, sdkInfo{Name: sdkName, Version: Version}})
	if err != nil {
		return nil, fmt.Errorf("cannot encode envelope header: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(hdr) + len(payload) + 64)
	b.Write(hdr)
	fmt.Fprintf(&b, "\n{\"type\":\"event\",\"length\":%d,\"content_type\":\"application/json\"}\n", len(payload))
	b.Write(payload)
	b.WriteByte('\n')
	return b.Bytes(), nil
}
