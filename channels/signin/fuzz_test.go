package signin

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeState: any input is a state or an error, never a panic; a decoded state names a
// connection, a conversation and a user, and its strings are UTF-8.
func FuzzDecodeState(f *testing.F) {
	f.Add(state("idp", "c1", "u1", "app"))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"ConnectionName":"x","Conversation":{"User":{"Id":"u"},"Conversation":{"Id":"c"}}}`)))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"connectionName":"x","conversation":{"user":{"id":"u"},"agent":{"id":"b"},"conversation":{"id":"c"}}}`)))
	f.Add("e30=")
	f.Add("a b+c")
	f.Add(base64.StdEncoding.EncodeToString([]byte("{\"connectionName\":\"\xff\"}")))
	f.Fuzz(func(t *testing.T, s string) {
		st, err := DecodeState(s)
		if err != nil {
			return
		}
		if len(s) > maxState {
			t.Fatalf("a state of %d bytes was accepted", len(s))
		}
		if st.ConnectionName == "" || st.Conversation.Conversation.ID == "" || st.Conversation.User.ID == "" {
			t.Fatalf("incomplete state accepted: %+v", st)
		}
		for _, v := range []string{st.ConnectionName, st.Conversation.Conversation.ID, st.Conversation.User.ID, st.MsAppID, st.Conversation.BotID()} {
			if !utf8.ValidString(v) {
				t.Fatalf("non-UTF-8 %q", v)
			}
		}
	})
}

func TestDecodeStateLimits(t *testing.T) {
	long := make([]byte, maxState+1)
	for i := range long {
		long[i] = 'A'
	}
	if _, err := DecodeState(string(long)); err != errStateSize {
		t.Fatalf("a long state: %v", err)
	}
	// A '+' a form decoder turned into a space is read back.
	found := false
	for i := 0; i < 1000 && !found; i++ {
		s := state("idp", fmt.Sprintf("conv-%d~~", i), "u1", "app")
		if !strings.Contains(s, "+") {
			continue
		}
		found = true
		if _, err := DecodeState(strings.ReplaceAll(s, "+", " ")); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatal("no state with a '+' among the tries")
	}
}
