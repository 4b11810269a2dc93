package connector

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		raw, err string
	}{
		{"https://h/p", ""},
		{"http://127.0.0.1:8080", ""},
		{"", "is not an absolute"},
		{"/rel", "is not an absolute"},
		{"ftp://h/", "is not an absolute"},
		{"https://", "is not an absolute"},
		{"http://%zz", "u: "},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			err := CheckURL("u", tc.raw)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}
