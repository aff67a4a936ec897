package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/imageconfig"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// newImageResolver makes the registry reader from the clients' AWS config:
// ECR tokens and repositoryCredentials secrets go through awsCfg. The layer
// walk (for /bin/sh and sudo) runs only when one of the profiles needs it.
func newImageResolver(awsCfg aws.Config, tagTTL time.Duration, profiles ...patch.Profile) (*imageconfig.Resolver, error) {
	detect := false
	for _, p := range profiles {
		detect = detect || imageconfig.DetectShellFor(p)
	}
	return imageconfig.New(imageconfig.WithAWS(awsCfg, imageconfig.Options{DetectShell: detect, TagTTL: tagTTL}))
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
	r, err := newImageResolver(awsCfg, cfg.Images.TagTTL.Duration, profiles...)
	if err != nil {
		return nil, fmt.Errorf("image resolver: %w", err)
	}
	return r, nil
}

// resolveImages reads what the images of td declare, for render
// --resolve-images. A lookup that fails is returned in errs, not err: the
// patch then refuses the containers that needed it, with its reason.
func resolveImages(ctx context.Context, a config.AWS, prof patch.Profile, td *types.TaskDefinition) (map[string]patch.Image, []error, error) {
	region := a.Region
	if region == "" {
		// ECR registries are read with a token of their own Region (from
		// the host name); the home Region only serves the secrets' client.
		region = "us-east-1"
	}
	awsCfg, _, err := cloud.New(ctx, cloud.Options{
		Region: region, Endpoint: a.Endpoint, MaxAttempts: a.MaxAttempts,
		BudgetShare: a.APIBudget.Share, AppID: "ecs-sidecar-reconciler",
	})
	if err != nil {
		return nil, nil, err
	}
	r, err := newImageResolver(awsCfg, 0, prof)
	if err != nil {
		return nil, nil, fmt.Errorf("image resolver: %w", err)
	}
	images, errs := r.Images(ctx, patch.ImageCandidates(td, prof, patch.Options{}))
	return images, errs, nil
}
