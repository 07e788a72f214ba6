package otlptraces

import (
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/vigilhq/vigil/internal/model"
)

// putAttrs writes typed attributes into m.
func putAttrs(m pcommon.Map, attrs []model.TypedAttr) {
	m.EnsureCapacity(m.Len() + len(attrs))
	for _, a := range attrs {
		putAttr(m, a)
	}
}

func putAttr(m pcommon.Map, a model.TypedAttr) {
	switch a.Type {
	case model.AttrBool:
		m.PutBool(a.Key, a.Int != 0)
	case model.AttrInt64:
		m.PutInt(a.Key, a.Int)
	case model.AttrFloat64:
		m.PutDouble(a.Key, a.Float)
	case model.AttrBinary:
		m.PutEmptyBytes(a.Key).FromRaw([]byte(a.Str))
	default:
		m.PutStr(a.Key, a.Str)
	}
}

// typedAttr converts one OTLP value; arrays and maps become their JSON text.
func typedAttr(k string, v pcommon.Value) model.TypedAttr {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		a := model.TypedAttr{Key: k, Type: model.AttrBool}
		if v.Bool() {
			a.Int = 1
		}
		return a
	case pcommon.ValueTypeInt:
		return model.TypedAttr{Key: k, Type: model.AttrInt64, Int: v.Int()}
	case pcommon.ValueTypeDouble:
		return model.TypedAttr{Key: k, Type: model.AttrFloat64, Float: v.Double()}
	case pcommon.ValueTypeBytes:
		return model.TypedAttr{Key: k, Type: model.AttrBinary, Str: string(v.Bytes().AsRaw())}
	case pcommon.ValueTypeStr:
		return model.TypedAttr{Key: k, Type: model.AttrString, Str: v.Str()}
	}
	return model.TypedAttr{Key: k, Type: model.AttrString, Str: v.AsString()}
}

// appendAttrs appends the attributes of m to dst, skipping the keys skip
// reports.
func appendAttrs(dst []model.TypedAttr, m pcommon.Map, skip func(string) bool) []model.TypedAttr {
	for k, v := range m.All() {
		if skip != nil && skip(k) {
			continue
		}
		dst = append(dst, typedAttr(k, v))
	}
	return dst
}

func parseGrade(v pcommon.Value) int {
	var g int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		g = v.Int()
	default:
		g, _ = strconv.ParseInt(v.AsString(), 10, 64)
	}
	if g < 1 || g > 4 {
		return 0
	}
	return int(g)
}

// appendAttrsKey writes an unambiguous encoding of attrs to b, for grouping
// spans by resource.
func appendAttrsKey(b *strings.Builder, attrs []model.TypedAttr) {
	for _, a := range attrs {
		b.WriteString(strconv.Quote(a.Key))
		b.WriteByte(byte('0' + a.Type))
		b.WriteString(strconv.Quote(a.Str))
		b.WriteString(strconv.FormatInt(a.Int, 16))
		b.WriteByte(',')
		b.WriteString(strconv.FormatUint(math.Float64bits(a.Float), 16))
		b.WriteByte(';')
	}
}
