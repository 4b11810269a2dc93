package atrest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
)

func box(t *testing.T) *Box {
	t.Helper()
	k, err := NewKey()
	require.NoError(t, err)
	b, err := NewBox(k)
	require.NoError(t, err)
	return b
}

func TestBoxBindsTheValueToItsPlace(t *testing.T) {
	b := box(t)
	sealed := b.Seal([]byte("secret"), "here")
	require.NotContains(t, string(sealed), "secret")
	plain, err := b.Open(sealed, "here")
	require.NoError(t, err)
	require.Equal(t, "secret", string(plain))
	_, err = b.Open(sealed, "elsewhere")
	require.ErrorIs(t, err, ErrSealed, "a value copied to another place does not open")
	_, err = box(t).Open(sealed, "here")
	require.ErrorIs(t, err, ErrSealed, "nor with another key")
	_, err = b.Open(sealed[:5], "here")
	require.ErrorIs(t, err, ErrSealed)
	_, err = NewBox([]byte("short"))
	require.Error(t, err)
}

func TestKey(t *testing.T) {
	k, err := ParseKey("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=") // 32 bytes
	require.NoError(t, err)
	require.Len(t, k, KeySize)
	_, err = ParseKey("c2hvcnQ=")
	require.ErrorContains(t, err, "must decode to 32 bytes")
	_, err = ParseKey("not base64!")
	require.ErrorContains(t, err, "not base64")

	dir := t.TempDir()
	first, err := Key("", nil, dir)
	require.NoError(t, err)
	again, err := Key("", nil, dir)
	require.NoError(t, err)
	require.Equal(t, first, again, "a generated key is kept in the data directory")
	fi, err := os.Stat(filepath.Join(dir, SharedKeyName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	stored := map[string][]byte{}
	shared := func(_ context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
		if v, ok := stored[name]; ok {
			return v, nil
		}
		v, err := create()
		stored[name] = v
		return v, err
	}
	s1, err := Key("", shared, dir)
	require.NoError(t, err)
	s2, err := Key("", shared, "")
	require.NoError(t, err)
	require.Equal(t, s1, s2, "instances on one store share the generated key")
	require.NotEqual(t, first, s1, "the store's key wins over the data directory's")
}

// tokenOf returns value.token of a.
func tokenOf(t *testing.T, a *activity.Activity) string {
	t.Helper()
	var v struct{ Token string }
	require.NoError(t, json.Unmarshal(a.Value, &v))
	return v.Token
}

func TestLogSealsTokensBoundForTheBot(t *testing.T) {
	l := NewLog(box(t))
	exchange := &activity.Activity{Type: activity.TypeInvoke, Name: "signin/tokenExchange",
		Value: json.RawMessage(`{"id":"x1","connectionName":"sso","token":"eyJ.customer.token"}`)}
	require.NoError(t, l.Seal("c1", exchange))
	require.NotContains(t, string(exchange.Value), "eyJ.customer.token", "the logged value holds no token in the clear")
	require.Contains(t, string(exchange.Value), `"id":"x1"`, "the rest of the value is kept")
	require.Contains(t, string(exchange.Value), `"connectionName":"sso"`)

	sealedValue := string(exchange.Value)
	opened, err := l.Open("c1", exchange)
	require.NoError(t, err)
	require.Equal(t, "eyJ.customer.token", tokenOf(t, opened))
	require.Equal(t, sealedValue, string(exchange.Value), "the logged record is not changed: Open copies")

	_, err = l.Open("c2", exchange)
	require.ErrorIs(t, err, ErrSealed, "a sealed token opens only in its own conversation")

	event := &activity.Activity{Type: activity.TypeEvent, Name: "tokens/response", Value: json.RawMessage(`{"connectionName":"c","token":"tok"}`)}
	require.NoError(t, l.Seal("c1", event))
	require.NotContains(t, string(event.Value), `"tok"`)
	opened, err = l.Open("c1", event)
	require.NoError(t, err)
	require.Equal(t, "tok", tokenOf(t, opened))
}

func TestLogLeavesTheRestAlone(t *testing.T) {
	l := NewLog(box(t))
	for _, a := range []*activity.Activity{
		{Type: activity.TypeMessage, Text: "my token is 123", Value: json.RawMessage(`{"token":"kept"}`)},
		{Type: activity.TypeInvoke, Name: "signin/verifyState", Value: json.RawMessage(`{"state":"123456"}`)},
		{Type: activity.TypeInvoke, Name: "signin/tokenExchange", Value: json.RawMessage(`"not an object"`)},
		{Type: activity.TypeInvoke, Name: "signin/tokenExchange", Value: json.RawMessage(`{"id":"no token"}`)},
		{Type: activity.TypeEvent, Name: "tokens/response", Value: json.RawMessage(`{"token":"bfbridge-sealed:by-the-token-service"}`)},
	} {
		before := string(a.Value)
		require.NoError(t, l.Seal("c1", a))
		require.Equal(t, before, string(a.Value))
		opened, err := l.Open("c1", a)
		require.NoError(t, err)
		require.Same(t, a, opened)
	}
	require.True(t, strings.HasPrefix(logPrefix, "bfbridge-"), "what Log seals, Log does not seal again")
}
