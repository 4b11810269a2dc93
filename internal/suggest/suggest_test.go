package suggest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClosest(t *testing.T) {
	keys := []string{"listen", "public_url", "log_level", "store", "data_dir", "retention"}
	tests := []struct {
		word string
		cand []string
		want string
	}{
		{"log_levle", keys, "log_level"}, // a swap is one edit
		{"lsiten", keys, "listen"},
		{"data-dir", keys, "data_dir"},
		{"Store", keys, "store"},
		{"colour", keys, ""},       // nothing near
		{"stor", keys, "store"},    // a missing letter
		{"x", []string{"y"}, "y"},  // one edit is always worth saying
		{"xy", []string{"ab"}, ""}, // two edits in a two-letter word are not
		{"serv", []string{"serve", "conformance", "load", "config", "admin"}, "serve"},
		{"conformence", []string{"serve", "conformance", "load", "config", "admin"}, "conformance"},
		{"anything", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.word, func(t *testing.T) {
			require.Equal(t, tc.want, Closest(tc.word, tc.cand))
		})
	}
}

func TestDistance(t *testing.T) {
	require.Equal(t, 0, distance("abc", "abc"))
	require.Equal(t, 1, distance("abc", "acb"))
	require.Equal(t, 1, distance("abc", "abcd"))
	require.Equal(t, 3, distance("", "abc"))
	require.Equal(t, 2, distance("kitten", "sitten1"))
}
