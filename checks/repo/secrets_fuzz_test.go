package repo

import (
	"strings"
	"testing"
)

// FuzzSecretsRepoConfig feeds hostile .gitleaks.toml and .gitleaksignore
// files (a repository's own, read from its tip) to the config merge and
// the ignore parser: they must return an error or a config, never panic
// (gitleaks compiles regular expressions with MustCompile), and the merged
// config keeps every default rule.
func FuzzSecretsRepoConfig(f *testing.F) {
	for _, s := range []string{
		"[extend]\nuseDefault = true\n\n[allowlist]\npaths = ['''testdata/''']\n",
		"[[allowlists]]\ntargetRules = [\"github-pat\", \"nope\"]\nregexes = ['''^ghp_x+$''']\n",
		"[[rules]]\nid = \"aws-access-token\"\n[[rules.allowlists]]\nstopwords = [\"example\"]\n",
		"[[rules]]\nid = \"aws-access-token\"\n[rules.allowlist]\nregexes = ['''(''']\n",
		"[allowlist]\ncondition = \"AND\"\ncommits = [\"abc\"]\n[[allowlists]]\npaths = ['''x''']\n",
		"[allowlist]\nregexTarget = \"line\"\nregexes = ['''.*''']\n",
		"title = 1\n[extend]\npath = \"/etc/passwd\"\n",
		"[[allowlists]]\n",
		"\x00\xff[[",
	} {
		f.Add(s, "a.go:rule:1\nc:a.go:rule:2\n")
	}
	def, err := secretsDefaultConfig()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, toml, ignore string) {
		if len(toml) > secretsMaxConfig || len(ignore) > secretsMaxConfig {
			return
		}
		cfg, n, err := secretsMergedConfig(toml)
		if err == nil {
			if n < 0 || len(cfg.Rules) != len(def.Rules) {
				t.Fatalf("merged config has %d rules, want the %d default ones (%d allowlists taken)", len(cfg.Rules), len(def.Rules), n)
			}
		}
		for k := range secretsIgnores(ignore) {
			if c := strings.Count(k, ":"); c != 2 && c != 3 {
				t.Fatalf("ignore key %q", k)
			}
		}
	})
}

// FuzzSecretsExcerpt: whatever the line around a secret, its excerpt
// never holds the secret (nor another secret found beside it).
func FuzzSecretsExcerpt(f *testing.F) {
	f.Add(`KEY = "AKIAQ3EGRHZ5LN2XK7VD"`, "AKIAQ3EGRHZ5LN2XK7VD", "AKIAQ3EGRHZ5LN2XK7VD", "other-secret-value", false)
	f.Add("x AKIAQ3EGRHZ5LN2XK7VD y AKIAQ3EGRHZ5LN2XK7VD", "AKIAQ3EGRHZ5LN2XK7VD", "y AKIAQ3EGRHZ5LN2XK7VD", "", false)
	f.Add("line one\ntoken: ghp_R8sT2kLm9QwXv4ZpB7nYc3JdF6hG1aEu5oVi\n", "ghp_R8sT2kLm9QwXv4ZpB7nYc3JdF6hG1aEu5oVi", "token: ghp_R8sT2kLm9QwXv4ZpB7nYc3JdF6hG1aEu5oVi", "line one", true)
	f.Add("é\xffsecretsecret", "secretsecret", "secretsecret", "é\xff", false)
	f.Fuzz(func(t *testing.T, line, secret, match, other string, coded bool) {
		if len(secret) < secretsMinHidden {
			return
		}
		all := []string{secret, match, other}
		got := secretsExcerpt(secretsFound{secret: secret, match: match, line: line, coded: coded}, all)
		for _, s := range []string{secret, other} {
			if len(s) >= secretsMinHidden && strings.Contains(got, s) {
				t.Fatalf("excerpt %q holds %q", got, s)
			}
		}
		if len(got) > secretsMaxExcerpt+64+len(secret)/4 {
			t.Fatalf("excerpt of %d bytes", len(got))
		}
	})
}
