package dlclient

import (
	"testing"
	"time"

	"github.com/bfbridge/bfbridge/activity"
)

// FuzzParseActivitySet feeds the stream's frame parser what an upstream might send.
func FuzzParseActivitySet(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `null`, `[]`, `"x"`, `{"activities":[]}`, `{"watermark":"1"}`,
		`{"activities":[{"type":"message","id":"c|0000001","from":{"id":"bot"},"text":"hi","attachments":[{"contentType":"x"}]}],"watermark":"1"}`,
		`{"activities":[null,1,"x",{"type":"typing"}],"watermark":7}`,
		`{"activities":[{"type":"message","timestamp":"not a time","channelData":{"a":[1,{}]}}],"watermark":null}`,
		`{"activities":[{"type":"message","from":{"role":1}}],"watermark":-1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		set, ok, err := parseActivitySet(b)
		if err != nil || !ok {
			if len(set.Activities) != 0 {
				t.Fatalf("activities from a frame that is not a set: %q", b)
			}
			return
		}
		if set.Watermark == "null" {
			t.Fatalf("a null watermark became %q", set.Watermark)
		}
		for _, a := range set.Activities {
			if _, err := activity.Marshal(a); err != nil {
				t.Fatalf("a parsed activity does not encode: %v", err)
			}
		}
	})
}

// FuzzTokenClaims reads tokens an upstream hands out.
func FuzzTokenClaims(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJjb252IjoiYyIsInVzZXIiOiJkbF91IiwiZXhwIjoxOTAwMDAwMDAwfQ.sig")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		now := time.Now()
		_, _ = tokenClaims(tok)
		if exp := tokenExpiry(tok, 0, now); exp.IsZero() {
			t.Fatal("no expiry")
		}
	})
}
