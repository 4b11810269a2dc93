package app

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzListQuery: the list's query parameters, from outside, either parse into a bounded limit
// or give a message; never a panic.
func FuzzListQuery(f *testing.F) {
	for _, q := range []string{"", "limit=5", "limit=0", "limit=-1", "limit=501", "cursor=%%%", "cursor=YWJj",
		"updated_since=2025-06-01T00:00:00Z", "updated_since=yesterday", "state=agent&channel=desk&customer=u1"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/admin/v1/conversations", nil)
		r.URL.RawQuery = q
		_, _, limit, msg := listQuery(r)
		if msg == "" {
			require.GreaterOrEqual(t, limit, 1)
			require.LessOrEqual(t, limit, adminListMax)
		}
		if v, err := url.ParseQuery(q); err == nil && v.Get("limit") == "501" {
			require.NotEmpty(t, msg)
		}
	})
}
