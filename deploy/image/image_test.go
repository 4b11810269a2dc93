package image_test

import (
	"archive/tar"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/deploy/image"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// TestImageBuildsOffline builds the static binary and the image from it (no engine, no
// registry), writes it as an OCI layout and a docker tarball, reads both back, and checks the
// config (entrypoint, user, port, volume, labels), the files of the layer (the non-root user,
// /data owned by it), and that the binary taken out of the layer is static and runs here.
func TestImageBuildsOffline(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image's binary is a linux one, run here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // the first static build compiles everything once (CGO off)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "bridge")
	require.NoError(t, image.BuildBinary(ctx, testutil.RepoRoot(t), bin, ""))

	o := image.Options{Binary: bin, Version: "1.2.3-test", Revision: "0123abcd", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		o.CACerts = "/etc/ssl/certs/ca-certificates.crt"
	}
	img, err := image.Build(o)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, image.WriteLayout(filepath.Join(dir, "oci"), "bfbridge:1.2.3-test", img))
	require.NoError(t, image.WriteTarball(filepath.Join(dir, "bfbridge.tar"), "bfbridge:1.2.3-test", img))

	fromLayout := readLayout(t, filepath.Join(dir, "oci"))
	checkConfig(t, fromLayout, o)
	files := checkLayer(t, fromLayout, dir, o.CACerts != "")
	checkBinary(t, files[image.BinaryPath[1:]])

	fromTar, err := tarball.ImageFromPath(filepath.Join(dir, "bfbridge.tar"), nil)
	require.NoError(t, err)
	want, err := fromLayout.ConfigName()
	require.NoError(t, err)
	got, err := fromTar.ConfigName()
	require.NoError(t, err)
	require.Equal(t, want, got, "the tarball holds the same image")

	again, err := image.Build(o)
	require.NoError(t, err)
	d1, err := img.Digest()
	require.NoError(t, err)
	d2, err := again.Digest()
	require.NoError(t, err)
	require.Equal(t, d1, d2, "the build is reproducible")
}

// readLayout reads the one image of an OCI layout back, checking the index's ref name.
func readLayout(t *testing.T, dir string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	m, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, m.Manifests, 1)
	d := m.Manifests[0]
	require.Equal(t, types.OCIManifestSchema1, d.MediaType)
	require.Equal(t, "bfbridge:1.2.3-test", d.Annotations["org.opencontainers.image.ref.name"])
	img, err := idx.Image(d.Digest)
	require.NoError(t, err)
	return img
}

func checkConfig(t *testing.T, img v1.Image, o image.Options) {
	t.Helper()
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	mt, err := img.MediaType()
	require.NoError(t, err)
	require.Equal(t, types.OCIManifestSchema1, mt)
	require.Equal(t, "linux", cf.OS)
	require.Equal(t, runtime.GOARCH, cf.Architecture)
	c := cf.Config
	require.Equal(t, []string{"/usr/local/bin/bridge"}, c.Entrypoint)
	require.Equal(t, []string{"serve"}, c.Cmd)
	require.Equal(t, "65532:65532", c.User, "non-root")
	require.Equal(t, map[string]struct{}{"8080/tcp": {}}, c.ExposedPorts, "the public port only: the admin listener stays on loopback")
	require.Equal(t, map[string]struct{}{"/data": {}}, c.Volumes)
	require.Contains(t, c.Env, "BRIDGE_DATA_DIR=/data")
	require.Contains(t, c.Env, "BRIDGE_LISTEN=0.0.0.0:8080")
	require.Equal(t, map[string]string{
		"org.opencontainers.image.title":       "bfbridge",
		"org.opencontainers.image.description": "Bridges Bot Framework bots and human contact centers",
		"org.opencontainers.image.source":      "https://github.com/bfbridge/bfbridge",
		"org.opencontainers.image.version":     "1.2.3-test",
		"org.opencontainers.image.revision":    "0123abcd",
		"org.opencontainers.image.created":     "2026-01-02T03:04:05Z",
	}, c.Labels)
	require.Len(t, cf.RootFS.DiffIDs, 1)
}

// checkLayer reads the image's one layer, checks its users and directories, and writes its
// regular files under dir; it returns their paths by name.
func checkLayer(t *testing.T, img v1.Image, dir string, withCerts bool) map[string]string {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	mt, err := layers[0].MediaType()
	require.NoError(t, err)
	require.Equal(t, types.OCILayer, mt)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	headers, files := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		headers[strings.TrimSuffix(h.Name, "/")] = h
		if h.Typeflag == tar.TypeReg {
			p := filepath.Join(dir, "rootfs", filepath.FromSlash(h.Name))
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			require.NoError(t, err)
			_, err = io.Copy(f, tr)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			files[h.Name] = p
		}
	}
	passwd, err := os.ReadFile(files["etc/passwd"])
	require.NoError(t, err)
	require.Contains(t, string(passwd), "nonroot:x:65532:65532:")
	group, err := os.ReadFile(files["etc/group"])
	require.NoError(t, err)
	require.Contains(t, string(group), "nonroot:x:65532:")
	data := headers["data"]
	require.NotNil(t, data, "/data is in the layer")
	require.Equal(t, byte(tar.TypeDir), data.Typeflag)
	require.Equal(t, 65532, data.Uid, "the store's directory belongs to the non-root user")
	bin := headers["usr/local/bin/bridge"]
	require.NotNil(t, bin)
	require.Equal(t, 0, bin.Uid, "the binary belongs to root: the process cannot change it")
	require.Equal(t, int64(0o755), bin.Mode)
	if withCerts {
		require.Contains(t, files, "etc/ssl/certs/ca-certificates.crt")
	}
	return files
}

// checkBinary checks that the binary is static (no interpreter, no shared libraries: it runs on
// an empty base) and runs: `bridge config defaults` prints the configuration.
func checkBinary(t *testing.T, path string) {
	t.Helper()
	require.NotEmpty(t, path, "the binary is in the layer")
	f, err := elf.Open(path)
	require.NoError(t, err)
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "a static binary has no dynamic loader")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs)
	require.NoError(t, f.Close())
	out, err := exec.Command(path, "config", "defaults").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "listen:")
}
