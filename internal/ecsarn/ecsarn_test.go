package ecsarn

import (
	"strings"
	"testing"
)

func TestFamily(t *testing.T) {
	tests := map[string]string{
		"arn:aws:ecs:us-east-1:1:task-definition/web:42":                 "web",
		"arn:aws:ecs:us-east-1:1:task-definition/web":                    "web",
		"arn:aws-cn:ecs:cn-north-1:123456789012:task-definition/a_b-1:7": "a_b-1",
		"web:42":     "web",
		"web":        "web",
		"web:latest": "",
		"arn:aws:ecs:us-east-1:1:service/prod/web": "",
		"arn:task-definition/web:1":                "",
		"we b":                                     "",
		"":                                         "",
		strings.Repeat("a", 255):                   strings.Repeat("a", 255),
		strings.Repeat("a", 256):                   "",
	}
	for in, want := range tests {
		if got := Family(in); got != want {
			t.Errorf("Family(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServiceCluster(t *testing.T) {
	tests := map[string]string{
		"arn:aws:ecs:us-east-1:123456789012:service/prod/web": "prod",
		"arn:aws:ecs:us-east-1:123456789012:service/web":      "", // old format
		"arn:aws:ecs:us-east-1:123456789012:service/a/b/c":    "",
		"arn:aws:ecs:us-east-1:123456789012:cluster/prod":     "",
		"service/prod/web": "",
		"web":              "",
		"":                 "",
	}
	for in, want := range tests {
		if got := ServiceCluster(in); got != want {
			t.Errorf("ServiceCluster(%q) = %q, want %q", in, got, want)
		}
	}
}
