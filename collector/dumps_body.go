package collector

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strings"

	"github.com/vigilhq/vigil/internal/sentry"
)

// decodeBody returns the body of r decoded as its Content-Encoding says
// (gzip, deflate, or none), bounded as Sentry bounds it: on the wire by
// plainLimit when it is not encoded and compressedLimit when it is, and
// once decoded by decodedLimit. Reads past a bound fail with a
// *sentry.LimitError naming it. what names the body in those errors.
func decodeBody(w http.ResponseWriter, r *http.Request, what string, plainLimit, compressedLimit, decodedLimit int64) (io.Reader, func(), *intakeError) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	wire, wireWhat := plainLimit, what
	if enc != "" && enc != "identity" {
		wire, wireWhat = compressedLimit, what+" (compressed)"
	}
	if r.ContentLength > wire {
		return nil, nil, readError(&sentry.LimitError{What: wireWhat, Limit: wire})
	}
	body := &limitedReader{r: r.Body, left: wire, err: &sentry.LimitError{What: wireWhat, Limit: wire}}
	var rd io.Reader
	closer := func() {}
	switch enc {
	case "", "identity":
		return &limitedReader{r: body, left: min(wire, decodedLimit), err: &sentry.LimitError{What: what, Limit: min(wire, decodedLimit)}}, closer, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, nil, readError(&bodyError{enc: enc, err: err})
		}
		rd, closer = zr, func() { _ = zr.Close() }
	case "deflate":
		// HTTP's deflate is zlib; some clients send raw deflate.
		br := bufio.NewReader(body)
		if b, err := br.Peek(2); err == nil && b[0]&0x0f == 8 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, nil, readError(&bodyError{enc: enc, err: err})
			}
			rd, closer = zr, func() { _ = zr.Close() }
		} else {
			fr := flate.NewReader(br)
			rd, closer = fr, func() { _ = fr.Close() }
		}
	default:
		return nil, nil, refuse(http.StatusUnsupportedMediaType, "unsupported_encoding", "Content-Encoding %q is not supported; send gzip, deflate or an uncompressed body", clipKey(enc))
	}
	return &limitedReader{r: rd, left: decodedLimit, err: &sentry.LimitError{What: what + " (decompressed)", Limit: decodedLimit}}, closer, nil
}

// bodyError is a body that does not decode as its Content-Encoding says.
type bodyError struct {
	enc string
	err error
}

func (e *bodyError) Error() string { return "the body is not valid " + e.enc + ": " + e.err.Error() }

// limitedReader reads at most left bytes of r and fails with err past
// them.
type limitedReader struct {
	r    io.Reader
	left int64
	err  error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, l.err
	}
	return n, err
}
