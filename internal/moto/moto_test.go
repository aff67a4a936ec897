package moto

import (
	"net/http"
	"strings"
	"testing"
)

// Two servers started at once listen on ports of their own: each answers
// as a server of its own (a bucket made on one is not on the other).
func TestStartGivesEachTestItsOwnServer(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two servers on one URL %s", a)
	}
	req, err := http.NewRequest(http.MethodPut, a+"/only-on-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260601/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for url, want := range map[string]int{a: http.StatusOK, b: http.StatusNotFound} {
		resp, err := http.Head(url + "/only-on-a")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("HEAD bucket on %s: %d, want %d", url, resp.StatusCode, want)
		}
	}
}

func TestBoundURL(t *testing.T) {
	out := "WARNING: This is a development server.\n * Running on http://127.0.0.1:33765\nPress CTRL+C to quit\n"
	if got := boundURL(strings.NewReader(out)); got != "http://127.0.0.1:33765" {
		t.Errorf("boundURL = %q", got)
	}
	if got := boundURL(strings.NewReader("Traceback (most recent call last):\nOSError: [Errno 98] Address already in use\n")); got != "" {
		t.Errorf("boundURL of a failed start = %q, want empty", got)
	}
}
