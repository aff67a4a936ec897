package imageconfig

import (
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// WithAWS returns o with the AWS clients made from cfg (internal/cloud's
// config): ECR for cfg's Region, ECRFor making one client per other Region
// on first use, and Secrets Manager likewise (Secrets, SecretsFor), every
// client of cfg with only its Region changed. Clients o already has are
// kept.
func WithAWS(cfg aws.Config, o Options) Options {
	if o.ECR == nil {
		o.ECR = ecr.NewFromConfig(cfg)
	}
	if o.ECRFor == nil {
		o.ECRFor = perRegion(cfg.Region, o.ECR, func(region string) ECRAPI {
			return ecr.NewFromConfig(cfg, func(eo *ecr.Options) { eo.Region = region })
		})
	}
	if o.Secrets == nil {
		o.Secrets = secretsmanager.NewFromConfig(cfg)
	}
	if o.SecretsFor == nil {
		o.SecretsFor = perRegion(cfg.Region, o.Secrets, func(region string) SecretsAPI {
			return secretsmanager.NewFromConfig(cfg, func(so *secretsmanager.Options) { so.Region = region })
		})
	}
	return o
}

// perRegion returns a function that gives home for the home Region (or
// none) and, for another, the client made by mk on first use.
func perRegion[T any](homeRegion string, home T, mk func(region string) T) func(string) T {
	var mu sync.Mutex
	clients := map[string]T{}
	return func(region string) T {
		if region == homeRegion || region == "" {
			return home
		}
		mu.Lock()
		defer mu.Unlock()
		c, ok := clients[region]
		if !ok {
			c = mk(region)
			clients[region] = c
		}
		return c
	}
}
