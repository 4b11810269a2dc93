package directline

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// activityContentType marks the multipart part that carries the template activity [SEND].
const activityContentType = "application/vnd.microsoft.activity"

// multipartOverhead is what an upload's body may hold beyond its files: the multipart framing
// and the template activity.
const multipartOverhead = 64 << 10

// Uploaded files are blobs of their conversation in the bridge's store (Store.PutBlob), swept
// with it; nothing of them stays in memory. A file's link is
// {PublicURL}/v3/directline/attachments/{key}/{name}, where the key names the conversation and
// the blob (see fileKey): unguessable, as the service's attachment links are, and served for
// Config.AttachmentTTL. A conversation holds at most conversationUploadFactor × MaxUploadBytes
// of uploads, counted in its value uploadsKey.

// uploadsKey is the name, among a conversation's stored values, of the total size of its uploads.
const uploadsKey = "directline/uploads"

// fileOverhead is what a file counts in its conversation's allowance beyond its bytes: its
// blob's record, key and metadata, and its attachment in the activity.
const fileOverhead = 1 << 10

// conversationUploadFactor bounds a conversation's uploads: this many full-size uploads.
const conversationUploadFactor = 16

// hostedFile is one uploaded file.
type hostedFile struct {
	name, contentType string
	data              []byte
}

// upload: POST /conversations/{id}/upload?userId= — files sent to the bot as a message with
// attachments that the bridge hosts. Multipart (an optional activity part and file parts) or a
// single body with Content-Type and Content-Disposition. At most MaxUploadBytes in all.
func (s *Server) upload(r *http.Request) (int, any, *apiError) {
	id := r.PathValue("id")
	p, e := s.authorize(r, id)
	if e != nil {
		return 0, nil, e
	}
	userID := r.URL.Query().Get("userId")
	if userID == "" && p.user == "" {
		return 0, nil, &apiError{Status: http.StatusBadRequest, Code: CodeMissingProperty, Message: "Missing userId"}
	}
	if _, err := s.hub.Conversation(r.Context(), id); err != nil {
		return 0, nil, errFromBridge(err)
	}
	tmpl, files, e := s.readUpload(r)
	if e != nil {
		return 0, nil, e
	}
	// Every check comes before anything is stored: the links are made first, then the
	// activity they go in, which must be within the activity limit, and the rate.
	ids, atts := s.links(id, files)
	a := uploadActivity(tmpl, userID, atts)
	if e := s.stamp(id, p, a); e != nil {
		return 0, nil, e
	}
	raw, err := activity.Marshal(a)
	if err != nil {
		return 0, nil, errBadArgument("the upload does not make an activity")
	}
	if err := activity.CheckSize(raw); err != nil {
		return 0, nil, errTooLarge("the upload's activity is over the limit of 256K characters: " + err.Error())
	}
	if !s.allow(id) {
		return 0, nil, errThrottled()
	}
	if e := s.host(r.Context(), id, files, ids); e != nil {
		return 0, nil, e
	}
	return s.handOver(r, id, a)
}

// readUpload reads an upload's body: its template activity (nil when there is none) and files.
func (s *Server) readUpload(r *http.Request) (*activity.Activity, []hostedFile, *apiError) {
	limit := s.cfg.MaxUploadBytes
	if r.ContentLength > limit+multipartOverhead {
		return nil, nil, errTooLarge("the upload is over the limit of 4 MB")
	}
	fc := &fileCollector{limit: limit, maxFiles: s.cfg.MaxUploadParts}
	body := io.LimitReader(r.Body, limit+multipartOverhead+1)
	var tmpl *activity.Activity
	var e *apiError
	if mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); strings.HasPrefix(mediaType, "multipart/") {
		tmpl, e = fc.readMultipart(multipart.NewReader(body, params["boundary"]))
	} else {
		e = fc.add(singleFileName(r.Header.Get("Content-Disposition")), r.Header.Get("Content-Type"), body)
	}
	if e != nil {
		return nil, nil, e
	}
	if len(fc.files) == 0 {
		return nil, nil, errBadArgument("the upload has no file")
	}
	return tmpl, fc.files, nil
}

// singleFileName reads the file name of a single-body upload. The documented form has no
// disposition type: `name="file"; filename="x.jpg"` [SEND].
func singleFileName(cd string) string {
	_, dp, err := mime.ParseMediaType(cd)
	if err != nil {
		_, dp, _ = mime.ParseMediaType("attachment; " + cd)
	}
	return dp["filename"]
}

// fileCollector gathers an upload's files within its limit.
type fileCollector struct {
	limit, total int64
	maxFiles     int
	files        []hostedFile
}

// add reads one file; a file without a content type gets the one its bytes suggest.
func (fc *fileCollector) add(name, ctype string, rd io.Reader) *apiError {
	if len(fc.files) >= fc.maxFiles {
		return errTooLarge(fmt.Sprintf("an upload carries at most %d files", fc.maxFiles))
	}
	data, err := io.ReadAll(io.LimitReader(rd, fc.limit-fc.total+1))
	if err != nil {
		return errBadArgument("cannot read the upload")
	}
	fc.total += int64(len(data))
	if fc.total > fc.limit {
		return errTooLarge("the upload is over the limit of 4 MB")
	}
	if ctype == "" {
		ctype = http.DetectContentType(data)
	}
	fc.files = append(fc.files, hostedFile{name: cleanName(name), contentType: ctype, data: data})
	return nil
}

// readMultipart reads a multipart upload: the activity part, if any, and the file parts.
func (fc *fileCollector) readMultipart(mr *multipart.Reader) (*activity.Activity, *apiError) {
	var tmpl *activity.Activity
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return tmpl, nil
		}
		if err != nil {
			return nil, errBadArgument("the multipart body is malformed")
		}
		ct := part.Header.Get("Content-Type")
		if !strings.HasPrefix(ct, activityContentType) && (part.FormName() != "activity" || part.FileName() != "") {
			if e := fc.add(part.FileName(), ct, part); e != nil {
				return nil, e
			}
			continue
		}
		raw, err := io.ReadAll(io.LimitReader(part, maxActivityBytes+1))
		if err != nil || len(raw) > maxActivityBytes {
			return nil, errTooLarge("the activity is over the limit of 256K characters")
		}
		if tmpl != nil {
			return nil, errBadArgument("the upload has more than one activity part")
		}
		var e *apiError
		if tmpl, e = decodeActivity(raw); e != nil {
			return nil, e
		}
	}
}

// uploadActivity is the message an upload becomes: the template (or a new message) from
// userID, its cards kept, its attachments without content (which stood for the files)
// replaced by the hosted files.
func uploadActivity(tmpl *activity.Activity, userID string, hosted []activity.Attachment) *activity.Activity {
	a := tmpl
	if a == nil {
		a = &activity.Activity{Type: activity.TypeMessage}
	}
	if userID != "" {
		if a.From == nil {
			a.From = &activity.ChannelAccount{}
		}
		a.From.ID = userID
	}
	kept := a.Attachments[:0:0]
	for _, att := range a.Attachments {
		if len(att.Content) > 0 {
			kept = append(kept, att)
		}
	}
	a.Attachments = append(kept, hosted...)
	return a
}

// links names the files' blobs and returns their attachments; nothing is stored yet (see host).
func (s *Server) links(convID string, files []hostedFile) (ids []string, atts []activity.Attachment) {
	now := s.now()
	ids = make([]string, 0, len(files))
	atts = make([]activity.Attachment, 0, len(files))
	for _, f := range files {
		blobID := randomString(18) + "." + strconv.FormatInt(now.Unix(), 10)
		ids = append(ids, blobID)
		atts = append(atts, activity.Attachment{
			ContentType: f.contentType, Name: f.name,
			ContentURL: s.cfg.PublicURL + "/v3/directline/attachments/" + fileKey(convID, blobID) + "/" + url.PathEscape(f.name),
		})
	}
	return ids, atts
}

// host counts the files against the conversation's allowance and stores them as its blobs ids.
func (s *Server) host(ctx context.Context, convID string, files []hostedFile, ids []string) *apiError {
	if e := s.reserveUpload(ctx, convID, files); e != nil {
		return e
	}
	for i, f := range files {
		if err := s.hub.PutBlob(ctx, convID, ids[i], bridge.Blob{ContentType: f.contentType, Data: f.data}); err != nil {
			s.log.Warn().Err(err).Str("conv_id", convID).Msg("upload not stored")
			return errFromBridge(err)
		}
	}
	return nil
}

// reserveUpload counts the files against the conversation's upload allowance, or refuses them
// with 413 when they would exceed it. Two uploads at once may both pass: the bound is loose by
// one upload.
func (s *Server) reserveUpload(ctx context.Context, convID string, files []hostedFile) *apiError {
	var used, size int64
	if raw, err := s.hub.Value(ctx, convID, uploadsKey); err == nil {
		_ = json.Unmarshal(raw, &used)
	} else if !errors.Is(err, bridge.ErrNotFound) {
		return errFromBridge(err)
	}
	for _, f := range files {
		size += int64(len(f.data)) + fileOverhead
	}
	if used+size > conversationUploadFactor*s.cfg.MaxUploadBytes {
		return errTooLarge("the conversation's uploads are over their limit")
	}
	if err := s.hub.PutValue(ctx, convID, uploadsKey, []byte(strconv.FormatInt(used+size, 10))); err != nil {
		return errFromBridge(err)
	}
	return nil
}

// fileKey is a file's key in its link: the blob id, then the conversation id (base64url).
func fileKey(convID, blobID string) string {
	return blobID + "." + base64.RawURLEncoding.EncodeToString([]byte(convID))
}

// parseFileKey reads a file's key: its conversation, its blob id, and when it was uploaded.
func parseFileKey(key string) (convID, blobID string, at time.Time, err error) {
	parts := strings.Split(key, ".")
	if len(parts) != 3 {
		return "", "", time.Time{}, errors.New("not a file key")
	}
	conv, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("not a file key: %w", err)
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("not a file key: %w", err)
	}
	return string(conv), parts[0] + "." + parts[1], time.Unix(sec, 0), nil
}

// cleanName is the last element of a file name, or "file" when it has none that can be a
// link's last segment ("", "/", "." and "..", which a URL resolves away).
func cleanName(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == ".." || name == "/" || name == "" {
		return "file"
	}
	return name
}

// attachment: GET /attachments/{key}/{name} — a hosted upload, from the store, while its time
// to live lasts. The key is unguessable: the link is private, as the service's attachment links
// are. Only passive types (images but SVG, audio, video, plain text) are served inline; any
// other is a download, and a sandboxing Content-Security-Policy keeps a file from running as
// the bridge's origin whatever a browser makes of it.
func (s *Server) attachment(w http.ResponseWriter, r *http.Request) {
	cors(w)
	notFound := &apiError{Status: http.StatusNotFound, Code: CodeBadArgument, Message: "File not found"}
	convID, blobID, at, err := parseFileKey(r.PathValue("key"))
	if err != nil || s.now().Sub(at) > s.cfg.AttachmentTTL {
		writeError(w, notFound)
		return
	}
	b, err := s.hub.Blob(r.Context(), convID, blobID)
	if errors.Is(err, bridge.ErrNotFound) || errors.Is(err, bridge.ErrUnknownConversation) {
		writeError(w, notFound)
		return
	} else if err != nil {
		writeError(w, errFromBridge(err))
		return
	}
	name := cleanName(r.PathValue("name"))
	disposition := "attachment"
	if passive(b.ContentType) {
		disposition = "inline"
	}
	w.Header().Set("Content-Type", b.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if cd := mime.FormatMediaType(disposition, map[string]string{"filename": name}); cd != "" {
		disposition = cd
	}
	w.Header().Set("Content-Disposition", disposition)
	http.ServeContent(w, r, name, at, bytes.NewReader(b.Data))
}

// passive reports whether a content type is safe to show inline: it cannot run script.
func passive(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case mt == "image/svg+xml":
		return false
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"):
		return true
	}
	return mt == "text/plain"
}
