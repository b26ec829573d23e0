package takeover

import (
	"strings"
	"testing"
)

func TestTheEmbeddedListLoads(t *testing.T) {
	all, err := Services()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 76 {
		t.Fatalf("%d services, want the list's 76", len(all))
	}
	for _, s := range all {
		for _, sfx := range s.Suffixes {
			if strings.ContainsAny(sfx, ":/ ") || sfx != strings.ToLower(sfx) {
				t.Errorf("%s: suffix %q is not a lower-case domain name", s.Name, sfx)
			}
		}
	}
}

func TestMatchFindsTakeoverProneSuffixes(t *testing.T) {
	tests := []struct {
		host, service string
	}{
		{"trust-app.azurewebsites.net", "Microsoft Azure"},
		{"trust.trafficmanager.net.", "Microsoft Azure"},
		{"Trust.CloudApp.Net", "Microsoft Azure"},
		{"bucket.s3.amazonaws.com", "AWS/S3"},
		{"bucket.s3-website-eu-west-1.amazonaws.com", "AWS/S3"},
		{"bucket.s3.eu-west-2.amazonaws.com", "AWS/S3"},
		{"nhsx.github.io", "Github"},
		{"app.herokuapp.com", "Heroku"},
		{"na-west1.surge.sh", "Surge.sh"},
		{"x.elasticbeanstalk.com", "AWS/Elastic Beanstalk"},
		{"lb.elb.amazonaws.com", ""},       // the list says not vulnerable
		{"www.example.nhs.uk", ""},         // not a hosting service
		{"notazurewebsites.net", ""},       // a suffix matches whole labels only
		{"s3.amazonaws.com.evil.test", ""}, // nor anywhere but the end
	}
	for _, tt := range tests {
		s, _, ok := Match(tt.host)
		if ok != (tt.service != "") || s.Name != tt.service {
			t.Errorf("Match(%q) = %q, %v; want %q", tt.host, s.Name, ok, tt.service)
		}
	}
}

func TestFoundReadsTheListsFingerprintNotation(t *testing.T) {
	svc := func(fp string) Service { return Service{Fingerprint: fp} }
	tests := []struct {
		fp, body string
		want     bool
	}{
		{"The specified bucket does not exist", "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>", true},
		{"The specified bucket does not exist", "hello", false},
		{"Tunnel .*.ngrok.io not found", "Tunnel abc.ngrok.io not found", true},
		{"Tunnel .*.ngrok.io not found", "not found Tunnel", false},
		{"Company Not Found` `There is no such company. Did you enter the right URL?", "There is no such company. Did you enter the right URL?", true},
		{`Site unavailable\.&#124;Failed to resolve DNS path for this host`, "Failed to resolve DNS path for this host", true},
		{`Site unavailable\.&#124;Failed to resolve DNS path for this host`, "Site unavailable.", true},
		{"NXDOMAIN", "NXDOMAIN", false}, // a DNS signal, not page text
		{"HTTP_STATUS=301", "HTTP_STATUS=301", false},
		{"", "anything", false},
	}
	for _, tt := range tests {
		if got := svc(tt.fp).Found(tt.body); got != tt.want {
			t.Errorf("Found(%q in %q) = %v, want %v", tt.fp, tt.body, got, tt.want)
		}
	}
	if code, ok := svc("HTTP_STATUS=301").HTTPStatus(); !ok || code != 301 {
		t.Errorf("HTTPStatus() = %d, %v", code, ok)
	}
}

func FuzzFound(f *testing.F) {
	f.Add("Tunnel .*.ngrok.io not found", "Tunnel x.ngrok.io not found")
	f.Add(`a\.&#124;b`+"` `c", "b")
	f.Add(".*.*", "")
	f.Fuzz(func(t *testing.T, fp, body string) {
		s := Service{Fingerprint: fp}
		if s.Found(body) && !s.PageFingerprint() {
			t.Fatal("found a fingerprint that is not page text")
		}
	})
}
