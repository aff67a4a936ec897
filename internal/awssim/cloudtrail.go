package awssim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// CloudTrail, the part `reconciler check` reads: DescribeTrails,
// GetTrailStatus and GetEventSelectors over AWS JSON 1.1. Trails are seeded
// with PutTrail (Go API only). awsjson has no CloudTrail model, so the wire
// shapes are written out here with the model's member names (botocore
// cloudtrail 2013-11-01: trailNameList and trailList are lowerCamel, the
// rest PascalCase).

// CloudTrail's X-Amz-Target prefixes: botocore's model names the first, and
// boto3 and the aws CLI send it; aws-sdk-go-v2 sends the second (the Smithy
// service shape name).
const (
	cloudTrailTargetPrefix      = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"
	cloudTrailShortTargetPrefix = "CloudTrail_20131101"
)

func isCloudTrailTarget(target string) bool {
	return strings.HasPrefix(target, cloudTrailTargetPrefix+".") || strings.HasPrefix(target, cloudTrailShortTargetPrefix+".")
}

// Trail is a simulated trail.
type Trail struct {
	Name        string
	HomeRegion  string // default: the Sim's Region
	MultiRegion bool
	Logging     bool
	// EventSelectors as CloudTrail returns them; nil means the default
	// selector (all management events, read and write).
	EventSelectors []EventSelector
	// AdvancedEventSelectors replace EventSelectors when set.
	AdvancedEventSelectors []AdvancedEventSelector
}

// EventSelector is CloudTrail's basic event selector.
type EventSelector struct {
	ReadWriteType           string // ReadOnly, WriteOnly, All
	IncludeManagementEvents bool
}

// AdvancedEventSelector is CloudTrail's advanced event selector.
type AdvancedEventSelector struct {
	Name           string          `json:"Name,omitempty"`
	FieldSelectors []FieldSelector `json:"FieldSelectors"`
}

// FieldSelector is one field test of an advanced event selector.
type FieldSelector struct {
	Field     string   `json:"Field"`
	Equals    []string `json:"Equals,omitempty"`
	NotEquals []string `json:"NotEquals,omitempty"`
}

type trail struct {
	Trail
	arn string
}

// PutTrail creates or replaces the trail of that name.
func (s *Sim) PutTrail(t Trail) {
	if t.HomeRegion == "" {
		t.HomeRegion = s.region
	}
	st := s.iam()
	st.mu.Lock()
	defer st.mu.Unlock()
	nt := &trail{Trail: t, arn: fmt.Sprintf("arn:aws:cloudtrail:%s:%s:trail/%s", t.HomeRegion, s.account, t.Name)}
	for i, old := range st.trails {
		if old.Name == t.Name {
			st.trails[i] = nt
			return
		}
	}
	st.trails = append(st.trails, nt)
}

func (s *Sim) findTrail(name string) *trail {
	st := s.iam()
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, t := range st.trails {
		if t.Name == name || t.arn == name {
			return t
		}
	}
	return nil
}

// serveCloudTrail serves a request whose X-Amz-Target is CloudTrail's.
func (s *Sim) serveCloudTrail(w http.ResponseWriter, r *http.Request) {
	const contentType = "application/x-amz-json-1.1"
	w.Header().Set("X-Amzn-RequestId", fmt.Sprintf("00000000-0000-4000-8000-%012d", s.requestID()))
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		s.writeError(w, contentType, errf(codeSerialization, "reading the body: %v", err))
		return
	}
	adm := s.before(r.Context(), Request{Service: "cloudtrail", Operation: op})
	if gateErr := adm.err; gateErr != nil {
		e, ok := gateErr.(*Error)
		if !ok {
			e = &Error{Code: codeServer, Message: gateErr.Error(), Status: 500}
		}
		s.count("cloudtrail", op, e, false)
		s.writeError(w, contentType, e)
		return
	}
	// Counted as served: CloudTrail's few errors here are lookups.
	s.count("cloudtrail", op, nil, adm.drop)
	if adm.drop {
		dropConnection(w)
		return
	}
	var in struct {
		TrailNameList []string `json:"trailNameList"`
		Name          string   `json:"Name"`
		TrailName     string   `json:"TrailName"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			s.writeError(w, contentType, errf(codeSerialization, "%v", err))
			return
		}
	}
	var out any
	switch op {
	case "DescribeTrails":
		out = s.describeTrails(in.TrailNameList)
	case "GetTrailStatus", "GetEventSelectors":
		name := in.Name
		if op == "GetEventSelectors" {
			name = in.TrailName
		}
		t := s.findTrail(name)
		if t == nil {
			s.writeError(w, contentType, errf("TrailNotFoundException", "Unknown trail: %s for the user: %s", name, s.account))
			return
		}
		if op == "GetTrailStatus" {
			out = map[string]any{"IsLogging": t.Logging}
		} else {
			out = t.selectors()
		}
	default:
		s.writeError(w, contentType, errf(codeUnknownOperation, "Unknown operation %s.", op))
		return
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func (s *Sim) describeTrails(names []string) any {
	st := s.iam()
	st.mu.Lock()
	defer st.mu.Unlock()
	type wireTrail struct {
		Name                    string
		TrailARN                string
		HomeRegion              string
		IsMultiRegionTrail      bool
		HasCustomEventSelectors bool
	}
	list := []wireTrail{}
	for _, t := range st.trails {
		if len(names) > 0 && !containsAny(names, t.Name, t.arn) {
			continue
		}
		if !t.MultiRegion && t.HomeRegion != s.region {
			continue // a single-Region trail of another Region is not listed
		}
		list = append(list, wireTrail{t.Name, t.arn, t.HomeRegion, t.MultiRegion, t.EventSelectors != nil || t.AdvancedEventSelectors != nil})
	}
	return map[string]any{"trailList": list}
}

func (t *trail) selectors() any {
	out := map[string]any{"TrailARN": t.arn}
	switch {
	case t.AdvancedEventSelectors != nil:
		out["AdvancedEventSelectors"] = t.AdvancedEventSelectors
	case t.EventSelectors != nil:
		out["EventSelectors"] = t.EventSelectors
	default:
		out["EventSelectors"] = []EventSelector{{ReadWriteType: "All", IncludeManagementEvents: true}}
	}
	return out
}

func containsAny(list []string, vs ...string) bool {
	for _, l := range list {
		for _, v := range vs {
			if l == v {
				return true
			}
		}
	}
	return false
}
