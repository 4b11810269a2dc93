package load

import (
	"bytes"
	"math"
	"strconv"
)

// The text of every activity the generator sends is "ld <n> <unix ns>": n numbers the sends of
// one conversation from 0, and the time is when the send was due. Echo bots answer with
// replyPrefix + the text; the relay returns the message unchanged.
const (
	textMarker  = "ld "
	replyPrefix = "echo: "
)

// appendMessage appends the JSON activity of send n, due at unix ns at, from user. keyed adds a
// channelData.clientActivityID ("<user>-<n>"), so that a resend is recorded once.
func appendMessage(b []byte, user string, n, at int64, keyed bool) []byte {
	b = append(b, `{"type":"message","from":{"id":"`...)
	b = append(b, user...)
	b = append(b, `"},"text":"`+textMarker...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, at, 10)
	b = append(b, `","channelData":{"loadSeq":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"loadSentAt":`...)
	b = strconv.AppendInt(b, at, 10)
	if keyed {
		b = append(b, `,"clientActivityID":"`...)
		b = append(b, user...)
		b = append(b, '-')
		b = strconv.AppendInt(b, n, 10)
		b = append(b, '"')
	}
	b = append(b, "}}"...)
	return b
}

// seen is one generator message found in a frame or a page of activities.
type seen struct {
	n, at int64
	reply bool // the text had the echo bot's prefix
}

var textKey = []byte(`"text":"`)

// scanMessages calls fn for each generator message in data, a JSON activity, ActivitySet or
// page, by looking at the "text" fields only: it is cheaper than decoding, and the generator
// shares the machine with the server it measures. It returns how many "text" fields it saw.
func scanMessages(data []byte, fn func(seen)) int {
	texts := 0
	for {
		i := bytes.Index(data, textKey)
		if i < 0 {
			return texts
		}
		texts++
		data = data[i+len(textKey):]
		var s seen
		if bytes.HasPrefix(data, []byte(replyPrefix)) {
			s.reply = true
			data = data[len(replyPrefix):]
		}
		if !bytes.HasPrefix(data, []byte(textMarker)) {
			continue
		}
		data = data[len(textMarker):]
		var ok bool
		if s.n, data, ok = leadingInt(data); !ok || len(data) == 0 || data[0] != ' ' {
			continue
		}
		if s.at, data, ok = leadingInt(data[1:]); !ok || len(data) == 0 || data[0] != '"' {
			continue
		}
		fn(s)
	}
}

// leadingInt parses the decimal digits at the start of b; ok is false when there are none or
// they do not fit an int64.
func leadingInt(b []byte) (int64, []byte, bool) {
	var v int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := int64(b[i] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, b, false
		}
		v = v*10 + d
	}
	return v, b[i:], i > 0
}

var watermarkKey = []byte(`"watermark":`)

// scanWatermark returns the watermark of a page of activities: a string for Direct Line, a
// number for offline-directline. ok is false when the page has none.
func scanWatermark(data []byte) (string, bool) {
	i := bytes.LastIndex(data, watermarkKey)
	if i < 0 {
		return "", false
	}
	data = bytes.TrimLeft(data[i+len(watermarkKey):], " ")
	if len(data) > 0 && data[0] == '"' {
		end := bytes.IndexByte(data[1:], '"')
		if end < 0 {
			return "", false
		}
		return string(data[1 : 1+end]), true
	}
	_, rest, ok := leadingInt(data)
	if !ok {
		return "", false
	}
	return string(data[:len(data)-len(rest)]), true
}
