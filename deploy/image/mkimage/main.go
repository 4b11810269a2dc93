// Command mkimage builds the bfbridge container image without a container engine or a registry
// (package deploy/image) and writes it as an OCI image layout and a tarball for `docker load`:
//
//	go run ./deploy/image/mkimage -out dist -version 1.0.0
//	docker load -i dist/bfbridge.tar         # or: skopeo copy oci:dist/oci:bfbridge:1.0.0 …
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bfbridge/bfbridge/deploy/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "dist", "directory to write oci/ (an OCI image layout) and bfbridge.tar into")
	version := flag.String("version", "dev", "the image's version: its tag and org.opencontainers.image.version")
	revision := flag.String("revision", "", "the commit: org.opencontainers.image.revision")
	arch := flag.String("arch", "", "GOARCH of the binary and the image (default: this machine's)")
	certs := flag.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to put in the image (empty: none)")
	root := flag.String("root", ".", "the bfbridge module's directory")
	flag.Parse()

	o := image.Options{Binary: filepath.Join(*out, "bridge"), Version: *version, Revision: *revision, Arch: *arch}
	if *certs != "" {
		if _, err := os.Stat(*certs); err != nil {
			return fmt.Errorf("-ca-certs: %w", err)
		}
		o.CACerts = *certs
	}
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		var s int64
		if _, err := fmt.Sscan(epoch, &s); err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		o.Created = time.Unix(s, 0)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := image.BuildBinary(context.Background(), *root, o.Binary, *arch); err != nil {
		return err
	}
	img, err := image.Build(o)
	if err != nil {
		return err
	}
	ref := "bfbridge:" + *version
	if err := image.WriteLayout(filepath.Join(*out, "oci"), ref, img); err != nil {
		return err
	}
	if err := image.WriteTarball(filepath.Join(*out, "bfbridge.tar"), ref, img); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n%s\n%s\n", ref, d, filepath.Join(*out, "oci"), filepath.Join(*out, "bfbridge.tar"))
	return nil
}
