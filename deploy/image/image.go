// Package image builds the bfbridge container image without a container engine or a registry:
// one layer on an empty base (the static binary, /etc/passwd and /etc/group entries for a
// non-root user, the /data directory of the store, CA certificates when the builder has them),
// with the same entrypoint, user, port, volume and labels as the Dockerfile, written as an OCI
// image layout or a tarball that `docker load` and `podman load` read. The test command builds
// it offline and checks it (image_test.go); `go run ./deploy/image/mkimage` writes one.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's layout; the Dockerfile and the Helm chart say the same.
const (
	BinaryPath = "/usr/local/bin/bridge"
	DataDir    = "/data"
	UID        = 65532 // distroless's "nonroot", so both images run as the same user
	UserName   = "nonroot"
	PublicPort = "8080/tcp"
	// CACertsPath is where Go's crypto/x509 looks first on Linux.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
)

// Options say what goes into the image.
type Options struct {
	Binary   string    // the static bridge binary (BuildBinary)
	CACerts  string    // a CA bundle to copy to CACertsPath; "" for none (the bridge then cannot verify TLS peers)
	Version  string    // org.opencontainers.image.version; default "dev"
	Revision string    // org.opencontainers.image.revision (the commit); optional
	Created  time.Time // the image's creation time and every file's; default the Unix epoch, for reproducible builds
	Arch     string    // default runtime.GOARCH, the binary's
}

// BuildBinary builds ./cmd/bridge of the module at root as a static binary (CGO off: the SQLite
// store is modernc.org/sqlite, pure Go) for linux, at out.
func BuildBinary(ctx context.Context, root, out, arch string) error {
	if arch == "" {
		arch = runtime.GOARCH
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/bridge")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image: go build: %w: %s", err, b)
	}
	return nil
}

// Build returns the image: one layer on an empty base, and an OCI config.
func Build(o Options) (v1.Image, error) {
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC()
	body, err := layerTar(o)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(body)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching) // compressed once, not per writer
	if err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, configFile(o))
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: o.Created}, CreatedBy: "bfbridge deploy/image", Comment: "static binary, non-root user, /data",
	}})
	if err != nil {
		return nil, fmt.Errorf("image: append layer: %w", err)
	}
	return img, nil
}

// Labels are the image's OCI annotations (the org.opencontainers.image.* keys of the OCI image
// spec, annotations.md).
func Labels(o Options) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "bfbridge",
		"org.opencontainers.image.description": "Bridges Bot Framework bots and human contact centers",
		"org.opencontainers.image.source":      "https://github.com/bfbridge/bfbridge",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.created":     o.Created.UTC().Format(time.RFC3339),
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

func configFile(o Options) *v1.ConfigFile {
	return &v1.ConfigFile{
		Architecture: o.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: o.Created},
		Config: v1.Config{
			Entrypoint: []string{BinaryPath},
			Cmd:        []string{"serve"},
			User:       fmt.Sprintf("%d:%d", UID, UID),
			WorkingDir: DataDir,
			Env: []string{
				"PATH=/usr/local/bin",
				"BRIDGE_LISTEN=0.0.0.0:8080",
				"BRIDGE_DATA_DIR=" + DataDir,
			},
			ExposedPorts: map[string]struct{}{PublicPort: {}},
			Volumes:      map[string]struct{}{DataDir: {}},
			Labels:       Labels(o),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
}

// entry is one file or directory of the layer.
type entry struct {
	name     string
	mode     int64
	uid      int
	dir      bool
	body     []byte
	fromFile string
}

// layerTar is the layer: directories before their files, owned by root except /data.
func layerTar(o Options) ([]byte, error) {
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, body: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", UserName, UID, UID, UserName, UserName))},
		{name: "etc/group", mode: 0o644, body: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, UID))},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/" + UserName + "/", mode: 0o700, uid: UID, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: BinaryPath[1:], mode: 0o755, fromFile: o.Binary},
		{name: DataDir[1:] + "/", mode: 0o750, uid: UID, dir: true},
	}
	if o.CACerts != "" {
		entries = append(entries,
			entry{name: "etc/ssl/", mode: 0o755, dir: true},
			entry{name: "etc/ssl/certs/", mode: 0o755, dir: true},
			entry{name: CACertsPath[1:], mode: 0o644, fromFile: o.CACerts})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := writeEntry(tw, e, o.Created); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, e entry, mtime time.Time) error {
	if e.fromFile != "" {
		b, err := os.ReadFile(e.fromFile)
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		e.body = b
	}
	h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime, Format: tar.FormatPAX}
	if e.dir {
		h.Typeflag = tar.TypeDir
	} else {
		h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("image: layer %s: %w", e.name, err)
	}
	if _, err := tw.Write(e.body); err != nil {
		return fmt.Errorf("image: layer %s: %w", e.name, err)
	}
	return nil
}

// WriteLayout writes img as an OCI image layout in dir (created if needed), its manifest
// annotated with the reference name ref ("bfbridge:dev"): what skopeo, podman and containerd
// import as oci:dir:ref.
func WriteLayout(dir, ref string, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image: layout %s: %w", dir, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref,
	})); err != nil {
		return fmt.Errorf("image: layout %s: %w", dir, err)
	}
	return nil
}

// WriteTarball writes img as a tarball that `docker load` reads, tagged ref.
func WriteTarball(path, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return fmt.Errorf("image: tarball %s: %w", path, err)
	}
	return nil
}
