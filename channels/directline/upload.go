package directline

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/ttlmap"
)

// activityContentType marks the multipart part that carries the template activity [SEND].
const activityContentType = "application/vnd.microsoft.activity"

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
	limit := s.cfg.MaxUploadBytes
	if r.ContentLength > limit+64<<10 {
		return 0, nil, errTooLarge("the upload is over the limit of 4 MB")
	}
	body := io.LimitReader(r.Body, limit+64<<10+1) // multipart framing on top of the files
	var tmpl *activity.Activity
	var files []hostedFile
	total := int64(0)
	add := func(name, ctype string, rd io.Reader) *apiError {
		data, err := io.ReadAll(io.LimitReader(rd, limit-total+1))
		if err != nil {
			return errBadArgument("cannot read the upload")
		}
		total += int64(len(data))
		if total > limit {
			return errTooLarge("the upload is over the limit of 4 MB")
		}
		if ctype == "" {
			ctype = http.DetectContentType(data)
		}
		files = append(files, hostedFile{name: cleanName(name), contentType: ctype, data: data})
		return nil
	}
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return 0, nil, errBadArgument("the multipart body is malformed")
			}
			ct := part.Header.Get("Content-Type")
			if strings.HasPrefix(ct, activityContentType) || (part.FormName() == "activity" && part.FileName() == "") {
				raw, err := io.ReadAll(io.LimitReader(part, maxActivityBytes+1))
				if err != nil || len(raw) > maxActivityBytes {
					return 0, nil, errTooLarge("the activity is over the limit of 256K characters")
				}
				if tmpl, e = decodeActivity(raw); e != nil {
					return 0, nil, e
				}
				continue
			}
			if e := add(part.FileName(), ct, part); e != nil {
				return 0, nil, e
			}
		}
	} else {
		// The documented form has no disposition type: `name="file"; filename="x.jpg"` [SEND].
		cd := r.Header.Get("Content-Disposition")
		_, dp, err := mime.ParseMediaType(cd)
		if err != nil {
			_, dp, _ = mime.ParseMediaType("attachment; " + cd)
		}
		if e := add(dp["filename"], r.Header.Get("Content-Type"), body); e != nil {
			return 0, nil, e
		}
	}
	if len(files) == 0 {
		return 0, nil, errBadArgument("the upload has no file")
	}
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
	// Cards in the template stay; attachments without content stood for the uploaded files.
	kept := a.Attachments[:0:0]
	for _, att := range a.Attachments {
		if len(att.Content) > 0 {
			kept = append(kept, att)
		}
	}
	for _, f := range files {
		key, err := s.files.put(f)
		if err != nil {
			return 0, nil, &apiError{Status: http.StatusServiceUnavailable, Code: CodeServiceError, Message: err.Error(), RetryAfter: 60}
		}
		kept = append(kept, activity.Attachment{
			ContentType: f.contentType, Name: f.name,
			ContentURL: s.cfg.PublicURL + "/v3/directline/attachments/" + key + "/" + url.PathEscape(f.name),
		})
	}
	a.Attachments = kept
	return s.ingest(r, id, p, a)
}

func cleanName(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || name == "" {
		return "file"
	}
	return name
}

// attachment: GET /attachments/{key}/{name} — a hosted upload. The key is an unguessable
// random value: the link is private, as the service's attachment links are.
func (s *Server) attachment(w http.ResponseWriter, r *http.Request) {
	cors(w)
	f, ok := s.files.get(r.PathValue("key"))
	if !ok {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: CodeBadArgument, Message: "File not found"})
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": f.name}))
	http.ServeContent(w, r, f.name, f.created, bytes.NewReader(f.data))
}

type hostedFile struct {
	name, contentType string
	data              []byte
	created           time.Time
}

// fileStore keeps uploaded files in memory for their time to live, within a total size.
type fileStore struct {
	m *ttlmap.Map[hostedFile]
}

var errStoreFull = errors.New("attachment storage is full; retry later")

func newFileStore(ttl time.Duration) *fileStore {
	return &fileStore{m: ttlmap.New(ttlmap.Options[hostedFile]{
		TTL: ttl, MaxSize: 512 << 20, SweepEvery: time.Minute,
		Size: func(f hostedFile) int64 { return int64(len(f.data)) },
	})}
}

func (fs *fileStore) put(f hostedFile) (string, error) {
	f.created = time.Now()
	key := randomString(18)
	if !fs.m.Put(key, f) {
		return "", errStoreFull
	}
	return key, nil
}

func (fs *fileStore) get(key string) (hostedFile, bool) {
	return fs.m.Get(key)
}
