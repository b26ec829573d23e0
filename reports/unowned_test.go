package reports

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

type unownedSource struct {
	*memSource
	us []Unowned
}

func (u unownedSource) Unowned(context.Context, int64) ([]Unowned, error) { return u.us, nil }

// TestBoardListsUnownedNamesEscaped: a source that lists unowned names
// gets a board section with them (a hostile name escaped); one that does
// not gets no section.
func TestBoardListsUnownedNamesEscaped(t *testing.T) {
	src := unownedSource{fixture(), []Unowned{{Name: "www.nobody.nhs.uk", Source: "ct", Via: "example.nhs.uk"},
		{Name: "<script>x</script>.nhs.uk", Source: "cname", Via: "old.example.nhs.uk"}}}
	s, err := BuildSummary(context.Background(), src, testCatalogue(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteBoard(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if s.UnownedTotal != 2 || !strings.Contains(out, "Unowned assets") || !strings.Contains(out, "www.nobody.nhs.uk") ||
		strings.Contains(out, "<script>x") || !strings.Contains(out, `<td>ct</td><td class="n">1</td>`) {
		t.Errorf("total %d; board section missing or unescaped:\n%s", s.UnownedTotal, out)
	}
	b.Reset()
	if err := WriteBoard(&b, mustSummary(t, fixture())); err != nil || strings.Contains(b.String(), "Unowned assets") {
		t.Errorf("a source without unowned names: section shown (%v)", err)
	}
}
