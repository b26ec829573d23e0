package lab

import (
	"fmt"
	"html"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/checks/webcheck"
)

// exposureFamily: the lab of web.nuclei (web.exposure.*, web.takeover.*).
// Each case is a www host that exposes one thing the pack looks for (a
// .git directory, a .env file, server-status, a directory listing,
// phpinfo(), a default install page, a phpMyAdmin login, a backup, an
// unclaimed S3 bucket's page), and two decoys that must not match: a site
// that answers 200 with the same page for every path (a soft 404) and a
// page that merely talks about phpinfo, .env and .git.
//
// Its Complete states every pack id on every host another family judges,
// from what web.https finds there (webExpectHost): a host that answers
// HTTPS passes (nothing of the pack is served by the other families'
// handlers), a host whose HTTPS port refuses is not applicable (nothing
// to inspect), and a host that cannot answer (dead, a tarpit, a broken
// handshake) is unknown.
var exposureFamily = Family{Name: "exposure", Cases: exposureCases, Complete: completeExposure}

// exposurePage is one path a lab host serves.
type exposurePage struct {
	ctype string
	body  string
}

// exposureSite serves pages by path; "/" falls back to the lab's good
// page and anything else is a 404 (the good page's), unless soft is set:
// then every other path answers 200 with the home page.
func exposureSite(host string, pages map[string]exposurePage, soft bool) http.Handler {
	good := goodPage(host)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pages[r.URL.Path]
		if !ok && soft {
			p, ok = pages["/"]
		}
		if !ok {
			good.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Strict-Transport-Security", webHSTS)
		w.Header().Set("Content-Type", p.ctype)
		fmt.Fprint(w, p.body)
	})
}

const (
	exposureHTML = "text/html; charset=utf-8"
	exposureText = "text/plain; charset=utf-8"
)

func exposureCases() []Case {
	// A test binary is not a posture binary: it builds the worker
	// web.nuclei runs, in the background from the lab's start.
	nuclei.PrepareWorker()
	c := func(name, fails string, soft bool, pages func(host string) map[string]exposurePage) Case {
		return Case{Name: name, Family: "exposure", Build: func(d string) Domain {
			www := "www." + d
			w := map[string]check.Outcome{}
			for _, id := range nuclei.IDs() {
				w[id] = check.Pass
			}
			if fails != "" {
				w[fails] = check.Fail
			}
			dom := Domain{Name: d, Hosts: []Host{{Name: www, Web: &WebSpec{HTTPS: exposureSite(www, pages(www), soft)}}}}
			for _, id := range slices.Sorted(maps.Keys(w)) {
				dom.Expect = append(dom.Expect, Expect{Kind: check.KindHost, Name: www, CheckID: id, Outcome: w[id]})
			}
			return dom
		}}
	}
	page := func(title, body string) exposurePage {
		return exposurePage{exposureHTML, "<!doctype html><html><head><title>" + title + "</title></head><body>" + body + "</body></html>\n"}
	}
	return []Case{
		c("exposure-git", "web.exposure.git-config", false, func(string) map[string]exposurePage {
			return map[string]exposurePage{
				"/.git/config": {exposureText, "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n[remote \"origin\"]\n\turl = https://github.com/nhs-lab/intranet.git\n"},
				"/.git/HEAD":   {exposureText, "ref: refs/heads/main\n"},
			}
		}),
		c("exposure-env", "web.exposure.env-file", false, func(string) map[string]exposurePage {
			return map[string]exposurePage{"/.env": {"application/octet-stream",
				"APP_ENV=production\nAPP_KEY=base64:bGFiLW5vdC1hLXJlYWwta2V5LWF0LWFsbA==\nDB_HOST=10.0.0.5\nDB_PASSWORD=lab-not-a-secret\n"}}
		}),
		c("exposure-server-status", "web.exposure.server-status", false, func(h string) map[string]exposurePage {
			return map[string]exposurePage{"/server-status": page("Apache Status",
				"<h1>Apache Server Status for "+h+" (via 127.0.0.1)</h1><dl><dt>Server Version: Apache/2.4.58 (Ubuntu)</dt><dt>Current Time: Tuesday</dt></dl>")}
		}),
		c("exposure-listing", "web.exposure.directory-listing", false, func(string) map[string]exposurePage {
			return map[string]exposurePage{"/files/": page("Index of /files",
				"<h1>Index of /files</h1><pre><a href=\"../\">../</a>\n<a href=\"rota-2026.xlsx\">rota-2026.xlsx</a>  01-Dec-2026 09:00  48213\n</pre>")}
		}),
		c("exposure-phpinfo", "web.exposure.phpinfo", false, func(string) map[string]exposurePage {
			return map[string]exposurePage{"/info.php": page("phpinfo()",
				"<div class=\"center\"><table><tr class=\"h\"><td><h1 class=\"p\">PHP Version 8.2.7</h1></td></tr></table>"+
					"<table><tr><td class=\"e\">System </td><td class=\"v\">Linux web01 </td></tr></table></div>")}
		}),
		c("exposure-default-page", "web.exposure.default-page", false, func(string) map[string]exposurePage {
			return map[string]exposurePage{"/": page("Welcome to nginx!",
				"<h1>Welcome to nginx!</h1><p>If you see this page, the nginx web server is successfully installed and working.</p>")}
		}),
		c("exposure-admin", "web.exposure.admin-panel", false, func(string) map[string]exposurePage {
			return map[string]exposurePage{"/phpmyadmin/": page("phpMyAdmin",
				"<form method=\"post\" action=\"index.php\"><input type=\"text\" name=\"pma_username\" id=\"input_username\"><input type=\"password\" name=\"pma_password\"></form>")}
		}),
		c("exposure-backup", "web.exposure.backup-file", false, func(string) map[string]exposurePage {
			return map[string]exposurePage{"/backup.zip": {"application/zip", "PK\x03\x04\x14\x00\x00\x00\x08\x00lab-backup"}}
		}),
		c("exposure-takeover", "web.takeover.aws-s3", false, func(h string) map[string]exposurePage {
			return map[string]exposurePage{"/": {"application/xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>" +
				html.EscapeString(h) + "</BucketName></Error>"}}
		}),
		// Decoys: nothing may match.
		c("exposure-soft404", "", true, func(string) map[string]exposurePage {
			return map[string]exposurePage{"/": page("Trust intranet", "<h1>Page not found</h1><p>Try the search box. KEY=value pairs are not shown here.</p>")}
		}),
		c("exposure-mentions", "", false, func(string) map[string]exposurePage {
			return map[string]exposurePage{"/": page("Hardening notes",
				"<p>Never leave phpinfo() pages, a .env file, /server-status or a .git directory on a server. "+
					"Index of / listings and backup.zip files are also bad. [core] repositoryformatversion is in .git/config.</p>")}
		}),
	}
}

// completeExposure states the pack's ids on every judged host of d that
// has none yet (the family's own cases state theirs).
func completeExposure(d *Domain, _ Case, _ Added, _ []Case) {
	stated := func(n string) bool {
		return slices.ContainsFunc(d.Expect, func(e Expect) bool {
			return e.Kind == check.KindHost && e.Name == n && strings.HasPrefix(e.CheckID, "web.exposure.")
		})
	}
	for _, h := range webJudgedHosts(d, stated) {
		n := h.Name
		o := exposureOutcome(webExpectHost(n, d.Name, h.Spec, h.TLS13)[webcheck.HTTPSAvailable])
		for _, t := range nuclei.Pack() {
			to := o
			if o == check.Pass && exposureUnreadable(n) {
				to = check.Unknown
			}
			d.Expect = append(d.Expect, Expect{Kind: check.KindHost, Name: n, CheckID: t.Meta.ID, Outcome: to})
		}
	}
}

// exposureUnreadable names the hosts of hostile.go where web.nuclei
// cannot tell: slow.<d> sends its body a byte a second (requests time
// out, and no clean result from a host that timed out is trusted), and
// many.<d> sends 20,000 headers (about 420 KB: every connection passes
// the proxy's 384 KiB cap and is cut). huge.<d> and bomb.<d> pass: nuclei
// reads its 256 KiB of their bodies before the cut.
func exposureUnreadable(host string) bool {
	first, d, _ := strings.Cut(host, ".")
	return (first == "slow" || first == "many") && strings.HasPrefix(d, "lab-web-hostile")
}

// exposureOutcome maps web.https.available's truth to the pack's on a
// host that serves nothing the pack looks for.
func exposureOutcome(https check.Outcome) check.Outcome {
	switch https {
	case check.Pass:
		return check.Pass
	case check.Unknown:
		return check.Unknown
	}
	return check.NA // 443 refuses (fail) or no web server (n/a)
}
