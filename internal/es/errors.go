package es

import "github.com/valyala/fastjson"

// ErrorReason renders the error of a failed request's body, with its
// causes; a body without an error object is returned shortened (Snippet).
func ErrorReason(body []byte) string {
	var p fastjson.Parser
	v, err := p.ParseBytes(body)
	if err != nil || v.Get("error") == nil {
		return Snippet(body)
	}
	_, r := describeError(v.Get("error"))
	return r
}

// Snippet shortens a response body for an error message.
func Snippet(b []byte) string {
	const max = 512
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// describeError renders an Elasticsearch error object with its causes:
// "document_parsing_exception: [1:102] failed to parse field [vigil.grade] …
// (caused by illegal_argument_exception: Value [1000] is out of range for a byte)".
func describeError(e *fastjson.Value) (typ, reason string) {
	if e.Type() == fastjson.TypeString {
		s, _ := e.StringBytes()
		return "error", string(s)
	}
	typ = string(e.GetStringBytes("type"))
	reason = typ + ": " + shorten(e.GetStringBytes("reason"))
	for c, depth := e.Get("caused_by"), 0; c != nil && depth < 4; c, depth = c.Get("caused_by"), depth+1 {
		reason += " (caused by " + string(c.GetStringBytes("type")) + ": " + shorten(c.GetStringBytes("reason")) + ")"
	}
	if typ == "" {
		typ = "unknown"
	}
	return typ, reason
}

// maxReason bounds each message of a reason: Elasticsearch quotes the
// offending value, which can be the whole (huge) field.
const maxReason = 400

func shorten(b []byte) string {
	if len(b) <= maxReason {
		return string(b)
	}
	cut := maxReason
	for cut > 0 && b[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return string(b[:cut]) + "…"
}
