package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/imageconfig"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// registryAccess is how the registries are spoken to: the images section
// of the config, with render's flags applied.
type registryAccess struct {
	tagTTL, timeout time.Duration
	insecure        []string // host[:port] allowed plain http
	caFiles         []string // PEM files added to the system's roots
	pinDigest       bool
	// dockerConfig reads docker login's credentials (the Docker config and
	// its credential helpers) for registries that are neither ECR nor
	// covered by repositoryCredentials: render only (see docs/render.md).
	dockerConfig bool
}

// registryTransport, when set, is the HTTP transport to the registries;
// nil (outside tests) is go-containerregistry's default. Tests set it to
// reach a registry on 127.0.0.1 by a host name that is not a loopback one.
var registryTransport *http.Transport

// accessOf is what the config's images section says.
func accessOf(im config.Images) registryAccess {
	return registryAccess{
		tagTTL: im.TagTTL.Duration, timeout: im.Timeout.Duration,
		insecure: im.InsecureRegistries, caFiles: im.CAFiles, pinDigest: im.PinDigest,
	}
}

// newImageResolver makes the registry reader from the clients' AWS config:
// ECR tokens and repositoryCredentials secrets go through awsCfg (a secret
// of another Region with a client of its Region). The layer walk (for
// /bin/sh and sudo) runs only when one of the profiles needs it.
func newImageResolver(awsCfg aws.Config, ra registryAccess, profiles ...patch.Profile) (*imageconfig.Resolver, error) {
	detect := false
	for _, p := range profiles {
		detect = detect || imageconfig.DetectShellFor(p)
	}
	roots, err := imageconfig.RootCAs(ra.caFiles)
	if err != nil {
		return nil, err
	}
	o := imageconfig.Options{
		DetectShell: detect, TagTTL: ra.tagTTL, Timeout: ra.timeout,
		Insecure: imageconfig.InsecureHosts(ra.insecure), RootCAs: roots, PinDigest: ra.pinDigest,
	}
	if registryTransport != nil {
		o.Transport = registryTransport
	}
	if ra.dockerConfig {
		o.Keychain = authn.DefaultKeychain
	}
	return imageconfig.New(imageconfig.WithAWS(awsCfg, o))
}

// configuredImages is the image reader of run and plan: nil when the
// configuration turns it off (images.resolve: false).
func configuredImages(cfg *config.Config, awsCfg aws.Config, log *slog.Logger) (controller.ImageResolver, error) {
	if !cfg.Images.Resolve {
		log.Warn("image configs are not read (images.resolve: false): task definitions that do not state their command are refused")
		return nil, nil
	}
	var profiles []patch.Profile
	for _, name := range cfg.ProfileNames() {
		p, _ := cfg.Profile(name)
		profiles = append(profiles, p)
	}
	r, err := newImageResolver(awsCfg, accessOf(cfg.Images), profiles...)
	if err != nil {
		return nil, fmt.Errorf("image resolver: %w", err)
	}
	return r, nil
}

// resolveImages reads what the images of td declare, for render
// --resolve-images. A lookup that fails is returned in errs, not err: the
// patch then refuses the containers that needed it, with its reason.
func resolveImages(ctx context.Context, a config.AWS, ra registryAccess, prof patch.Profile, td *types.TaskDefinition) (map[string]patch.Image, []error, error) {
	region := a.Region
	if region == "" {
		// ECR registries are read with a token of their own Region (from
		// the host name), secrets given by ARN in theirs; the home Region
		// serves secrets given by name.
		region = "us-east-1"
	}
	awsCfg, _, err := cloud.New(ctx, cloud.Options{
		Region: region, Endpoint: a.Endpoint, MaxAttempts: a.MaxAttempts,
		BudgetShare: a.APIBudget.Share, AppID: "ecs-sidecar-reconciler",
	})
	if err != nil {
		return nil, nil, err
	}
	ra.tagTTL = 0 // one process, one lookup per image
	ra.dockerConfig = true
	r, err := newImageResolver(awsCfg, ra, prof)
	if err != nil {
		return nil, nil, fmt.Errorf("image resolver: %w", err)
	}
	images, errs := r.Images(ctx, patch.ImageCandidates(td, prof, patch.Options{}))
	return images, errs, nil
}
