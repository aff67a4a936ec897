// Command cfnmacro is the CloudFormation macro that instruments a
// template's AWS::ECS::TaskDefinition resources at deploy time
// (internal/cfnmacro), as an AWS Lambda function (runtime provided.al2023,
// the binary named bootstrap). deploy/cloudformation/macro.yaml deploys it.
//
// Its configuration is the reconciler's, as YAML in RECONCILER_CONFIG_YAML
// (profiles, policies, tag prefix, mode; empty: the built-in lacework
// profile, which then has no token). The token is referenced by its
// secret's ARN (tokenSecretArn), which the task gets as a container secret:
// the macro never reads it. ON_REFUSAL says what an opted-in resource that
// is refused does: fail (default) fails the deployment with the reasons,
// leave deploys it uninstrumented and logs the reasons. MACRO_NAME is the
// name templates declare (default EcsSidecar).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ecs-sidecar/reconciler/internal/cfnmacro"
	"github.com/ecs-sidecar/reconciler/internal/config"
)

// Event is what CloudFormation sends a macro.
type Event struct {
	Region                  string         `json:"region"`
	AccountID               string         `json:"accountId"`
	Fragment                map[string]any `json:"fragment"`
	TransformID             string         `json:"transformId"`
	Params                  map[string]any `json:"params"`
	RequestID               string         `json:"requestId"`
	TemplateParameterValues map[string]any `json:"templateParameterValues"`
}

// Response is what a macro answers.
type Response struct {
	RequestID    string         `json:"requestId"`
	Status       string         `json:"status"`
	Fragment     map[string]any `json:"fragment,omitempty"`
	ErrorMessage string         `json:"errorMessage,omitempty"`
}

// handler is the macro with its configuration read.
type handler struct {
	opts      cfnmacro.Options
	leave     bool // ON_REFUSAL=leave
	log       *slog.Logger
	configErr error
}

func newHandler(getenv func(string) string, log *slog.Logger) *handler {
	h := &handler{log: log, opts: cfnmacro.Options{MacroName: getenv("MACRO_NAME")}}
	switch getenv("ON_REFUSAL") {
	case "", "fail":
	case "leave":
		h.leave = true
	default:
		h.configErr = fmt.Errorf("ON_REFUSAL=%q: want fail or leave", getenv("ON_REFUSAL"))
		return h
	}
	y := getenv("RECONCILER_CONFIG_YAML")
	if y == "" {
		y = "{}"
	}
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		// Config errors name keys, never a token's value.
		h.configErr = fmt.Errorf("RECONCILER_CONFIG_YAML: %w", err)
		return h
	}
	h.opts.Config = cfg
	return h
}

func (h *handler) handle(_ context.Context, ev Event) (Response, error) {
	resp := Response{RequestID: ev.RequestID, Status: "failure"}
	if h.configErr != nil {
		resp.ErrorMessage = h.configErr.Error()
		return resp, nil
	}
	out, rep, err := cfnmacro.Transform(ev.Fragment, ev.TemplateParameterValues, h.opts)
	for _, r := range rep.Resources {
		b, _ := json.Marshal(r)
		h.log.Info("resource", "requestId", ev.RequestID, "report", json.RawMessage(b))
	}
	var re *cfnmacro.RefusedError
	switch {
	case errors.As(err, &re) && h.leave:
		h.log.Warn("opted-in task definitions left uninstrumented", "requestId", ev.RequestID, "reasons", re.Error())
	case err != nil:
		resp.ErrorMessage = "EcsSidecar: " + err.Error()
		return resp, nil
	}
	resp.Status, resp.Fragment = "success", out
	return resp, nil
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	lambda.Start(newHandler(os.Getenv, log).handle)
}
