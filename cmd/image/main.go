// Command image builds the reconciler's container image for linux/amd64 and
// linux/arm64 without a Docker engine (internal/image says why
// go-containerregistry and not ko), writes it as an OCI image layout, and
// with --push writes it to a registry such as ECR. `make image` runs it;
// docs/image.md has the ECR commands.
//
//	go run ./cmd/image [--out dist/image] [--version V] [--platform linux/amd64,linux/arm64]
//	                   [--push REF [--password-stdin [--username AWS]]]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ecs-sidecar/reconciler/internal/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	out := fs.String("out", "dist/image", "directory of the OCI image layout to write (replaced if it is one); empty: none")
	version := fs.String("version", "dev", "version linked into the binary (main.version) and in the labels; also the layout's ref name")
	platforms := fs.String("platform", "linux/amd64,linux/arm64", "platforms, comma-separated")
	caCerts := fs.String("ca-certs", image.CABundle, "CA bundle of this machine to copy into the image")
	moduleDir := fs.String("C", ".", "directory of the reconciler's go.mod")
	push := fs.String("push", "", "also push the index to this reference, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/ecs-sidecar-reconciler:v1.2.3")
	passwordStdin := fs.Bool("password-stdin", false, "with --push: read the registry password from stdin (aws ecr get-login-password | ...); default: the Docker config's credentials and credential helpers")
	username := fs.String("username", "AWS", "with --password-stdin: the registry user name (ECR's is AWS)")
	keepPaths := fs.Bool("keep-paths", false, "compile without -trimpath (the binary then holds this machine's paths); shares the go build cache with go build and go vet: for tests")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: image [flags]\n\nBuilds the reconciler's OCI image (both Fargate architectures) without Docker.\n\nflags:")
		fs.PrintDefaults()
	}
	// The flag package would print the usage to stderr even for --help:
	// print it once, ourselves, to stdout for --help and to stderr after
	// the error of a bad flag.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, "image: %v\n", err)
		fs.Usage()
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "image: "+format+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(2, "unexpected arguments %q", fs.Args())
	}
	if *out == "" && *push == "" {
		return fail(2, "nothing to do: --out is empty and there is no --push")
	}
	if *passwordStdin && *push == "" {
		return fail(2, "--password-stdin needs --push")
	}
	ps, err := image.ParsePlatforms(*platforms)
	if err != nil {
		return fail(2, "--platform: %v", err)
	}
	created, err := image.SourceDateEpoch(getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return fail(2, "%v", err)
	}
	var keychain authn.Keychain = authn.DefaultKeychain
	if *passwordStdin {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return fail(1, "reading the password from stdin: %v", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return fail(2, "--password-stdin: stdin is empty")
		}
		keychain = image.StaticKeychain{Username: *username, Password: pw}
	}

	start := time.Now()
	idx, err := image.Build(ctx, image.Options{KeepPaths: *keepPaths,
		ModuleDir: *moduleDir, Version: *version, Platforms: ps, CACerts: *caCerts,
		Created: created, Log: stderr,
	})
	if err != nil {
		return fail(1, "%v", err)
	}
	d, err := idx.Digest()
	if err != nil {
		return fail(1, "%v", err)
	}
	if *out != "" {
		if _, err := image.WriteLayout(*out, idx, *version); err != nil {
			return fail(1, "writing %s: %v", *out, err)
		}
		fmt.Fprintf(stdout, "image: wrote %s (OCI image layout, index %s: %s) in %s\n",
			*out, d, platformList(ps), time.Since(start).Round(100*time.Millisecond))
	}
	if *push != "" {
		pinned, err := image.Push(ctx, idx, *push, keychain)
		if err != nil {
			return fail(1, "%v", err)
		}
		fmt.Fprintf(stdout, "image: pushed %s\nimage: ImageUri=%s\n", *push, pinned)
	}
	return 0
}

func platformList(ps []v1.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
