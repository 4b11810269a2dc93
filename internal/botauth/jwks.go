package botauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"

	"github.com/bfbridge/bfbridge/internal/connector"
)

// maxDocumentBytes bounds a fetched OpenID metadata document or JWKS.
const maxDocumentBytes = 1 << 20

// openIDMetadata is the part of an OpenID metadata document that is read.
type openIDMetadata struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// resolve builds the keyfunc: over the fixed JWKS, or over the jwks_uri of the metadata.
func (v *Verifier) resolve(ctx context.Context) (keyfunc.Keyfunc, []string, error) {
	o := v.opts
	if o.JWKS != nil {
		kf, err := keyfunc.NewJWKSetJSON(o.JWKS)
		if err != nil {
			return nil, nil, fmt.Errorf("own jwks: %w", err)
		}
		v.endorsements.read(o.JWKS)
		return kf, o.Issuers, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Timeout)
	defer cancel()
	m, err := fetchMetadata(ctx, o.Client, o.MetadataURL)
	if err != nil {
		return nil, nil, err
	}
	noSilentFirstError := false
	override := keyfunc.Override{
		Client:                    o.Client,
		HTTPTimeout:               o.Timeout,
		NoErrorReturnFirstHTTPReq: &noSilentFirstError,
		RefreshInterval:           o.RefreshInterval,
		// A request with an unknown kid waits for the refresh limiter only within
		// RateLimitWaitMax (rate.Limiter.Wait does not wait past it), so forged kids cannot
		// hold requests for the limiter's period.
		RateLimitWaitMax: o.RateLimitWaitMax,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				o.Log.Warn().Err(err).Str("jwks_uri", u).Msg("refresh " + o.Name)
			}
		},
	}
	if o.UnknownKIDEvery > 0 {
		override.RefreshUnknownKID = rate.NewLimiter(rate.Every(o.UnknownKIDEvery), 1)
	}
	if o.Endorsements {
		// keyfunc fetches through a client whose transport also reads each JWKS for
		// endorsements, so that the keys and their endorsements come from the same document.
		override.Client = &http.Client{Transport: &endorsementReader{next: transportOf(o.Client), set: &v.endorsements}, Timeout: o.Client.Timeout}
	}
	kf, err := keyfunc.NewDefaultOverrideCtx(v.ctx, []string{m.JWKSURI}, override)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks %s: %w", m.JWKSURI, err)
	}
	issuers := o.Issuers
	if len(issuers) == 0 {
		issuers = []string{m.Issuer}
	}
	o.Log.Info().Str("jwks_uri", m.JWKSURI).Strs("issuers", issuers).Msg(o.Name + " resolved")
	return kf, issuers, nil
}

// fetchMetadata reads an OpenID metadata document and checks its jwks_uri.
func fetchMetadata(ctx context.Context, client *http.Client, metadataURL string) (*openIDMetadata, error) {
	b, err := getBounded(ctx, client, metadataURL)
	if err != nil {
		return nil, fmt.Errorf("openid metadata: %w", err)
	}
	var m openIDMetadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("openid metadata %s: %w", metadataURL, err)
	}
	if err := connector.CheckURL("jwks_uri", m.JWKSURI); err != nil {
		return nil, fmt.Errorf("openid metadata %s: %w", metadataURL, err)
	}
	return &m, nil
}

// getBounded GETs a JSON document of at most maxDocumentBytes.
func getBounded(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDocumentBytes {
		return nil, fmt.Errorf("%s: over %d bytes", u, maxDocumentBytes)
	}
	return b, nil
}

// endorsement is a key's endorsements member: the channel ids it may sign for (none: any), or
// malformed (then it signs for none).
type endorsement struct {
	channels  []string
	malformed bool
}

// endorsementSet holds the endorsements of the last JWKS read, by kid.
type endorsementSet struct {
	mu sync.RWMutex
	m  map[string]endorsement
}

func (s *endorsementSet) get(kid string) (endorsement, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.m[kid]
	return e, ok
}

// read replaces the set with the endorsements of a raw JWKS; a JWKS that cannot be read
// leaves it as it was.
func (s *endorsementSet) read(jwks []byte) {
	m, err := parseEndorsements(jwks)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
}

// endorsementReader is an http.RoundTripper that reads the endorsements of every JWKS that
// passes through it (keyfunc's jwkset keeps only the standard members).
type endorsementReader struct {
	next http.RoundTripper
	set  *endorsementSet
}

func (e *endorsementReader) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := e.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(b) > maxDocumentBytes {
		return nil, fmt.Errorf("jwks over %d bytes", maxDocumentBytes)
	}
	e.set.read(b)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// parseEndorsements reads each key's endorsements from a raw JWKS, by kid. A key without the
// member, or with an empty list, may sign for any channel (botbuilder skips the check then); a
// member that is not a list of strings is malformed, and the key is trusted for none.
func parseEndorsements(b []byte) (map[string]endorsement, error) {
	var set struct {
		Keys []struct {
			Kid          string          `json:"kid"`
			Endorsements json.RawMessage `json:"endorsements"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	m := make(map[string]endorsement, len(set.Keys))
	for _, k := range set.Keys {
		var e endorsement
		if len(k.Endorsements) > 0 && string(k.Endorsements) != "null" {
			if json.Unmarshal(k.Endorsements, &e.channels) != nil {
				e = endorsement{malformed: true}
			}
		}
		m[k.Kid] = e
	}
	return m, nil
}

// transportOf returns the client's transport, or the default one.
func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}
