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

// node is one JSON value, its members in the document's order.
type node struct {
	scalar string // the encoded value of a string, number, bool or null
	obj    bool
	arr    bool
	keys   []string
	kids   []*node
}

// parse reads one JSON value, hiding what must be hidden as it goes.
func parse(dec *json.Decoder, key string, hide bool) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	hide = hide || sensitiveName.MatchString(key)
	switch v := tok.(type) {
	case json.Delim:
		n := &node{obj: v == '{', arr: v == '['}
		for dec.More() {
			k := ""
			if n.obj {
				t, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ = t.(string)
			}
			kid, err := parse(dec, k, hide)
			if err != nil {
				return nil, err
			}
			n.keys, n.kids = append(n.keys, k), append(n.kids, kid)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		if hide {
			return &node{scalar: quote(redacted(v))}, nil
		}
		return &node{scalar: quote(sensitiveValue.ReplaceAllStringFunc(v, redacted))}, nil
	case json.Number:
		return &node{scalar: v.String()}, nil
	case bool:
		return &node{scalar: fmt.Sprint(v)}, nil
	}
	return &node{scalar: "null"}, nil
}

// inlineWidth is how wide a container may be to stay on one line.
const inlineWidth = 72

// flat is the one-line form of n, or "" if it is wider than inlineWidth.
func (n *node) flat() string {
	if !n.obj && !n.arr {
		return n.scalar
	}
	var b strings.Builder
	b.WriteString(map[bool]string{true: "{", false: "["}[n.obj])
	for i, k := range n.kids {
		if i > 0 {
			b.WriteString(", ")
		}
		if n.obj {
			b.WriteString(quote(n.keys[i]) + ": ")
		}
		f := k.flat()
		if f == "" || b.Len()+len(f) > inlineWidth {
			return ""
		}
		b.WriteString(f)
	}
	b.WriteString(map[bool]string{true: "}", false: "]"}[n.obj])
	if b.Len() > inlineWidth {
		return ""
	}
	return b.String()
}

type printer struct {
	b     strings.Builder
	limit int
	cut   bool
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

// node writes n indented by depth: short containers on one line.
func (p *printer) node(n *node, depth int) error {
	if f := n.flat(); f != "" {
		return p.write(f)
	}
	open, end := "[", "]"
	if n.obj {
		open, end = "{", "}"
	}
	if err := p.write(open); err != nil {
		return err
	}
	pad := "\n" + strings.Repeat("  ", depth+1)
	for i, k := range n.kids {
		sep := pad
		if i > 0 {
			sep = "," + pad
		}
		if n.obj {
			sep += quote(n.keys[i]) + ": "
		}
		if err := p.write(sep); err != nil {
			return err
		}
		if err := p.node(k, depth+1); err != nil {
			return err
		}
	}
	return p.write("\n" + strings.Repeat("  ", depth) + end)
}

func (p *printer) print(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := parse(dec, "", false)
	if err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("evidence: data after the JSON value")
	}
	return p.node(n, 0)
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
