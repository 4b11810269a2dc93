package botframework

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/internal/ttlmap"
)

// Attachment limits. Uploads are limited to 4 MB like Azure Bot Service's (perf-reliability.md),
// kept for 24 hours like Direct Line's, and held in memory up to maxAttachmentStore in all.
const (
	maxAttachmentBytes = 4 << 20                                 // original + thumbnail, decoded
	maxUploadBody      = maxAttachmentBytes/3*4 + 4 + (64 << 10) // base64 of that, plus JSON around it
	maxAttachmentStore = 256 << 20
	attachmentTTL      = 24 * time.Hour
)

// View ids of an uploaded attachment.
const (
	viewOriginal  = "original"
	viewThumbnail = "thumbnail"
)

// storedAttachment is one upload.
type storedAttachment struct {
	convID    string
	name      string
	ctype     string
	original  []byte
	thumbnail []byte
}

func (s *storedAttachment) size() int { return len(s.original) + len(s.thumbnail) }

// attachmentStore holds uploads in memory.
type attachmentStore struct {
	m *ttlmap.Map[*storedAttachment]
}

func newAttachmentStore() *attachmentStore {
	return &attachmentStore{m: ttlmap.New(ttlmap.Options[*storedAttachment]{
		TTL: attachmentTTL, MaxSize: maxAttachmentStore,
		Size: func(a *storedAttachment) int64 { return int64(a.size()) },
	})}
}

// put stores a and returns its id, or false when the store is full.
func (s *attachmentStore) put(a *storedAttachment) (string, bool) {
	var rnd [16]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+)
	id := hex.EncodeToString(rnd[:])
	if !s.m.Put(id, a) {
		return "", false
	}
	return id, true
}

func (s *attachmentStore) get(id string) *storedAttachment {
	a, _ := s.m.Get(id)
	return a
}

// attachmentData is the Connector's AttachmentData; the byte arrays are base64 strings.
type attachmentData struct {
	Type            string `json:"type"`
	Name            string `json:"name"`
	OriginalBase64  string `json:"originalBase64"`
	ThumbnailBase64 string `json:"thumbnailBase64"`
}

// decodeBase64 accepts standard and URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// parseUpload checks and decodes an UploadAttachment body. Errors are *apiError.
func parseUpload(body []byte) (*storedAttachment, error) {
	var d attachmentData
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, newAPIError(http.StatusBadRequest, CodeBadSyntax, "the body is not JSON AttachmentData")
	}
	if d.OriginalBase64 == "" {
		return nil, newAPIError(http.StatusBadRequest, CodeMissingProperty, "originalBase64 is required")
	}
	orig, ok := decodeBase64(d.OriginalBase64)
	if !ok {
		return nil, newAPIError(http.StatusBadRequest, CodeBadArgument, "originalBase64 is not base64")
	}
	var thumb []byte
	if d.ThumbnailBase64 != "" {
		if thumb, ok = decodeBase64(d.ThumbnailBase64); !ok {
			return nil, newAPIError(http.StatusBadRequest, CodeBadArgument, "thumbnailBase64 is not base64")
		}
	}
	if len(orig)+len(thumb) > maxAttachmentBytes {
		return nil, newAPIError(http.StatusRequestEntityTooLarge, CodeMessageSizeTooBig,
			"attachments are limited to "+strconv.Itoa(maxAttachmentBytes)+" bytes")
	}
	ctype := d.Type
	if _, _, err := mime.ParseMediaType(ctype); err != nil {
		ctype = "application/octet-stream"
	}
	return &storedAttachment{name: d.Name, ctype: ctype, original: orig, thumbnail: thumb}, nil
}

// uploadAttachment serves UploadAttachment (POST …/attachments).
func (c *Channel) uploadAttachment(w http.ResponseWriter, r *http.Request, rt route) {
	if _, err := c.conversation(r.Context(), rt.convID); err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(w, r, maxUploadBody)
	if err != nil {
		writeError(w, err)
		return
	}
	a, err := parseUpload(body)
	if err != nil {
		writeError(w, err)
		return
	}
	a.convID = rt.convID
	id, ok := c.attachments.put(a)
	if !ok {
		writeError(w, newAPIError(http.StatusServiceUnavailable, CodeServiceError, "the attachment store is full"))
		return
	}
	c.log.Debug().Str("conv_id", rt.convID).Str("attachment_id", id).Int("bytes", a.size()).Msg("attachment uploaded")
	writeJSON(w, http.StatusOK, resourceResponse{ID: id})
}

// attachmentInfo is the Connector's AttachmentInfo.
type attachmentInfo struct {
	Name  string     `json:"name"`
	Type  string     `json:"type"`
	Views []viewInfo `json:"views"`
}

type viewInfo struct {
	ViewID string `json:"viewId"`
	Size   int    `json:"size"`
}

// serveAttachment serves GetAttachmentInfo (GET /v3/attachments/{id}) and GetAttachment
// (GET /v3/attachments/{id}/views/{viewId}).
func (c *Channel) serveAttachment(w http.ResponseWriter, r *http.Request) {
	const prefix = "/v3/attachments/"
	p, ok := strings.CutPrefix(rawPath(r), prefix)
	if !ok {
		writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "no such route"))
		return
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "no such route"))
			return
		}
		segs[i] = u
	}
	if !(len(segs) == 1 || len(segs) == 3 && segs[1] == "views") || segs[0] == "" {
		writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "no such route"))
		return
	}
	a := c.attachments.get(segs[0])
	if a == nil {
		writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "unknown attachment"))
		return
	}
	if len(segs) == 1 {
		info := attachmentInfo{Name: a.name, Type: a.ctype, Views: []viewInfo{{ViewID: viewOriginal, Size: len(a.original)}}}
		if a.thumbnail != nil {
			info.Views = append(info.Views, viewInfo{ViewID: viewThumbnail, Size: len(a.thumbnail)})
		}
		writeJSON(w, http.StatusOK, info)
		return
	}
	var data []byte
	ctype := a.ctype
	switch segs[2] {
	case viewOriginal:
		data = a.original
	case viewThumbnail:
		data = a.thumbnail
		ctype = http.DetectContentType(data)
	}
	if data == nil {
		writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "unknown view"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if a.name != "" {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.name}))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
