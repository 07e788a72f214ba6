// Package ui serves Vigil's web UI: static assets embedded in the binary,
// written as plain ES modules with no build step, that read the same query
// APIs (Loki, Jaeger, Prometheus, profiles, dumps) Grafana and the other
// clients use. The page is served at the root of the query port; the
// assets under /ui/. Navigation happens in the URL's fragment
// (#/logs?query=…), so every view is a link that can be shared and no
// route of the UI can shadow an API path.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed assets
var assets embed.FS

// asset is one file, kept as is and gzipped once at start-up.
type asset struct {
	body, gz    []byte
	contentType string
	etag        string
}

// Handler serves the UI's assets.
type Handler struct {
	files map[string]*asset // by path under assets/, e.g. "lib/api.js"
}

// New reads and compresses the embedded assets.
func New() (*Handler, error) {
	h := &Handler{files: map[string]*asset{}}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if _, err := zw.Write(body); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.files[strings.TrimPrefix(p, "assets/")] = &asset{
			body: body, gz: gz.Bytes(), contentType: ct,
			etag: `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read the UI's assets: %w", err)
	}
	if h.files["index.html"] == nil {
		return nil, fmt.Errorf("the UI's assets have no index.html")
	}
	return h, nil
}

// RegisterHTTP serves the page at / (only the root: every other path stays
// the APIs', and an unknown one is still a 404) and the assets under /ui/.
func (h *Handler) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "index.html") })
	mux.HandleFunc("GET /ui/{file...}", func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, r.PathValue("file"))
	})
}

// Sizes returns the assets' total size, as stored and gzipped.
func (h *Handler) Sizes() (raw, gzipped int) {
	for _, a := range h.files {
		raw += len(a.body)
		gzipped += len(a.gz)
	}
	return raw, gzipped
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string) {
	a := h.files[name]
	if a == nil {
		http.Error(w, fmt.Sprintf("no UI asset %q", name), http.StatusNotFound)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	// Revalidated on every load: the assets carry no version in their names,
	// and an upgraded binary must not run against yesterday's scripts.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	hdr.Set("Vary", "Accept-Encoding")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if name == "index.html" {
		// Everything the page loads is its own: no CDN, no external font.
		hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors 'self'")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		hdr.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hdr.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		if v, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
			q, err := strconv.ParseFloat(v, 64)
			return err == nil && q > 0
		}
		return true
	}
	return false
}
