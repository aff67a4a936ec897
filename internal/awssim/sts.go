package awssim

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// STS, and the AWS query protocol that STS and IAM speak: a form-encoded
// POST body (Action=...&Version=...&Name.member.1=...) without X-Amz-Target,
// answered in XML: <ActionResponse xmlns=...><ActionResult>...</ActionResult>
// <ResponseMetadata><RequestId/></ResponseMetadata></ActionResponse>, and
// errors as <ErrorResponse><Error><Type/><Code/><Message/></Error>
// <RequestId/></ErrorResponse>.

// queryService is one query-protocol service: its API version (which tells
// STS and IAM apart on the shared endpoint), its XML namespace and its
// operations.
type queryService struct {
	name      string
	namespace string
	ops       map[string]func(*Sim, context.Context, url.Values) (any, *Error)
}

var queryServices = map[string]queryService{
	"2011-06-15": {name: "sts", namespace: "https://sts.amazonaws.com/doc/2011-06-15/", ops: map[string]func(*Sim, context.Context, url.Values) (any, *Error){
		"GetCallerIdentity": (*Sim).getCallerIdentity,
	}},
	"2010-05-08": {name: "iam", namespace: "https://iam.amazonaws.com/doc/2010-05-08/", ops: map[string]func(*Sim, context.Context, url.Values) (any, *Error){
		"SimulatePrincipalPolicy": (*Sim).simulatePrincipalPolicy,
	}},
}

// isQueryRequest tells a query-protocol request from a JSON one.
func isQueryRequest(r *http.Request) bool {
	return r.Header.Get("X-Amz-Target") == "" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// serveQuery serves STS and IAM.
func (s *Sim) serveQuery(w http.ResponseWriter, r *http.Request) {
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.requestID())
	w.Header().Set("X-Amzn-RequestId", reqID)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeQueryError(w, "", reqID, &Error{Code: "MalformedQueryString", Message: err.Error()})
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeQueryError(w, "", reqID, &Error{Code: "MalformedQueryString", Message: err.Error()})
		return
	}
	svc, ok := queryServices[form.Get("Version")]
	if !ok {
		writeQueryError(w, "", reqID, &Error{Code: "InvalidAction", Message: fmt.Sprintf("Unknown API version %q.", form.Get("Version"))})
		return
	}
	action := form.Get("Action")
	op := svc.ops[action]
	if op == nil {
		writeQueryError(w, svc.namespace, reqID, &Error{Code: "InvalidAction", Message: fmt.Sprintf("Could not find operation %s for version %s.", action, form.Get("Version"))})
		return
	}
	adm := s.before(r.Context(), Request{Service: svc.name, Operation: action})
	if gateErr := adm.err; gateErr != nil {
		e, ok := gateErr.(*Error)
		if !ok {
			e = &Error{Code: "ServiceFailure", Message: gateErr.Error(), Status: 500}
		}
		s.count(svc.name, action, e, false)
		writeQueryError(w, svc.namespace, reqID, e)
		return
	}
	out, apiErr := op(s, r.Context(), form)
	if apiErr != nil {
		s.count(svc.name, action, apiErr, adm.drop)
	} else {
		s.count(svc.name, action, nil, adm.drop)
	}
	if adm.drop {
		dropConnection(w)
		return
	}
	if apiErr != nil {
		writeQueryError(w, svc.namespace, reqID, apiErr)
		return
	}
	type metadata struct {
		RequestID string `xml:"RequestId"`
	}
	doc := struct {
		XMLName  xml.Name
		NS       string   `xml:"xmlns,attr"`
		Result   any      `xml:"Result"`
		Metadata metadata `xml:"ResponseMetadata"`
	}{
		XMLName:  xml.Name{Local: action + "Response"},
		NS:       svc.namespace,
		Metadata: metadata{reqID},
	}
	doc.Result = wrap{XMLName: xml.Name{Local: action + "Result"}, V: out}
	b, err := xml.Marshal(doc)
	if err != nil {
		writeQueryError(w, svc.namespace, reqID, &Error{Code: "ServiceFailure", Message: err.Error(), Status: 500})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// wrap names an element after the operation (<GetCallerIdentityResult>).
type wrap struct {
	XMLName xml.Name
	V       any
}

func (x wrap) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return e.EncodeElement(x.V, xml.StartElement{Name: x.XMLName})
}

func writeQueryError(w http.ResponseWriter, namespace, reqID string, e *Error) {
	typ := "Sender"
	if e.HTTPStatus() >= 500 {
		typ = "Receiver"
	}
	type errBody struct {
		Type    string
		Code    string
		Message string
	}
	doc := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		NS        string   `xml:"xmlns,attr,omitempty"`
		Error     errBody
		RequestID string `xml:"RequestId"`
	}{NS: namespace, Error: errBody{typ, e.Code, e.Message}, RequestID: reqID}
	b, _ := xml.Marshal(doc)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.HTTPStatus())
	w.Write(b)
}

// SetCallerIdentity sets the ARN that STS GetCallerIdentity answers
// (default: an assumed role named ecs-sidecar-reconciler of the Sim's account).
func (s *Sim) SetCallerIdentity(arn string) {
	st := s.iam()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.caller = arn
}

func (s *Sim) getCallerIdentity(_ context.Context, _ url.Values) (any, *Error) {
	st := s.iam()
	st.mu.Lock()
	arn := st.caller
	st.mu.Unlock()
	return struct {
		Arn     string
		UserID  string `xml:"UserId"`
		Account string
	}{arn, "AROAAWSSIMAWSSIMAWSSI:awssim", s.account}, nil
}
