package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// redacted replaces a plaintext token in what --diff prints.
const redacted = "(redacted)"

// redactTokens returns a copy of in whose plaintext tokens are redacted:
// every variable named LaceworkAccessToken (the profile's or the
// container's own) and every variable whose value is token. in is not
// modified.
func redactTokens(in *ecs.RegisterTaskDefinitionInput, token string) *ecs.RegisterTaskDefinitionInput {
	cp := *in
	cp.ContainerDefinitions = slices.Clone(in.ContainerDefinitions)
	for i := range cp.ContainerDefinitions {
		c := &cp.ContainerDefinitions[i]
		c.Environment = slices.Clone(c.Environment)
		for j := range c.Environment {
			kv := &c.Environment[j]
			if aws.ToString(kv.Name) == patch.EnvAccessToken || (token != "" && aws.ToString(kv.Value) == token) {
				kv.Value = aws.String(redacted)
			}
		}
	}
	return &cp
}

// redactText replaces token wherever it is left in s (a command line, a
// tag), as written and as JSON escapes it.
func redactText(s, token string) string {
	if token == "" {
		return s
	}
	s = strings.ReplaceAll(s, token, redacted)
	if b, err := json.Marshal(token); err == nil {
		s = strings.ReplaceAll(s, string(b[1:len(b)-1]), redacted)
	}
	return s
}

// lineDiff returns a unified-style diff of a and b (whole files, no hunks:
// render's JSON is small and reads best in full), lines prefixed with
// "-", "+" or " ". It is a longest-common-subsequence diff, O(len(a)*len(b)).
func lineDiff(nameA, nameB, a, b string) string {
	x := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	y := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			sb.WriteString(" " + x[i] + "\n")
			i++
			j++
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			sb.WriteString("-" + x[i] + "\n")
			i++
		default:
			sb.WriteString("+" + y[j] + "\n")
			j++
		}
	}
	return sb.String()
}
