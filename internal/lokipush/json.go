package lokipush

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/model"
)

// decodeJSON decodes Loki's JSON push body:
//
//	{"streams": [{"stream": {"label": "value"},
//	              "values": [["<unix ns>", "<line>"], ["<unix ns>", "<line>", {"key": "value"}]]}]}
func (d *Decoder) decodeJSON(data []byte) error {
	v, err := d.p.ParseBytes(data)
	if err != nil {
		return fmt.Errorf("cannot parse JSON body: %w", err)
	}
	if v.Type() != fastjson.TypeObject {
		return fmt.Errorf("JSON body: want an object {\"streams\": [...]}, got %s", v.Type())
	}
	sv := v.Get("streams")
	if sv == nil || sv.Type() == fastjson.TypeNull {
		return nil
	}
	streams, err := sv.Array()
	if err != nil {
		return fmt.Errorf("JSON body: field \"streams\": want an array, got %s", sv.Type())
	}
	for i, jv := range streams {
		where := fmt.Sprintf("streams[%d]", i)
		obj, err := jv.Object()
		if err != nil {
			return fmt.Errorf("%s: want an object, got %s", where, jv.Type())
		}
		s := d.req.addStream()
		if lv := obj.Get("stream"); lv != nil && lv.Type() != fastjson.TypeNull {
			if s.labels, err = jsonLabels(lv); err != nil {
				return fmt.Errorf("%s.stream: %w", where, err)
			}
			s.hasLabels = true
		}
		vv := obj.Get("values")
		if vv == nil || vv.Type() == fastjson.TypeNull {
			continue
		}
		values, err := vv.Array()
		if err != nil {
			return fmt.Errorf("%s.values: want an array, got %s", where, vv.Type())
		}
		for j, ev := range values {
			if ev.Type() == fastjson.TypeNull {
				continue
			}
			if err := jsonEntry(s.addEntry(), ev); err != nil {
				return fmt.Errorf("%s.values[%d]: %w", where, j, err)
			}
		}
	}
	return nil
}

// jsonLabels formats a JSON object of labels in series notation, sorted
// by name as Loki does, so the stream is parsed like a protobuf one.
func jsonLabels(v *fastjson.Value) (string, error) {
	obj, err := v.Object()
	if err != nil {
		return "", fmt.Errorf("want an object of labels, got %s", v.Type())
	}
	type kv struct{ k, v string }
	var ls []kv
	obj.Visit(func(key []byte, f *fastjson.Value) {
		if err != nil {
			return
		}
		var s string
		if s, err = jsonString(f, true); err != nil {
			err = fmt.Errorf("label %q: %w", key, err)
			return
		}
		ls = append(ls, kv{string(key), s})
	})
	if err != nil {
		return "", err
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].k < ls[j].k })
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		if isName(l.k) {
			b.WriteString(l.k)
		} else {
			b.WriteString(strconv.Quote(l.k))
		}
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.v))
	}
	b.WriteByte('}')
	return b.String(), nil
}

// jsonEntry decodes ["<unix ns>", "<line>"] or ["<unix ns>", "<line>",
// {structured metadata}].
func jsonEntry(e *entry, v *fastjson.Value) error {
	a, err := v.Array()
	if err != nil {
		return fmt.Errorf("want an array [\"<unix ns>\", \"<line>\"], got %s", v.Type())
	}
	if len(a) < 2 || len(a) > 3 {
		return fmt.Errorf("want 2 or 3 values [\"<unix ns>\", \"<line>\", {metadata}], got %d", len(a))
	}
	switch a[0].Type() {
	case fastjson.TypeString:
		s := string(a[0].GetStringBytes())
		if e.ts, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("timestamp: cannot parse %q as Unix nanoseconds", s)
		}
	case fastjson.TypeNumber:
		if e.ts, err = a[0].Int64(); err != nil {
			return fmt.Errorf("timestamp: cannot parse %s as Unix nanoseconds", a[0])
		}
	default:
		return fmt.Errorf("timestamp: want a string of Unix nanoseconds, got %s", a[0].Type())
	}
	if a[1].Type() != fastjson.TypeString {
		return fmt.Errorf("line: want a string, got %s", a[1].Type())
	}
	e.line = string(a[1].GetStringBytes())
	if len(a) == 3 && a[2].Type() != fastjson.TypeNull {
		obj, err := a[2].Object()
		if err != nil {
			return fmt.Errorf("structured metadata: want an object, got %s", a[2].Type())
		}
		obj.Visit(func(key []byte, f *fastjson.Value) {
			if err != nil {
				return
			}
			var s string
			if s, err = jsonString(f, false); err != nil {
				err = fmt.Errorf("structured metadata %q: %w", key, err)
				return
			}
			e.metadata = append(e.metadata, model.Attr{Key: string(key), Value: s})
		})
		return err
	}
	return nil
}

func jsonString(v *fastjson.Value, numbers bool) (string, error) {
	switch v.Type() {
	case fastjson.TypeString:
		return string(v.GetStringBytes()), nil
	case fastjson.TypeNumber:
		if numbers {
			return v.String(), nil
		}
	}
	return "", fmt.Errorf("want a string, got %s", v.Type())
}
