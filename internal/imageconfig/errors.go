package imageconfig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Code says why a lookup failed. Codes become metric label values and log
// fields, so the set is closed: see Codes.
type Code string

// The failure codes of a lookup.
const (
	// CodeInvalidReference: the container's image is empty or not a valid
	// reference, or its runtime platform is not one ECS runs.
	CodeInvalidReference Code = "invalid_reference"
	// CodeCredentials: the credentials for the registry could not be had
	// (ecr:GetAuthorizationToken or secretsmanager:GetSecretValue failed,
	// or the secret is not {"username","password"}).
	CodeCredentials Code = "credentials"
	// CodeAuth: the registry refused the request (401, 403).
	CodeAuth Code = "auth"
	// CodeNotFound: no such repository, tag or digest.
	CodeNotFound Code = "not_found"
	// CodeTimeout: the lookup ran out of time.
	CodeTimeout Code = "timeout"
	// CodeCanceled: the caller gave up (its context was canceled).
	CodeCanceled Code = "canceled"
	// CodeThrottled: the registry answered 429 (Docker Hub's pull limit).
	CodeThrottled Code = "throttled"
	// CodeSchema1: a Docker schema 1 manifest, which no current runtime
	// pulls and which has no config blob.
	CodeSchema1 Code = "schema1"
	// CodePlatformMissing: a multi-arch index without the task's platform.
	CodePlatformMissing Code = "platform_missing"
	// CodeUnsupported: the reference names something that is not a
	// container image (an artifact, an unknown media type).
	CodeUnsupported Code = "unsupported"
	// CodeRegistryError: anything else the registry or the network did.
	CodeRegistryError Code = "registry_error"
)

// Codes lists every failure code, for pre-creating metric series.
func Codes() []Code {
	return []Code{
		CodeInvalidReference, CodeCredentials, CodeAuth, CodeNotFound, CodeTimeout,
		CodeCanceled, CodeThrottled, CodeSchema1, CodePlatformMissing, CodeUnsupported,
		CodeRegistryError,
	}
}

// LookupError is the error of a failed lookup. Its text never holds a
// credential: secret values and tokens are not part of any wrapped error.
type LookupError struct {
	Code  Code
	Image string // the reference as the task definition wrote it
	Err   error
}

func (e *LookupError) Error() string {
	return fmt.Sprintf("image %s: %s: %v", e.Image, e.Code, e.Err)
}

func (e *LookupError) Unwrap() error { return e.Err }

// CodeOf returns the code of the LookupError in err's chain, or "" when
// there is none.
func CodeOf(err error) Code {
	var le *LookupError
	if errors.As(err, &le) {
		return le.Code
	}
	return ""
}

// lookupErr wraps err with code, or with the code classify finds when code
// is empty. A LookupError passes through unchanged.
func lookupErr(image string, code Code, err error) error {
	var le *LookupError
	if errors.As(err, &le) {
		if le.Image == "" {
			return &LookupError{Code: le.Code, Image: image, Err: le.Err}
		}
		return err
	}
	if code == "" {
		code = classify(err)
	}
	return &LookupError{Code: code, Image: image, Err: err}
}

// classify maps a registry or network error to a code.
func classify(err error) Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	}
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return CodeAuth
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return CodeNotFound
			case transport.TooManyRequestsErrorCode:
				return CodeThrottled
			}
		}
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return CodeAuth
		case http.StatusNotFound:
			return CodeNotFound
		case http.StatusTooManyRequests:
			return CodeThrottled
		}
		return CodeRegistryError
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return CodeTimeout
	}
	return CodeRegistryError
}
