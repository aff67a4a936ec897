// Package botocore reads the AWS service models that ship with botocore (the Python SDK
// behind boto3 and the aws CLI). They are the reference for member names on the wire:
// awsjson's name table is generated from them and its tests check the codec against them.
package botocore

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// APIVersions maps each service the project uses (botocore's directory name, which is
// also the awsjson.Service value) to the model version the SDK clients speak.
var APIVersions = map[string]string{
	"ecs":                      "2014-11-13",
	"sqs":                      "2012-11-05",
	"events":                   "2015-10-07",
	"secretsmanager":           "2017-10-17",
	"ecr":                      "2015-09-21",
	"resourcegroupstaggingapi": "2017-01-26",
}

// Model is the part of a botocore service-2.json the codec needs.
type Model struct {
	Metadata   Metadata             `json:"metadata"`
	Operations map[string]Operation `json:"operations"`
	Shapes     map[string]Shape     `json:"shapes"`
}

// Metadata describes the protocol of a service.
type Metadata struct {
	APIVersion   string `json:"apiVersion"`
	Protocol     string `json:"protocol"`
	JSONVersion  string `json:"jsonVersion"`
	TargetPrefix string `json:"targetPrefix"`
}

// Operation names the input and output shapes of an API call.
type Operation struct {
	Name   string `json:"name"`
	Input  *Ref   `json:"input"`
	Output *Ref   `json:"output"`
	Errors []Ref  `json:"errors"`
}

// Ref points at a shape. LocationName and JSONName rename a member on the wire.
type Ref struct {
	Shape        string `json:"shape"`
	LocationName string `json:"locationName"`
	JSONName     string `json:"jsonName"`
}

// Shape is a structure, list, map or scalar shape. Required lists the members of a
// structure that the service requires in a request.
type Shape struct {
	Type            string         `json:"type"`
	Members         map[string]Ref `json:"members"`
	Required        []string       `json:"required"`
	Member          *Ref           `json:"member"`
	Key             *Ref           `json:"key"`
	Value           *Ref           `json:"value"`
	Document        bool           `json:"document"`
	Union           bool           `json:"union"`
	Exception       bool           `json:"exception"`
	TimestampFormat string         `json:"timestampFormat"`
}

// Dir returns botocore's data directory, asking the machine's python3 where botocore is.
func Dir() (string, error) {
	out, err := exec.Command("python3", "-c", "import botocore,os;print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("locate botocore with python3 (install boto3/botocore): %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "data"), nil
}

// Version returns the installed botocore version.
func Version() (string, error) {
	out, err := exec.Command("python3", "-c", "import botocore;print(botocore.__version__)").Output()
	if err != nil {
		return "", fmt.Errorf("read botocore version: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Load reads data/<service>/<version>/service-2.json(.gz) under dir.
func Load(dir, service string) (*Model, error) {
	version, ok := APIVersions[service]
	if !ok {
		return nil, fmt.Errorf("no API version known for service %q", service)
	}
	base := filepath.Join(dir, service, version, "service-2.json")
	data, err := os.ReadFile(base + ".gz")
	if err == nil {
		zr, zerr := gzip.NewReader(bytes.NewReader(data))
		if zerr != nil {
			return nil, fmt.Errorf("read %s.gz: %w", base, zerr)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("read %s.gz: %w", base, err)
		}
	} else if data, err = os.ReadFile(base); err != nil { // older botocore: not compressed
		return nil, fmt.Errorf("read model of %s: %w", service, err)
	}
	var m Model
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse model of %s: %w", service, err)
	}
	if m.Metadata.Protocol != "json" {
		return nil, fmt.Errorf("model of %s: protocol %q, want json", service, m.Metadata.Protocol)
	}
	return &m, nil
}

// WireName is the name a member has in a JSON protocol body.
func (r Ref) WireName(member string) string {
	if r.LocationName != "" {
		return r.LocationName
	}
	return member
}
