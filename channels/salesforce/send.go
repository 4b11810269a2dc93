package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Send implements bridge.Channel: what the customer says while the conversation is with
// Salesforce. A message's text becomes a StaticContentMessage, each of its files a /file
// upload, typing a TypingStartedIndicator entry, the customer's end DELETE /conversation.
// Every id is derived from the activity's log id (messageID), so the outbox's retries and a
// restart send the same request again. Errors are *bridge.DeliveryError.
func (ch *Channel) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	s, err := ch.sessionFor(ctx, to.ConversationID)
	if err != nil {
		return "", &bridge.DeliveryError{Leg: to.Key(), Err: err}
	}
	if err := s.ready(ctx); err != nil {
		return "", &bridge.DeliveryError{Leg: to.Key(), Retryable: true, Err: err}
	}
	if s.state().Closed {
		return a.ID, nil // ended on Salesforce's side: nothing to tell
	}
	switch a.Type {
	case activity.TypeEndOfConversation:
		err = ch.closeRemote(ctx, s)
	case activity.TypeTyping:
		if err = ch.typing(ctx, s, messageID(s.convID, a.ID)); err != nil {
			ch.log.Debug().Err(err).Str("conv_id", s.convID).Msg("typing indicator not sent")
			err = nil // a lost typing indicator is not worth a retry
		}
	case activity.TypeMessage:
		err = ch.sendMessage(ctx, s, a)
	}
	if err != nil {
		return "", deliveryError(to, err)
	}
	return messageID(s.convID, a.ID), nil
}

// sendMessage sends a message's text, then its files, in order.
func (ch *Channel) sendMessage(ctx context.Context, s *session, a *activity.Activity) error {
	if t := strings.TrimSpace(a.Text); t != "" {
		if err := ch.message(ctx, s, messageID(s.convID, a.ID), t); err != nil {
			return err
		}
	}
	for i, at := range a.Attachments {
		if at.ContentURL == "" {
			continue
		}
		key := fmt.Sprintf("%s/file/%d", a.ID, i)
		if err := ch.sendFile(ctx, s, key, at); err != nil {
			return err
		}
	}
	return nil
}

// sendFile sends one of the customer's files. A file the bridge hosts (under its public URL)
// is read and uploaded through /file; another link is sent as text. A file Salesforce (or
// MaxFileBytes) refuses as too large or of an unsupported type is reported to the customer,
// and the conversation goes on.
func (ch *Channel) sendFile(ctx context.Context, s *session, key string, at activity.Attachment) error {
	name := at.Name
	if name == "" {
		name = "file"
	}
	if ch.publicURL == "" || !strings.HasPrefix(at.ContentURL, ch.publicURL+"/") {
		return ch.message(ctx, s, messageID(s.convID, key), name+": "+at.ContentURL)
	}
	data, ctype, err := ch.fetch(ctx, at.ContentURL)
	if errors.Is(err, errTooLarge) {
		return ch.refused(ctx, s, key, name, http.StatusRequestEntityTooLarge)
	}
	if err != nil {
		return &APIError{Op: "read file", Retryable: true, Err: err}
	}
	if at.ContentType != "" {
		ctype = at.ContentType
	}
	err = ch.upload(ctx, s, key, name, ctype, data)
	var ae *APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusRequestEntityTooLarge || ae.Status == http.StatusUnsupportedMediaType) {
		return ch.refused(ctx, s, key, name, ae.Status)
	}
	return err
}

var (
	errTooLarge = errors.New("file too large")
	errNotOpen  = errors.New("the salesforce conversation is not open yet")
)

// fetch reads a file the bridge hosts, at most MaxFileBytes of it.
func (ch *Channel) fetch(ctx context.Context, u string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := ch.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, "", errors.New("the bridge's file could not be read")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("the bridge's file answered %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, ch.cfg.MaxFileBytes+1))
	if err != nil {
		return nil, "", err
	}
	if int64(len(data)) > ch.cfg.MaxFileBytes {
		return nil, "", errTooLarge
	}
	return data, resp.Header.Get("Content-Type"), nil
}

// upload makes POST /conversation/{id}/file: a messageEntry JSON part and a fileData part
// (escalation.md §5).
func (ch *Channel) upload(ctx context.Context, s *session, key, name, ctype string, data []byte) error {
	entry := map[string]any{
		"esDeveloperName": ch.cfg.ESDeveloperName,
		"message":         map[string]any{"id": messageID(s.convID, key), "fileId": messageID(s.convID, key+"/id"), "text": ""},
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	ej, _ := json.Marshal(entry)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="messageEntry"`)
	h.Set("Content-Type", "application/json")
	pw, _ := mw.CreatePart(h)
	_, _ = pw.Write(ej)
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="fileData"; filename=%q`, strings.ReplaceAll(name, `"`, "")))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	pw, _ = mw.CreatePart(h)
	_, _ = pw.Write(data)
	_ = mw.Close()
	r := request{op: "send file", method: http.MethodPost, url: ch.conversationURL(s, "/file"), body: buf.Bytes(), contentType: mw.FormDataContentType()}
	_, err := ch.call(ctx, s, r)
	return err
}

// refused tells the customer that a file did not reach the agent.
func (ch *Channel) refused(ctx context.Context, s *session, key, name string, status int) error {
	why := "is too large"
	if status == http.StatusUnsupportedMediaType {
		why = "is of a type the agent cannot receive"
	}
	ch.log.Info().Str("conv_id", s.convID).Int("status", status).Msg("customer file refused")
	a := &activity.Activity{Type: activity.TypeMessage, Text: fmt.Sprintf("Your file %q %s; it was not sent to the agent.", name, why), From: &systemAccount}
	_, err := ch.hub.Receive(ctx, ch.leg(s.convID, systemAccount), a, "salesforce:refused/"+key)
	if errors.Is(err, bridge.ErrConversationEnded) || isDelivery(err) {
		return nil // over, or in the log: the customer's channel delivers it
	}
	return err
}
