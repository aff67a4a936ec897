// Package cloud builds the one aws.Config every client of the reconciler
// uses: region and credentials from the usual chain, an optional endpoint
// override (awssim, moto), SDK retries chosen on purpose, the reconciler's own
// token buckets per ECS throttle category in front of every attempt, and a
// middleware that reports every attempt by service, operation and error code.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Options of New. The zero value talks to AWS with the default credential
// chain, 5 attempts per call and half of the account's ECS throttle budget.
type Options struct {
	// Region overrides the chain's region (AWS_REGION, the shared config).
	Region string
	// Endpoint, when set, is the base URL of every service (awssim, moto).
	Endpoint string
	// StaticCredentials, when set, replaces the credential chain (the
	// embedded AWS accepts any key).
	StaticCredentials *aws.Credentials
	// MaxAttempts is the number of attempts per call, the first included
	// (default 5).
	MaxAttempts int
	// MaxBackoff caps the wait between attempts (default 20s).
	MaxBackoff time.Duration
	// BudgetShare is the share (0 < share <= 1) of each ECS throttle bucket
	// of the account that the reconciler may use (default 0.5): the bucket is
	// shared with CI pipelines and consoles, which must not be starved.
	BudgetShare float64
	// Buckets overrides AWS's published bucket sizes (tests, benchmarks
	// against a simulator scaled up); nil means Buckets().
	Buckets map[Category]Bucket
	// Observe is called once per attempt with the service, the operation
	// and the error code ("" on success). It must be safe for concurrent use.
	Observe func(service, operation, errorCode string)
	// AppID is added to the user agent.
	AppID string
}

// New returns the aws.Config for every client, and the limiter it installed
// (so that callers can report its waits).
func New(ctx context.Context, o Options) (aws.Config, *Limiter, error) {
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	if o.MaxAttempts < 1 {
		return aws.Config{}, nil, fmt.Errorf("cloud: max attempts %d: must be at least 1", o.MaxAttempts)
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 20 * time.Second
	}
	if o.BudgetShare == 0 {
		o.BudgetShare = 0.5
	}
	if o.BudgetShare < 0 || o.BudgetShare > 1 {
		return aws.Config{}, nil, fmt.Errorf("cloud: budget share %v: must be in (0, 1]", o.BudgetShare)
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return aws.Config{}, nil, fmt.Errorf("cloud: endpoint %q: not an http(s) URL", o.Endpoint)
		}
	}
	buckets := o.Buckets
	if buckets == nil {
		buckets = Buckets()
	}
	limiter := NewLimiter(buckets, o.BudgetShare)

	loadOpts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = o.MaxAttempts
				so.MaxBackoff = o.MaxBackoff
				// The SDK's client-side retry quota would, under sustained
				// throttling, fail calls at once with a quota error. Pacing
				// is the token buckets' job (in front of every attempt), so
				// the quota is off and a throttled attempt is simply retried
				// after its backoff and a token.
				so.RateLimiter = ratelimit.None
			})
		}),
	}
	if o.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(o.Region))
	}
	if o.StaticCredentials != nil {
		c := *o.StaticCredentials
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	if o.AppID != "" {
		loadOpts = append(loadOpts, awsconfig.WithAppID(o.AppID))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return aws.Config{}, nil, fmt.Errorf("cloud: load aws config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, nil, errors.New("cloud: no region: set aws.region in the config or AWS_REGION")
	}
	if o.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(o.Endpoint)
	}
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return addMiddlewares(st, limiter, o.Observe)
	})
	return cfg, limiter, nil
}

// addMiddlewares puts the limiter and the observer after the SDK's retry
// middleware, so that each attempt, retries included, waits for a token and
// is counted.
func addMiddlewares(st *middleware.Stack, l *Limiter, observe func(service, operation, errorCode string)) error {
	err := st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("ReconcilerLimiter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
			if err := l.Wait(ctx, service, op); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}
			out, md, err := next.HandleFinalize(ctx, in)
			if observe != nil {
				observe(service, op, ErrorCode(err))
			}
			return out, md, err
		}), "Retry", middleware.After)
	if err != nil {
		return fmt.Errorf("cloud: add limiter middleware: %w", err)
	}
	return nil
}

// ErrorCode is the AWS error code of err ("" for nil), "Canceled" for a
// cancelled context, or "Transport" for an error that carries no code
// (connection reset, timeout).
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return ae.ErrorCode()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "Canceled"
	}
	return "Transport"
}
