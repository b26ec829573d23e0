package dashboard

import (
	"strings"
	"testing"
)

// TestPrettyEvidenceHidesSecrets: values under sensitive names (and all
// strings inside them) and values shaped like secrets are hidden; the rest
// is indented in the evidence's own key order.
func TestPrettyEvidenceHidesSecrets(t *testing.T) {
	ghToken := "ghp_" + strings.Repeat("A1b2", 9)
	pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----"
	cases := []struct {
		name     string
		in       string
		hidden   []string // must not appear
		shown    []string // must appear
		wantCut  bool
		limit    int
		wantText string // exact output, when given
	}{
		{name: "order kept, short on one line", in: `{"b":1,"a":[true,null,"x"],"c":{}}`,
			wantText: `{"b": 1, "a": [true, null, "x"], "c": {}}`},
		{name: "long indented", in: `{"z":"` + strings.Repeat("z", 70) + `","a":{"values":["70"],"count":1}}`,
			wantText: "{\n  \"z\": \"" + strings.Repeat("z", 70) + "\",\n  \"a\": {\"values\": [\"70\"], \"count\": 1}\n}"},
		{name: "sensitive names", in: `{"token":"t0k3n-value","client_secret":"s3cr3t-value","password":"pw-value","Authorization":"Bearer abc","key":"k-value","api_key":"ak-value"}`,
			hidden: []string{"t0k3n-value", "s3cr3t-value", "pw-value", "Bearer abc", "k-value", "ak-value"},
			shown:  []string{`"token": "[hidden by the dashboard: 11 characters]"`}},
		{name: "everything under a sensitive name", in: `{"secrets":{"live":["value-one",{"x":"value-two"}],"n":3}}`,
			hidden: []string{"value-one", "value-two"}, shown: []string{`"n": 3`}},
		{name: "secret-shaped values anywhere", in: `{"line":"export GITHUB_TOKEN=` + ghToken + `","file":` + jsonString(pem) + `,"aws":"id AKIAABCDEFGHIJKLMNOP"}`,
			hidden: []string{ghToken, "BEGIN RSA PRIVATE KEY", "AKIAABCDEFGHIJKLMNOP"}, shown: []string{"export GITHUB_TOKEN=[hidden"}},
		{name: "what the secrets check keeps is shown", in: `{"leaks":[{"hash":"hmac-sha256:abcd","redacted":"ghp_…[40 redacted]","key_id":"7ee8be5d"}]}`,
			shown: []string{"hmac-sha256:abcd", "ghp_…[40 redacted]", "7ee8be5d"}},
		{name: "html is left to the template", in: `{"server":"<script>alert(1)</script>"}`,
			shown: []string{`"<script>alert(1)</script>"`}},
		{name: "cut at the limit", in: `{"a":"` + strings.Repeat("x", 5000) + `"}`, limit: 100, wantCut: true},
		{name: "not JSON is shown as text", in: `not json ` + ghToken, hidden: []string{ghToken}, shown: []string{"not json [hidden"}},
		{name: "half a document", in: `{"a":[1,2`, shown: []string{`{"a":[1,2`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			limit := c.limit
			if limit == 0 {
				limit = maxEvidenceShown
			}
			out, cut := prettyEvidence([]byte(c.in), limit)
			if cut != c.wantCut {
				t.Errorf("cut %v, want %v", cut, c.wantCut)
			}
			if len(out) > limit {
				t.Errorf("%d bytes out, over the limit %d", len(out), limit)
			}
			if c.wantText != "" && out != c.wantText {
				t.Errorf("got\n%s\nwant\n%s", out, c.wantText)
			}
			for _, h := range c.hidden {
				if strings.Contains(out, h) {
					t.Errorf("%q is shown:\n%s", h, out)
				}
			}
			for _, s := range c.shown {
				if !strings.Contains(out, s) {
					t.Errorf("%q is not shown:\n%s", s, out)
				}
			}
		})
	}
}

func jsonString(s string) string { return quote(s) }

// TestClipHidesSecretsInText: messages shown on the dashboard's own pages
// go through clip, which bounds them and hides secret-shaped values.
func TestClipHidesSecretsInText(t *testing.T) {
	tok := "ghp_" + strings.Repeat("Zz09", 9)
	got := clip("token "+tok+" in deploy.sh", 2000)
	if strings.Contains(got, tok) || !strings.Contains(got, "token [hidden by the dashboard: 40 characters] in deploy.sh") {
		t.Errorf("clip: %q", got)
	}
	if got := clip(strings.Repeat("é", 10), 4); got != "éééé… (cut)" {
		t.Errorf("clip cut: %q", got)
	}
}
