// Package enc encodes activities for the stores: once, outside their locks, with the id that
// only the store can choose added afterwards.
package enc

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
)

// WithoutID encodes a without its id, outside the store's lock or writer, so that the store,
// which alone knows the sequence number, only has to add the id member (WithID). Unknown members spelled
// like "id" (kept to write an empty or null id back as it came) are left out: the stored
// activity always has its id set, and a second member matching "id" would override it on decode.
func WithoutID(a *activity.Activity) ([]byte, error) {
	c := *a // shallow: Marshal only reads
	c.ID = ""
	for k := range a.Extra {
		if strings.EqualFold(k, "id") {
			c.Extra = make(activity.Extra, len(a.Extra))
			for k, v := range a.Extra {
				if !strings.EqualFold(k, "id") {
					c.Extra[k] = v
				}
			}
			break
		}
	}
	return activity.MarshalActivity(&c)
}

// WithID returns the stored JSON of an activity whose id the store has just chosen: body (from
// WithoutID) with the id member put first.
func WithID(body []byte, activityID string) ([]byte, error) {
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("not a JSON object: %.20q", body)
	}
	out := make([]byte, 0, len(body)+len(activityID)+16)
	out = append(out, `{"id":`...)
	out = activity.AppendJSONString(out, activityID) // as json.Marshal writes it
	if rest := bytes.TrimSpace(body[1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}
