package watch

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// CallerIdentityAPI is the STS call that names the reconciler's account.
type CallerIdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// ownAccountTimeout bounds the STS call of OwnAccount (retries included):
// a network without a route to STS must not hold the start up for long.
const ownAccountTimeout = 10 * time.Second

// OwnAccount returns the account whose events the consumer takes
// (ConsumerOptions.Account): the account of the credentials, from STS
// GetCallerIdentity (which needs no permission). When STS does not answer
// it returns the account of queueURL, or "", with STS's error.
func OwnAccount(ctx context.Context, client CallerIdentityAPI, queueURL string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ownAccountTimeout)
	defer cancel()
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err == nil && !isAccountID(aws.ToString(out.Account)) {
		err = fmt.Errorf("account %q is not 12 digits", aws.ToString(out.Account))
	}
	if err != nil {
		return AccountOfQueueURL(queueURL), fmt.Errorf("sts GetCallerIdentity: %w", err)
	}
	return aws.ToString(out.Account), nil
}

// AccountOfQueueURL returns the account of an SQS queue URL
// (https://sqs.<region>.amazonaws.com/<account>/<name>), or "".
func AccountOfQueueURL(queueURL string) string {
	u, err := url.Parse(queueURL)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || !isAccountID(parts[0]) {
		return ""
	}
	return parts[0]
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// bounded cuts a value taken from a message to at most 64 bytes (on a rune
// boundary) for a log line.
func bounded(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
