// Package ecsarn reads the parts of ECS ARNs and task definition
// references that the reconciler needs, with the SDK's ARN parser.
package ecsarn

import (
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// MaxFamilyLength is the longest family name ECS accepts.
const MaxFamilyLength = 255

// Family returns the family of a task definition reference: a full ARN
// (arn:aws:ecs:region:account:task-definition/family:revision),
// family:revision, or a bare family. It returns "" for anything else: an
// ARN of another resource, a revision that is not a number, a name that
// cannot be a family. The result is a part of ref, not a copy.
func Family(ref string) string {
	if ref == "" {
		return ""
	}
	if strings.HasPrefix(ref, "arn:") {
		a, err := arn.Parse(ref)
		if err != nil {
			return ""
		}
		var ok bool
		if ref, ok = strings.CutPrefix(a.Resource, "task-definition/"); !ok {
			return ""
		}
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 {
		if _, err := strconv.Atoi(ref[i+1:]); err != nil {
			return ""
		}
		ref = ref[:i]
	}
	if !ValidFamily(ref) {
		return ""
	}
	return ref
}

// ValidFamily reports whether s can be a family name: 1-255 letters,
// digits, hyphens and underscores.
func ValidFamily(s string) bool {
	if s == "" || len(s) > MaxFamilyLength {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// ServiceCluster returns the cluster name of a new-format service ARN
// (arn:aws:ecs:region:account:service/cluster/service), or "" for the old
// format (service/name), which does not say, and for anything else.
func ServiceCluster(ref string) string {
	a, err := arn.Parse(ref)
	if err != nil {
		return ""
	}
	rest, ok := strings.CutPrefix(a.Resource, "service/")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 2 {
		return ""
	}
	return parts[0]
}
