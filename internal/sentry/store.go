package sentry

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"errors"
	"io"
)

// StorePayload returns the event JSON of a store request body, once its
// Content-Encoding is undone. Old SDKs (raven) sent the JSON deflated
// (zlib) and base64-encoded without saying so; such a body is decoded
// here, bounded by limit.
func StorePayload(body []byte, limit int64) ([]byte, error) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return nil, &EventError{Msg: "the body is empty; send the event as a JSON object"}
	}
	if b[0] == '{' {
		return b, nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		return nil, &EventError{Msg: "the body is neither a JSON object nor base64-encoded deflated JSON"}
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, &EventError{Msg: "the body is base64 but not deflated (zlib) JSON: " + err.Error()}
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if int64(len(out)) > limit {
		return nil, &LimitError{What: "store event (decompressed)", Limit: limit}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, &EventError{Msg: "cannot inflate the base64 body: " + err.Error()}
	}
	return out, nil
}
