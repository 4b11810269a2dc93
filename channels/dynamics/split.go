package dynamics

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxTextChars is the longest text of one message to the API (30011 beyond), in characters as
// .NET counts them (UTF-16 code units).
const MaxTextChars = 6000

// SplitText cuts a customer's text into parts of at most max characters (UTF-16 code units),
// in order, losing nothing. The rule: a text that fits is one part. Otherwise each part ends at
// the last paragraph break ("\n\n") within the limit, else the last line break, else the last
// white space, as long as that keeps the part at least half the limit; else it is cut at the
// limit itself, never inside a surrogate pair. The break characters end the part they follow,
// so joining the parts gives the text back exactly. An empty text has no parts.
func SplitText(s string, max int) []string {
	var parts []string
	for s != "" {
		if utf16Len(s) <= max {
			return append(parts, s)
		}
		cut := prefixBytes(s, max) // the longest prefix within the limit, in bytes
		at := breakAt(s[:cut], cut/2)
		if at <= 0 {
			at = cut
		}
		parts = append(parts, s[:at])
		s = s[at:]
	}
	return parts
}

// breakAt is where a part of window should end: after the last paragraph break, line break or
// white space of window at or beyond min bytes; 0 when there is none.
func breakAt(window string, min int) int {
	for _, sep := range []string{"\n\n", "\n"} {
		if i := strings.LastIndex(window, sep); i >= 0 && i+len(sep) >= min {
			return i + len(sep)
		}
	}
	i := strings.LastIndexFunc(window, unicode.IsSpace)
	if i >= 0 && i+1 >= min {
		_, w := utf8.DecodeRuneInString(window[i:])
		return i + w
	}
	return 0
}

// prefixBytes is the byte length of the longest prefix of s with at most max UTF-16 code units.
func prefixBytes(s string, max int) int {
	n := 0
	for i, r := range s {
		w := 1
		if r > 0xFFFF || utf16.IsSurrogate(r) {
			w = 2
		}
		if n+w > max {
			return i
		}
		n += w
	}
	return len(s)
}

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n += 2
		} else {
			n++
		}
	}
	return n
}
