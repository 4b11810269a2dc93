package activity

import (
	"encoding/json"
	"testing"
)

// FuzzDecode checks that any input either fails to decode with a *ValidationError or decodes to
// an activity whose encoding is a fixed point: decoding and encoding it again changes nothing.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","text":"hi","channelData":{"clientActivityID":"1"}}`,
		`{"type":"event","name":"x","value":null,"timestamp":1654211880,"from":{"id":"u","role":1}}`,
		`{"type":"message","localTimestamp":"2019-08-20T13:37:05-07:00","attachments":[{"content":{}}],"zz":[]}`,
		`{"type":"conversationUpdate","membersAdded":[{"id":"b","x":1}],"membersRemoved":[]}`,
		`{}`, `[]`, `null`, `{"type":"message","entities":[null]}`,
		// invalid UTF-8 in members kept raw, and escaped lone surrogates
		"{\"type\":\"message\",\"channelData\":{\"x\":\"\xff\xfe\"}}",
		"{\"type\":\"message\",\"value\":\"\xc3\x28\",\"entities\":[{\"k\":\"\xed\xa0\x80\"}],\"zz\":\"\x80\"}",
		`{"type":"message","text":"\ud800","channelData":{"x":"\udc00"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := Decode(in)
		if err != nil {
			return
		}
		_ = a.Validate()
		first, err := Marshal(a)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		b, err := Decode(first)
		if err != nil {
			t.Fatalf("re-decode %s: %v", first, err)
		}
		second, err := Marshal(b)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if string(first) != string(second) {
			t.Fatalf("not a fixed point:\n%s\n%s", first, second)
		}
	})
}

// FuzzEachMember checks the member scanner that finds unknown members against encoding/json:
// for any input that decodes as an object, it finds the same members with the same raw values.
func FuzzEachMember(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","text":"a\"b}","x":{"y":[1,{"z":"]"}]},"n":-1.5e3,"t":true,"u":null}`,
		` { "a" : 1 , "\u0061" : [ ] , "é":"\\" } `, `{}`, `null`, `{"a":1,"a":2}`, `[1]`, `{"a":}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want map[string]json.RawMessage
		if err := json.Unmarshal(in, &want); err != nil {
			return
		}
		got := map[string]json.RawMessage{}
		if err := eachMember(in, func(name string, raw []byte) { got[name] = raw }); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: members %v, want %v", in, got, want)
		}
		for k, v := range want {
			if string(got[k]) != string(v) {
				t.Fatalf("%q: member %q is %q, want %q", in, k, got[k], v)
			}
		}
	})
}
