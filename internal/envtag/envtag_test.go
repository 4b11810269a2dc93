package envtag

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type inner struct {
	Secret string `env:"T_SECRET"`
}

type sample struct {
	Name    string        `env:"T_NAME"`
	On      bool          `env:"T_ON"`
	N       int           `env:"T_N"`
	Rate    float64       `env:"T_RATE"`
	Wait    time.Duration `env:"T_WAIT"`
	Untaged string
	inner
	Ptr *inner
}

func TestApply(t *testing.T) {
	env := map[string]string{"T_NAME": "n", "T_ON": "true", "T_N": "3", "T_RATE": "1.5", "T_WAIT": "2s", "T_SECRET": "s"}
	var s sample
	s.Ptr = &inner{}
	require.NoError(t, Apply(&s, func(k string) string { return env[k] }))
	require.Equal(t, sample{Name: "n", On: true, N: 3, Rate: 1.5, Wait: 2 * time.Second, inner: inner{}, Ptr: &inner{Secret: "s"}}, s,
		"unexported embedded structs are not settable and are skipped; pointers are followed")
	require.Equal(t, []string{"T_NAME", "T_ON", "T_N", "T_RATE", "T_WAIT", "T_SECRET"}, Names(&s))
}

func TestErrors(t *testing.T) {
	var s sample
	err := Apply(&s, func(k string) string {
		if k == "T_WAIT" {
			return "soon"
		}
		return ""
	})
	require.ErrorContains(t, err, "T_WAIT: not a duration")
	ok, err := Set(&s, "T_N", "x")
	require.True(t, ok)
	require.ErrorContains(t, err, "T_N: not an integer")
	ok, err = Set(&s, "T_NOPE", "x")
	require.False(t, ok)
	require.NoError(t, err)
}

// A list is comma-separated; blanks around items and empty items are dropped.
func TestList(t *testing.T) {
	var s struct {
		Addrs []string `env:"T_ADDRS"`
		Ports []int    `env:"T_PORTS"`
	}
	ok, err := Set(&s, "T_ADDRS", " a:1, b:2 ,,c:3")
	require.True(t, ok)
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:2", "c:3"}, s.Addrs)
	_, err = Set(&s, "T_PORTS", "1,2")
	require.Error(t, err, "only lists of strings")
}
