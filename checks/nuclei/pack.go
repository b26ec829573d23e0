package nuclei

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/nhsx/posture/checks/check"
)

// PackVersion is the version of the embedded template pack. Bump it with
// any change to templates/*.yaml: it is recorded in the evidence, and the
// worker refuses a job for another pack.
const PackVersion = "2026.12.1"

// PackFS holds the embedded template pack, written for the NHS estate:
// exposures (web.exposure.*) and takeover fingerprints (web.takeover.*).
//
//go:embed templates/*.yaml templates/NOTICE templates/can-i-take-over-xyz.LICENSE
var PackFS embed.FS

// Template is one template of the pack: its catalogue entry and its hash.
type Template struct {
	ID   string // nuclei template id: "git-config"
	File string
	Hash string // sha256 of the file, hex
	Meta check.Meta
	// Paths are the http requests' paths ("{{BaseURL}}/.env").
	Paths []string
}

// packYAML is what the pack reads of a nuclei template.
type packYAML struct {
	ID   string `yaml:"id"`
	HTTP []struct {
		Path []string `yaml:"path"`
	} `yaml:"http"`
	Info struct {
		Name        string `yaml:"name"`
		Severity    string `yaml:"severity"`
		Description string `yaml:"description"`
		Remediation string `yaml:"remediation"`
		Metadata    struct {
			ID        string   `yaml:"posture-id"`
			Title     string   `yaml:"posture-title"`
			Standards []string `yaml:"posture-standards"`
		} `yaml:"metadata"`
	} `yaml:"info"`
}

var packIDRe = regexp.MustCompile(`^web\.(exposure|takeover)\.[a-z0-9][a-z0-9-]{0,40}$`)

// ParseTemplate reads a pack template's catalogue entry. Every field the
// catalogue needs must be there: adding a template is one YAML file.
func ParseTemplate(file string, b []byte) (Template, error) {
	var y packYAML
	if err := yaml.Unmarshal(b, &y); err != nil {
		return Template{}, fmt.Errorf("%s: %w", file, err)
	}
	md := y.Info.Metadata
	sev := check.Severity(strings.ToLower(y.Info.Severity))
	switch {
	case y.ID == "":
		return Template{}, fmt.Errorf("%s: no id", file)
	case !packIDRe.MatchString(md.ID):
		return Template{}, fmt.Errorf("%s: info.metadata.posture-id %q is not web.exposure.<name> or web.takeover.<service>", file, md.ID)
	case !slices.Contains([]check.Severity{check.Critical, check.High, check.Medium, check.Low, check.Info}, sev):
		return Template{}, fmt.Errorf("%s: severity %q", file, y.Info.Severity)
	case md.Title == "" || y.Info.Description == "" || y.Info.Remediation == "" || len(md.Standards) == 0:
		return Template{}, fmt.Errorf("%s: posture-title, description, remediation and posture-standards are required", file)
	}
	var refs []check.Ref
	for _, s := range md.Standards {
		p := strings.Split(s, "|")
		for len(p) < 4 {
			p = append(p, "")
		}
		refs = append(refs, check.Ref{Standard: p[0], Section: p[1], URL: p[2], Status: p[3]})
	}
	sum := sha256.Sum256(b)
	var paths []string
	for _, h := range y.HTTP {
		paths = append(paths, h.Path...)
	}
	return Template{ID: y.ID, File: file, Hash: hex.EncodeToString(sum[:]), Paths: paths, Meta: check.Meta{
		ID: md.ID, Rule: md.ID, Title: md.Title, Severity: sev,
		Description: strings.TrimSpace(y.Info.Description) + " (nuclei template " + y.ID + " of posture's pack.)",
		Remediation: strings.TrimSpace(y.Info.Remediation), Standards: refs,
	}}, nil
}

// Pack returns the embedded pack's templates, sorted by catalogue id. A
// template that does not parse is a build defect: it panics (a test reads
// the pack).
func Pack() []Template {
	ts, err := packLoad()
	if err != nil {
		panic(err)
	}
	return ts
}

var packLoad = sync.OnceValues(func() ([]Template, error) { return readPack(PackFS) })

func readPack(fsys fs.FS) ([]Template, error) {
	var out []Template
	seen := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		t, err := ParseTemplate(path.Base(p), b)
		if err != nil {
			return err
		}
		if o, dup := seen[t.Meta.ID]; dup {
			return fmt.Errorf("%s and %s both claim %s", o, t.File, t.Meta.ID)
		}
		if o, dup := seen["tmpl:"+t.ID]; dup {
			return fmt.Errorf("%s and %s have the same template id %s", o, t.File, t.ID)
		}
		seen[t.Meta.ID], seen["tmpl:"+t.ID] = t.File, t.File
		out = append(out, t)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Meta.ID < out[j].Meta.ID })
	return out, err
}
