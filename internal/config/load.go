package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// Parse reads a configuration file's content: a strict decode over the
// defaults (unknown keys, wrong types and duplicate keys are errors), then
// the defaults that depend on the file, then Validate. It reports every
// problem it finds, joined with errors.Join, each as "path: message". It reads
// nothing from the environment (see Load).
func Parse(data []byte) (*Config, error) {
	return parse(data, nil)
}

// Load reads and parses the file at path. Before validating it falls back to
// the environment for what the file leaves empty: aws.region from AWS_REGION,
// then AWS_DEFAULT_REGION.
func Load(path string) (*Config, error) {
	return LoadWith(path, os.Getenv)
}

// FromEnv is the configuration of a run without a file: the defaults, with
// the environment's fallbacks (as Load applies them).
func FromEnv(getenv func(string) string) (*Config, error) {
	return parse([]byte("{}"), getenv)
}

// LoadWith is Load with the environment given by getenv.
func LoadWith(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := parse(data, getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

func parse(data []byte, getenv func(string) string) (*Config, error) {
	c, errs, fatal := decode(data)
	if fatal != nil {
		return nil, fatal
	}
	c.applyDefaults()
	if getenv != nil {
		c.applyEnv(getenv)
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// applyEnv fills the keys that have an environment fallback.
func (c *Config) applyEnv(getenv func(string) string) {
	if c.AWS.Region == "" {
		c.AWS.Region = getenv("AWS_REGION")
	}
	if c.AWS.Region == "" {
		c.AWS.Region = getenv("AWS_DEFAULT_REGION")
	}
}

// decode decodes data over the defaults. A walk of the document along the
// schema reports every unknown key and wrong type with its path (errs); the
// decode that follows fills the Config: the library's strict decode when the
// walk found nothing, otherwise a decode of the document without what the
// walk refused, so that Validate can still report the other problems (keys
// of the wrong type keep their defaults). fatal is an error that leaves
// nothing to validate: the YAML itself is broken, or is not a mapping.
func decode(data []byte) (c *Config, errs []error, fatal error) {
	c = Default()
	c.Profiles = nil
	c.DefaultProfile = ""
	c.Queue.MaxHold = Duration{} // its default depends on queue.visibilityTimeout

	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, nil, yamlError{err}
	}
	var doc any
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("decode: %w", err)
	}
	clean, _ := checkValue(&errs, "", doc, configType)
	if _, ok := clean.(map[string]any); !ok {
		if len(errs) > 0 {
			return nil, nil, errors.Join(errs...)
		}
		return c, nil, nil // an empty document
	}

	if len(errs) == 0 {
		// The common case: the library's strict decode, which the walk
		// agrees with; its errors are a backstop.
		if err := yaml.UnmarshalStrict(data, c); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				errs = append(errs, &FieldError{Path: te.Field, Message: fmt.Sprintf("must be %s, got %s", te.Type, te.Value)})
			} else {
				errs = append(errs, yamlError{err})
			}
		}
		return c, errs, nil
	}
	// Problems were reported: decode what is left of the document, so
	// that Validate can still report the other problems.
	b, err := json.Marshal(clean)
	if err == nil {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		err = d.Decode(c)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("decode: %w", err))
	}
	return c, errs, nil
}

// yamlError is an error of the YAML library without its layers of prefixes;
// what is left says the line ("yaml: line 3: ...").
type yamlError struct{ err error }

func (e yamlError) Error() string {
	s := e.err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

func (e yamlError) Unwrap() error { return e.err }
