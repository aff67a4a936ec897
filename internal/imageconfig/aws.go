package imageconfig

import (
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// WithAWS returns o with the AWS clients made from cfg (internal/cloud's
// config): ECR for cfg's Region, ECRFor making one client per other Region
// on first use, and Secrets Manager. Clients o already has are kept.
func WithAWS(cfg aws.Config, o Options) Options {
	if o.ECR == nil {
		o.ECR = ecr.NewFromConfig(cfg)
	}
	if o.ECRFor == nil {
		home := o.ECR
		var mu sync.Mutex
		clients := map[string]ECRAPI{}
		o.ECRFor = func(region string) ECRAPI {
			if region == cfg.Region || region == "" {
				return home
			}
			mu.Lock()
			defer mu.Unlock()
			c, ok := clients[region]
			if !ok {
				c = ecr.NewFromConfig(cfg, func(eo *ecr.Options) { eo.Region = region })
				clients[region] = c
			}
			return c
		}
	}
	if o.Secrets == nil {
		o.Secrets = secretsmanager.NewFromConfig(cfg)
	}
	return o
}
