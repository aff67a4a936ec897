package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ecs-sidecar/reconciler/internal/cfnmacro"
)

const configYAML = `profiles:
  lacework:
    tokenSecretArn: arn:aws:secretsmanager:us-east-1:123456789012:secret:lacework/agent-token-AbCdEf
`

// event is a macro event as CloudFormation sends it, decoded from JSON as
// the Lambda runtime decodes it.
func event(t *testing.T, fixture string) Event {
	t.Helper()
	b, err := os.ReadFile("../reconciler/testdata/cloudformation/" + fixture)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := cfnmacro.ParseTemplate(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{
		"region": "us-east-1", "accountId": "123456789012", "fragment": tm,
		"transformId": "123456789012::EcsSidecar", "params": map[string]any{},
		"requestId":               "5a5f3b1e-0c5e-4f43-9d55-2f5b8e1c7a10",
		"templateParameterValues": map[string]any{"ServiceName": "orders", "Image": "example/worker:1"},
	})
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestHandlerInstruments(t *testing.T) {
	h := newHandler(env(map[string]string{"RECONCILER_CONFIG_YAML": configYAML}), quiet())
	for _, f := range []string{"fargate-service.yaml", "cdk-synth.json", "firelens-appmesh.yaml"} {
		t.Run(f, func(t *testing.T) {
			ev := event(t, f)
			resp, err := h.handle(context.Background(), ev)
			if err != nil || resp.Status != "success" || resp.RequestID != ev.RequestID || resp.ErrorMessage != "" {
				t.Fatalf("resp %+v, err %v", resp, err)
			}
			b, _ := json.Marshal(resp.Fragment)
			s := string(b)
			if !strings.Contains(s, `"Name":"datacollector-sidecar"`) || !strings.Contains(s, `"ecs-sidecar/deploy-time"`) {
				t.Errorf("fragment not instrumented: %s", s)
			}
			if _, ok := resp.Fragment["Transform"]; ok {
				t.Errorf("Transform left in the fragment")
			}
			if strings.Contains(s, "agent-token") && !strings.Contains(s, `"ValueFrom":"arn:aws:secretsmanager`) {
				t.Errorf("the token secret is not referenced by ARN: %s", s)
			}
		})
	}
}

func TestHandlerRefusal(t *testing.T) {
	ev := event(t, "refused-unknown-command.yaml")
	h := newHandler(env(map[string]string{"RECONCILER_CONFIG_YAML": configYAML}), quiet())
	resp, err := h.handle(context.Background(), ev)
	if err != nil || resp.Status != "failure" || !strings.Contains(resp.ErrorMessage, "Worker: unknown_command: worker") || resp.Fragment != nil {
		t.Errorf("default (fail): resp %+v, err %v", resp, err)
	}
	h = newHandler(env(map[string]string{"RECONCILER_CONFIG_YAML": configYAML, "ON_REFUSAL": "leave"}), quiet())
	resp, err = h.handle(context.Background(), ev)
	if err != nil || resp.Status != "success" || !reflect.DeepEqual(resp.Fragment["Resources"], ev.Fragment["Resources"]) {
		t.Errorf("ON_REFUSAL=leave: resp %+v, err %v", resp, err)
	}
}

func TestHandlerBadConfig(t *testing.T) {
	for _, e := range []map[string]string{
		{"RECONCILER_CONFIG_YAML": "profiles: {lacework: {tokenSecretArnn: x}}"},
		{"ON_REFUSAL": "ignore"},
	} {
		resp, err := newHandler(env(e), quiet()).handle(context.Background(), event(t, "fargate-service.yaml"))
		if err != nil || resp.Status != "failure" || resp.ErrorMessage == "" {
			t.Errorf("%v: resp %+v, err %v", e, resp, err)
		}
	}
}
