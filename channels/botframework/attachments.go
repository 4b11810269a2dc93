package botframework

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
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

// errStoreFull is put's answer when the uploads held in memory reach their cap.
var errStoreFull = errors.New("the attachment store is full")

// put stores a and returns its id, or errStoreFull.
func (s *attachmentStore) put(a *storedAttachment) (string, error) {
	var rnd [16]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+)
	id := hex.EncodeToString(rnd[:])
	if !s.m.Put(id, a) {
		return "", errStoreFull
	}
	return id, nil
}

func (s *attachmentStore) get(id string) *storedAttachment {
	a, _ := s.m.Get(id)
	return a
}

// Blobs is where the bot's uploads are kept when Config.Blobs sets it: the bridge's store (the
// Hub's ChannelState), shared by every instance of a multi-instance bridge.
type Blobs interface {
	PutBlob(ctx context.Context, convID, id string, b bridge.Blob) error
	Blob(ctx context.Context, convID, id string) (bridge.Blob, error)
}

// sharedPrefix starts the id of an upload kept in Blobs: "s.<conversation id, base64url>.<random>",
// so that any instance finds it from the id alone (GET /v3/attachments/{id} names no conversation).
const sharedPrefix = "s."

// blobAttachment is an upload as Blobs keeps it (one JSON blob: the bytes are base64).
type blobAttachment struct {
	Name      string `json:"name,omitempty"`
	Type      string `json:"type"`
	Original  []byte `json:"original"`
	Thumbnail []byte `json:"thumbnail,omitempty"`
}

// putShared keeps a in blobs and returns its id.
func putShared(ctx context.Context, blobs Blobs, a *storedAttachment) (string, error) {
	var rnd [16]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+)
	key := hex.EncodeToString(rnd[:])
	data, err := json.Marshal(blobAttachment{Name: a.name, Type: a.ctype, Original: a.original, Thumbnail: a.thumbnail})
	if err != nil {
		return "", err
	}
	if err := blobs.PutBlob(ctx, a.convID, "bf-upload:"+key, bridge.Blob{ContentType: "application/json", Data: data}); err != nil {
		return "", err
	}
	return sharedPrefix + base64.RawURLEncoding.EncodeToString([]byte(a.convID)) + "." + key, nil
}

// getShared reads the upload id from blobs; nil when there is none.
func getShared(ctx context.Context, blobs Blobs, id string) (*storedAttachment, error) {
	conv64, key, ok := strings.Cut(strings.TrimPrefix(id, sharedPrefix), ".")
	conv, err := base64.RawURLEncoding.DecodeString(conv64)
	if !ok || err != nil || key == "" {
		return nil, nil
	}
	b, err := blobs.Blob(ctx, string(conv), "bf-upload:"+key)
	if errors.Is(err, bridge.ErrNotFound) || errors.Is(err, bridge.ErrUnknownConversation) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ba blobAttachment
	if err := json.Unmarshal(b.Data, &ba); err != nil {
		return nil, fmt.Errorf("stored upload %s: %w", id, err)
	}
	return &storedAttachment{convID: string(conv), name: ba.Name, ctype: ba.Type, original: ba.Original, thumbnail: ba.Thumbnail}, nil
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
	var id string
	if c.cfg.Blobs != nil { // shared by the instances
		if id, err = putShared(r.Context(), c.cfg.Blobs, a); err != nil {
			c.log.Warn().Err(err).Str("conv_id", rt.convID).Msg("attachment not stored")
			writeError(w, newAPIError(http.StatusServiceUnavailable, CodeServiceError, "the attachment could not be stored"))
			return
		}
	} else if id, err = c.attachments.put(a); err != nil {
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
	var a *storedAttachment
	if strings.HasPrefix(segs[0], sharedPrefix) && c.cfg.Blobs != nil {
		var err error
		if a, err = getShared(r.Context(), c.cfg.Blobs, segs[0]); err != nil {
			c.log.Warn().Err(err).Str("attachment_id", segs[0]).Msg("attachment not read")
			writeError(w, newAPIError(http.StatusServiceUnavailable, CodeServiceError, "the attachment could not be read"))
			return
		}
	} else {
		a = c.attachments.get(segs[0])
	}
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
