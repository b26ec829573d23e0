package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// maxEvidenceShown bounds the pretty-printed evidence on a page; the store
// keeps up to 1 MiB a job, which indented is larger still.
const maxEvidenceShown = 128 << 10

// sensitiveName matches field names whose string values the dashboard never
// shows, whatever a check stored under them. repo.secrets.history keeps only
// a keyed hash ("hash") and a redacted excerpt ("redacted") of each leak;
// this is the second line of defence, for a check that one day stores more.
var sensitiveName = regexp.MustCompile(`(?i)(secret|token|passw(or)?d|pwd|credential|private.?key|api.?key|access.?key|^authorization$|^key$)`)

// sensitiveValue matches values that are secrets whatever their field.
var sensitiveValue = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}|\bAKIA[0-9A-Z]{16}\b|\bxox[abpr]-[A-Za-z0-9-]{10,}`)

// redacted is what a hidden value becomes.
func redacted(s string) string {
	return fmt.Sprintf("[hidden by the dashboard: %d characters]", len(s))
}

// prettyEvidence indents stored evidence JSON for reading, in its own key
// order, hiding the values of sensitive fields (and anything inside them)
// and any value that looks like a secret. It stops after limit bytes of
// output (cut true). Data that is not JSON is shown as text, cut and with
// secret-looking runs hidden.
func prettyEvidence(data []byte, limit int) (out string, cut bool) {
	if len(bytes.TrimSpace(data)) == 0 {
		return "", false
	}
	p := printer{limit: limit}
	if err := p.print(data); err != nil && !errors.Is(err, errCut) {
		s := sensitiveValue.ReplaceAllStringFunc(string(data), redacted)
		if len(s) > limit {
			return s[:limit], true
		}
		return s, false
	}
	return p.b.String(), p.cut
}

var errCut = errors.New("evidence cut")

type frame struct {
	obj       bool
	n         int  // members or elements so far
	wantKey   bool // in an object: the next token is a key
	sensitive bool // under a sensitive key: every string is hidden
}

type printer struct {
	b     strings.Builder
	limit int
	cut   bool
	stack []frame
	key   string // the last key read
}

func (p *printer) write(s string) error {
	if p.b.Len()+len(s) > p.limit {
		p.b.WriteString(s[:max(0, p.limit-p.b.Len())])
		p.cut = true
		return errCut
	}
	p.b.WriteString(s)
	return nil
}

func (p *printer) newline() error {
	return p.write("\n" + strings.Repeat("  ", len(p.stack)))
}

// value starts a value: separators, then marks the parent as waiting for
// its next key. It reports whether the value is to be hidden.
func (p *printer) value() (hide bool, err error) {
	if len(p.stack) == 0 {
		return false, nil
	}
	top := &p.stack[len(p.stack)-1]
	if top.obj {
		top.wantKey = true
		return top.sensitive || sensitiveName.MatchString(p.key), nil
	}
	if top.n > 0 {
		if err := p.write(","); err != nil {
			return false, err
		}
	}
	top.n++
	return top.sensitive, p.newline()
}

func (p *printer) print(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(p.stack) != 0 {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				hide, err := p.value()
				if err != nil {
					return err
				}
				if err := p.write(string(d)); err != nil {
					return err
				}
				p.stack = append(p.stack, frame{obj: d == '{', wantKey: d == '{', sensitive: hide})
			default:
				top := p.stack[len(p.stack)-1]
				p.stack = p.stack[:len(p.stack)-1]
				if top.n > 0 {
					if err := p.newline(); err != nil {
						return err
					}
				}
				if err := p.write(string(d)); err != nil {
					return err
				}
			}
			continue
		}
		if n := len(p.stack); n > 0 && p.stack[n-1].obj && p.stack[n-1].wantKey {
			top := &p.stack[n-1]
			k, _ := tok.(string)
			if top.n > 0 {
				if err := p.write(","); err != nil {
					return err
				}
			}
			top.n++
			top.wantKey = false
			p.key = k
			if err := p.newline(); err != nil {
				return err
			}
			if err := p.write(quote(k) + ": "); err != nil {
				return err
			}
			continue
		}
		hide, err := p.value()
		if err != nil {
			return err
		}
		var s string
		switch v := tok.(type) {
		case string:
			switch {
			case hide:
				s = quote(redacted(v))
			default:
				s = quote(sensitiveValue.ReplaceAllStringFunc(v, redacted))
			}
		case json.Number:
			s = v.String()
		case bool:
			s = fmt.Sprint(v)
		case nil:
			s = "null"
		}
		if err := p.write(s); err != nil {
			return err
		}
	}
}

// quote is JSON string quoting without HTML escaping: the page escapes
// (html/template), and readers should see < rather than \u003c.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
