package scanner

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestServiceClientCapsAHugeResponse(t *testing.T) {
	chunk := strings.Repeat("x", 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 2*MaxServiceBody/len(chunk); i++ { // twice the cap, streamed
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	resp, err := ServiceClient(nil).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if !errors.Is(err, ErrServiceBodyTooLarge) || n != MaxServiceBody {
		t.Fatalf("read %d bytes, err %v; want the cap (%d) and ErrServiceBodyTooLarge", n, err, MaxServiceBody)
	}
}
