package connector

import (
	"fmt"
	"net/url"
)

// CheckURL checks that raw is an absolute http(s) URL — a serviceUrl, an endpoint, a
// jwks_uri; what names it in the error.
func CheckURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute http(s) URL", what, raw)
	}
	return nil
}
