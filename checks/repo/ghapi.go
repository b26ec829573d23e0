package repo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/checks/check"
)

// The GitHub API as the repo.* and org.* collectors use it: a go-github
// v60 client on the configured "github" service (its client carries the
// token, the ETag cache and the rate-limit handling), and raw calls whose
// answers are kept as evidence.

// ghServiceName is the configured service that reaches the GitHub REST API
// (GitHub.com, GitHub Enterprise or the lab).
const ghServiceName = "github"

// Error classes of the repository collectors.
const (
	ghNoService check.ErrClass = "no-service" // no GitHub service is configured
	ghNotFound  check.ErrClass = "not-found"  // the repository or organisation is gone
	// ReasonNeedsAdmin is the reason of an unknown verdict on a setting
	// only an administrator (organisation owner) can read.
	ReasonNeedsAdmin = "needs-admin"
)

// Bounds on what one repository may cost.
const (
	ghMaxJSON      = 256 << 10 // bytes of one API answer kept as evidence
	ghMaxFile      = 256 << 10 // bytes of one file read
	ghMaxPaths     = 20000     // tree entries kept
	ghMaxWorkflows = 40        // workflow files read
)

func ghClient(env *check.Env) (*github.Client, error) {
	svc, ok := env.Service(ghServiceName)
	if !ok {
		return nil, check.WithClass(ghNoService, errors.New("no GitHub service is configured (--github-api)"))
	}
	u := *svc.URL
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	c := github.NewClient(svc.Client)
	c.BaseURL = &u
	return c, nil
}

// Call is one API answer as GitHub gave it: the status and the JSON body
// (bounded). A call that got no answer has Error and Class instead.
type Call struct {
	Status int             `json:"status,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
	// Truncated: the body was larger than the bound and is not kept.
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`
	Class     string `json:"class,omitempty"`
}

// OK reports whether the call was answered 2xx.
func (c *Call) OK() bool { return c != nil && c.Status >= 200 && c.Status < 300 }

// answered reports whether GitHub answered (any status).
func (c *Call) answered() bool { return c != nil && c.Status != 0 }

// ghCall GETs path (relative to the API base, query included) and records
// the answer. An HTTP error status is an answer, not an error; a transport
// failure (timeout, rate limit beyond the wait) is recorded with its class.
func ghCall(ctx context.Context, c *github.Client, path string) *Call {
	req, err := c.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		return &Call{Error: err.Error(), Class: string(check.ErrInternal)}
	}
	var raw json.RawMessage
	resp, err := c.Do(ctx, req, &raw)
	out := &Call{}
	if resp != nil && resp.Response != nil {
		out.Status = resp.StatusCode
	}
	var er *github.ErrorResponse
	switch {
	case err == nil:
	case errors.As(err, &er) && er.Response != nil:
		out.Status = er.Response.StatusCode
		b, _ := json.Marshal(map[string]string{"message": er.Message, "documentation_url": er.DocumentationURL})
		raw = b
	default:
		var rl *github.RateLimitError
		var ab *github.AbuseRateLimitError
		class := check.Classify(err)
		if errors.As(err, &rl) || errors.As(err, &ab) {
			class = "rate-limited"
		}
		return &Call{Error: fmt.Sprintf("GET %s: %v", path, err), Class: string(class)}
	}
	if len(raw) > ghMaxJSON {
		out.Truncated, raw = true, nil
	}
	out.Body = raw
	return out
}

// failed turns an unanswered call into a collection error.
func (c *Call) failed(what string) error {
	if c.answered() {
		if c.Status == http.StatusNotFound {
			return check.WithClass(ghNotFound, fmt.Errorf("%s: GitHub answered 404", what))
		}
		return fmt.Errorf("%s: GitHub answered %d", what, c.Status)
	}
	return check.WithClass(check.ErrClass(c.Class), errors.New(c.Error))
}

// ghPath escapes one path segment.
func ghPath(s string) string { return url.PathEscape(s) }

// ghFilePath escapes a file path, keeping its slashes.
func ghFilePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// File is one file read through the contents API.
type File struct {
	Path      string `json:"path"`
	Size      int    `json:"size"`
	Text      string `json:"text,omitempty"` // the content, up to ghMaxFile bytes
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"` // could not be read (the class in Class)
	Class     string `json:"class,omitempty"`
}

// ghReadFile reads a file of the default branch through the contents API.
func ghReadFile(ctx context.Context, c *github.Client, owner, name, ref, p string) File {
	call := ghCall(ctx, c, "repos/"+ghPath(owner)+"/"+ghPath(name)+"/contents/"+ghFilePath(p)+"?ref="+url.QueryEscape(ref))
	f := File{Path: p}
	if !call.OK() {
		if call.answered() {
			f.Error, f.Class = fmt.Sprintf("GitHub answered %d", call.Status), "status"
		} else {
			f.Error, f.Class = call.Error, call.Class
		}
		return f
	}
	var body struct {
		Type     string `json:"type"`
		Encoding string `json:"encoding"`
		Size     int    `json:"size"`
		Content  string `json:"content"`
	}
	if call.Truncated || json.Unmarshal(call.Body, &body) != nil || body.Type != "file" {
		f.Error, f.Class = "not a file, or too large for the contents API", string(check.ErrTooLarge)
		return f
	}
	f.Size = body.Size
	if body.Encoding != "base64" {
		f.Error, f.Class = "content not given (encoding "+body.Encoding+")", string(check.ErrTooLarge)
		return f
	}
	b, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\n", "", "\r", "").Replace(body.Content))
	if err != nil {
		f.Error, f.Class = "content does not decode: "+err.Error(), string(check.ErrMalformed)
		return f
	}
	if len(b) > ghMaxFile {
		b, f.Truncated = b[:ghMaxFile], true
	}
	f.Text = string(b)
	return f
}
