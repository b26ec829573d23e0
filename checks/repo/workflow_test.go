package repo

import (
	"slices"
	"strings"
	"testing"
)

func TestPinnedWantsAFullCommitSHA(t *testing.T) {
	for ref, want := range map[string]bool{
		"actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683": true,
		"actions/checkout@v4":      false,
		"actions/checkout@11bd719": false, // short SHA
		"actions/checkout@11BD71901BBE5B1630CEEA73D27597364C9AF683": false, // git SHAs are lower case
		"actions/checkout":               false,
		"./.github/actions/scan-secrets": true,
		"docker://alpine:3.20":           false,
		"docker://alpine@sha256:0a4eaa0eecf5f8c050e5bba433f58c052be7587ee":              true,
		"org/repo/.github/workflows/build.yml@main":                                     false,
		"org/repo/.github/workflows/build.yml@11bd71901bbe5b1630ceea73d27597364c9af683": true,
	} {
		if got := pinned(ref); got != want {
			t.Errorf("pinned(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestParseWorkflowReadsTriggersPermissionsAndUses(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		on         []string
		hasPerms   bool
		perms      string
		writeAll   []string
		uses       []string
	}{
		{"on as a string", "on: push\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n", []string{"push"}, false, "", nil, []string{"actions/checkout@v4"}},
		{"on as a list, write-all", "on: [push, pull_request]\npermissions: write-all\njobs: {}\n", []string{"pull_request", "push"}, true, "write-all", nil, nil},
		{"on as a map, job write-all, reusable workflow", "on:\n  pull_request_target:\n    types: [opened]\npermissions:\n  contents: read\njobs:\n  call:\n    uses: o/r/.github/workflows/x.yml@v1\n  b:\n    permissions: write-all\n    steps:\n      - run: echo\n",
			[]string{"pull_request_target"}, true, "", []string{"b"}, []string{"o/r/.github/workflows/x.yml@v1"}},
		{"quoted on", "\"on\": workflow_run\njobs: {}\n", []string{"workflow_run"}, false, "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := parseWorkflow("w.yml", tc.text, false)
			if w.Error != "" {
				t.Fatal(w.Error)
			}
			var uses []string
			for _, u := range w.Uses {
				uses = append(uses, u.Ref)
			}
			if !slices.Equal(w.On, tc.on) || w.HasPermissions != tc.hasPerms || w.Permissions != tc.perms ||
				!slices.Equal(w.JobWriteAll, tc.writeAll) || !slices.Equal(uses, tc.uses) {
				t.Errorf("got on %v perms %v %q writeAll %v uses %v", w.On, w.HasPermissions, w.Permissions, w.JobWriteAll, uses)
			}
		})
	}
}

func TestRiskyTriggerIsACheckoutOfThePullRequestUnderTarget(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		risky      bool
	}{
		{"pull_request_target checking out the head", "on: pull_request_target\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n      - run: make\n", true},
		{"workflow_run checking out the run's head", "on:\n  workflow_run:\n    workflows: [ci]\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.workflow_run.head_sha }}\n", true},
		{"pull_request_target running gh pr checkout", "on: pull_request_target\njobs:\n  a:\n    steps:\n      - run: gh pr checkout ${{ github.event.number }}\n", true},
		{"pull_request_target that only labels", "on: pull_request_target\njobs:\n  a:\n    steps:\n      - uses: actions/labeler@v5\n", false},
		{"pull_request_target checking out the base", "on: pull_request_target\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n", false},
		{"pull_request checking out the head is fine", "on: pull_request\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why := riskyTrigger(parseWorkflow("w.yml", tc.text, false))
			if (why != "") != tc.risky {
				t.Errorf("riskyTrigger = %q, want risky %v", why, tc.risky)
			}
		})
	}
}

func TestParseWorkflowSurvivesHostileYAML(t *testing.T) {
	bomb := "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
	prev := "a"
	for i := range 9 {
		name := string(rune('b' + i))
		bomb += name + ": &" + name + " [*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + ",*" + prev + "]\n"
		prev = name
	}
	for _, text := range []string{bomb, "- a\n- b\n", "{{{{", strings.Repeat("[", 10000), "on: *x\n", "jobs: [1,2]\non: {}\n"} {
		w := parseWorkflow("w.yml", text, false)
		_ = riskyTrigger(w)
		_ = runsGitleaks(w)
	}
}

func FuzzParseWorkflow(f *testing.F) {
	for _, s := range []string{
		"on: push\npermissions: read-all\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n",
		"on:\n  pull_request_target:\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n",
		"runs:\n  using: composite\n  steps:\n    - uses: gitleaks/gitleaks-action@v2\n",
		"a: &a [1]\nb: *a\n",
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, text string, action bool) {
		w := parseWorkflow("w.yml", text, action)
		_ = riskyTrigger(w)
		_ = runsGitleaks(w)
		for _, u := range w.Uses {
			_ = pinned(u.Ref)
		}
	})
}

func FuzzParseDependabot(f *testing.F) {
	f.Add("version: 2\nupdates:\n  - package-ecosystem: github-actions\n    directory: /\n")
	f.Add("updates: 3\n")
	f.Fuzz(func(t *testing.T, text string) {
		parseDependabot(text)
	})
}
