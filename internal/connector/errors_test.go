package connector

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		challenge  string
		status     int
		body       string
		header     http.Header
		noHeaderOf []string
	}{
		{
			name: "bad request", err: New(http.StatusBadRequest, "BadArgument", "no <text>"),
			status: 400, body: `{"error":{"code":"BadArgument","message":"no <text>"}}`,
			noHeaderOf: []string{"WWW-Authenticate", "Retry-After"},
		},
		{
			name: "401 with a challenge", err: New(http.StatusUnauthorized, "Unauthorized", "unauthorized: expired"),
			challenge: BearerChallenge, status: 401,
			body:   `{"error":{"code":"Unauthorized","message":"unauthorized: expired"}}`,
			header: http.Header{"Www-Authenticate": {`Bearer realm="bfbridge"`}},
		},
		{
			name: "401 without a challenge", err: New(http.StatusUnauthorized, "BadArgument", "no token"),
			status: 401, body: `{"error":{"code":"BadArgument","message":"no token"}}`,
			noHeaderOf: []string{"WWW-Authenticate"},
		},
		{
			name: "challenge only on 401", err: New(http.StatusForbidden, "TokenExpired", "expired"), challenge: BearerChallenge,
			status: 403, body: `{"error":{"code":"TokenExpired","message":"expired"}}`,
			noHeaderOf: []string{"WWW-Authenticate"},
		},
		{
			name: "retry after", err: &Error{Status: 429, Code: "Throttled", Message: "slow down", RetryAfter: 3},
			status: 429, body: `{"error":{"code":"Throttled","message":"slow down"}}`,
			header: http.Header{"Retry-After": {"3"}},
		},
		{
			name: "bot status", err: &Error{Status: 502, Code: "BotError", Message: "bot failed", BotStatus: 500},
			status: 502, body: `{"error":{"code":"BotError","message":"bot failed"},"httpStatusCode":500}`,
		},
		{
			name: "wrapped", err: fmt.Errorf("serve: %w", New(http.StatusNotFound, "NotFound", "gone")),
			status: 404, body: `{"error":{"code":"NotFound","message":"gone"}}`,
		},
		{
			name: "other errors hide their text", err: errors.New("secret detail"),
			status: 500, body: `{"error":{"code":"ServiceError","message":"internal error"}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tc.err, tc.challenge)
			require.Equal(t, tc.status, rec.Code)
			require.Equal(t, tc.body, rec.Body.String())
			require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			for k, v := range tc.header {
				require.Equal(t, v, rec.Header().Values(k), k)
			}
			for _, k := range tc.noHeaderOf {
				require.Empty(t, rec.Header().Get(k), k)
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	cause := errors.New("cause")
	e := &Error{Status: 401, Code: "Unauthorized", Message: "no", Err: cause}
	require.ErrorIs(t, e, cause)
	require.Equal(t, "Unauthorized: no", e.Error())
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusCreated, map[string]string{"id": "<a&b>"})
	require.Equal(t, http.StatusCreated, rec.Code)
	require.Equal(t, `{"id":"<a&b>"}`, rec.Body.String(), "no HTML escaping, no trailing newline")

	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, math.Inf(1))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.JSONEq(t, encodeFailure, rec.Body.String())
}

func TestParseError(t *testing.T) {
	for _, tc := range []struct {
		in        string
		code, msg string
		ok        bool
	}{
		{`{"error":{"code":"BotError","message":"m"},"httpStatusCode":500}`, "BotError", "m", true},
		{`{"error":{"code":"X"}}`, "X", "", true},
		{`{"error":null}`, "", "", false},
		{`{}`, "", "", false},
		{`[`, "", "", false},
		{`<html>`, "", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			code, msg, ok := ParseError([]byte(tc.in))
			require.Equal(t, tc.code, code)
			require.Equal(t, tc.msg, msg)
			require.Equal(t, tc.ok, ok)
		})
	}
}

func FuzzParseError(f *testing.F) {
	for _, s := range []string{`{"error":{"code":"a","message":"b"}}`, `{"error":1}`, `null`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		code, msg, ok := ParseError(b)
		if !ok && (code != "" || msg != "") {
			t.Fatalf("not an error body, yet code %q message %q", code, msg)
		}
	})
}

type outage struct{}

func (outage) Error() string     { return "down" }
func (outage) Unavailable() bool { return true }

// An error that says it is an outage is answered 503 with Retry-After; any other is a 500
// whose text is not shown.
func TestWriteErrorOutage(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, fmt.Errorf("append: %w", outage{}), "")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, strconv.Itoa(UnavailableRetryAfter), rec.Header().Get("Retry-After"))
	require.Contains(t, rec.Body.String(), `"code":"ServiceError"`)

	rec = httptest.NewRecorder()
	WriteError(rec, errors.New("secret detail"), "")
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Empty(t, rec.Header().Get("Retry-After"))
	require.NotContains(t, rec.Body.String(), "secret detail")
}
