package logql

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// lineFormatStage is `| line_format "template"`.
type lineFormatStage struct {
	idx  int // of the state's copy of tmpl
	tmpl *template.Template
}

func (s *lineFormatStage) process(_ string, st *state) bool {
	var b limitedBuilder
	if err := st.execute(s.idx, s.tmpl, &b, st.labelMap()); err != nil {
		st.setErrorDetails(ErrTemplateFormat, err.Error())
		return true
	}
	st.line = b.String()
	return true
}

// labelFormatStage is `| label_format a=b, c="template"`. Templates see
// the labels as they were before the stage's first template, as in Loki.
type labelFormatStage struct {
	formats []LabelFormat
	idx     []int // of each template format's state copy
	tmpls   []*template.Template
}

func (s *labelFormatStage) process(_ string, st *state) bool {
	var data map[string]string
	t := 0
	for i, f := range s.formats {
		if f.Rename {
			if v, ok := st.get(f.Src); ok {
				st.set(f.Dst, v)
				st.del(f.Src)
			}
			continue
		}
		if data == nil {
			data = st.labelMap()
		}
		var b limitedBuilder
		err := st.execute(s.idx[i], s.tmpls[t], &b, data)
		t++
		if err != nil {
			st.setErrorDetails(ErrTemplateFormat, err.Error())
			continue
		}
		st.set(f.Dst, b.String())
	}
	return true
}

// ansiEscape matches ANSI terminal escape sequences (colours, cursor
// movement), the same set Loki's decolorize removes.
var ansiEscape = regexp.MustCompile("[\u001B\u009B][[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u0007)|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))")

// decolorizeStage is `| decolorize`.
type decolorizeStage struct{}

func (decolorizeStage) process(line string, st *state) bool {
	if strings.ContainsAny(line, "\u001B\u009B") {
		st.line = ansiEscape.ReplaceAllString(line, "")
	}
	return true
}

// labelMap returns the current labels for a template.
func (st *state) labelMap() map[string]string {
	m := make(map[string]string, len(st.stream)+len(st.ext))
	st.each(func(name, value string) { m[name] = value })
	return m
}

// execute runs the state's copy of t, whose __line__ and __timestamp__
// read this state: a Pipeline is shared, its states are not.
func (st *state) execute(idx int, t *template.Template, b *limitedBuilder, data map[string]string) error {
	c := st.tmpl[idx]
	if c == nil {
		var err error
		if c, err = t.Clone(); err != nil {
			return err
		}
		c.Funcs(template.FuncMap{
			"__line__":      func() string { return st.line },
			"__timestamp__": func() time.Time { return time.Unix(0, st.ts).UTC() },
		})
		st.tmpl[idx] = c
	}
	return c.Execute(b, data)
}

// newTemplate parses a line_format or label_format template with Loki's
// template functions. A label that does not exist renders as "".
func newTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=zero").Funcs(templateFuncs).Parse(text)
}

// limitedBuilder is a strings.Builder that refuses to grow past
// maxTemplateOutput, which stops a template such as {{range 1000000000}}.
type limitedBuilder struct{ strings.Builder }

var errTemplateOutput = fmt.Errorf("template output longer than %d bytes", maxTemplateOutput)

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxTemplateOutput {
		return 0, errTemplateOutput
	}
	return b.Builder.Write(p)
}

func (b *limitedBuilder) WriteString(s string) (int, error) {
	if b.Len()+len(s) > maxTemplateOutput {
		return 0, errTemplateOutput
	}
	return b.Builder.WriteString(s)
}
