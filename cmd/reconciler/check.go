package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/policy"
)

// The narrow SDK interfaces `check` calls, in SDK v2 signatures.
type (
	stsAPI interface {
		GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
	}
	iamSimulateAPI interface {
		SimulatePrincipalPolicy(ctx context.Context, in *iam.SimulatePrincipalPolicyInput, optFns ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error)
	}
	secretDescribeAPI interface {
		DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	}
	queueAttributesAPI interface {
		GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	}
	ruleTargetsAPI interface {
		ListRuleNamesByTarget(ctx context.Context, in *eventbridge.ListRuleNamesByTargetInput, optFns ...func(*eventbridge.Options)) (*eventbridge.ListRuleNamesByTargetOutput, error)
	}
	trailAPI interface {
		DescribeTrails(ctx context.Context, in *cloudtrail.DescribeTrailsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.DescribeTrailsOutput, error)
		GetTrailStatus(ctx context.Context, in *cloudtrail.GetTrailStatusInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.GetTrailStatusOutput, error)
		GetEventSelectors(ctx context.Context, in *cloudtrail.GetEventSelectorsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.GetEventSelectorsOutput, error)
	}
	familyAPI interface {
		ListTaskDefinitionFamilies(ctx context.Context, in *ecs.ListTaskDefinitionFamiliesInput, optFns ...func(*ecs.Options)) (*ecs.ListTaskDefinitionFamiliesOutput, error)
		DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	}
)

// checkClients are the clients of one check run.
type checkClients struct {
	sts    stsAPI
	iam    iamSimulateAPI
	sm     secretDescribeAPI
	sqs    queueAttributesAPI
	events ruleTargetsAPI
	trail  trailAPI
	ecs    familyAPI
}

// checkOptions are check's flags.
type checkOptions struct {
	region      string // the Region the clients talk to
	taskRole    string // role whose permissions are simulated; "" = the caller's
	maxFamilies int    // task definition families scanned for opted-in ones
}

// checkResult is one line of the report.
type checkResult struct {
	name   string
	ok     bool
	detail string
	fix    string
}

func (r checkResult) String() string {
	verdict := "PASS"
	if !r.ok {
		verdict = "FAIL"
	}
	s := fmt.Sprintf("%s %s: %s", verdict, r.name, r.detail)
	if !r.ok && r.fix != "" {
		s += "; fix: " + r.fix
	}
	return s
}

func cmdCheck(e env, args []string) int {
	fs := newFlagSet(e, "check", "[--config FILE] [--task-role ARN] [--embedded]")
	configPath := fs.String("config", e.getenv("RECONCILER_CONFIG"), "configuration file (YAML); env RECONCILER_CONFIG, else RECONCILER_CONFIG_YAML")
	taskRole := fs.String("task-role", "", "ARN of the reconciler's task role, whose permissions are simulated (default: the role of the caller's credentials)")
	maxFamilies := fs.Int("max-families", 200, "task definition families scanned for opted-in ones, whose execution roles are checked")
	embedded := fs.Bool("embedded", false, "check against the embedded AWS with the demo seed (no account needed)")
	simListen := fs.String("sim-listen", "127.0.0.1:0", "with --embedded: loopback address of the embedded AWS")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if code, done := noArgs(e, fs); done {
		return code
	}
	if *embedded {
		if err := checkLoopback(*simListen, false); err != nil {
			fmt.Fprintf(e.stderr, "reconciler check: --sim-listen: %v\n", err)
			return exitUsage
		}
	}
	cfg, err := loadConfig(e, *configPath)
	if err != nil {
		printConfigErrors(e.stderr, "reconciler check", err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var creds *aws.Credentials
	if *embedded {
		// As plan and run: the demo account on loopback, the config pointed
		// at it (its queue, and without a config file its token secret).
		sim, err := startEmbedded(ctx, slog.New(slog.DiscardHandler), *simListen, cfg, *configPath != "")
		if err != nil {
			fmt.Fprintf(e.stderr, "reconciler check: embedded AWS: %v\n", err)
			return exitFail
		}
		defer sim.stop()
		creds = &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "embedded"}
	}
	awsCfg, _, err := cloud.New(ctx, cloud.Options{
		Region: cfg.AWS.Region, Endpoint: cfg.AWS.Endpoint, StaticCredentials: creds, MaxAttempts: cfg.AWS.MaxAttempts,
		BudgetShare: cfg.AWS.APIBudget.Share, AppID: "ecs-sidecar-reconciler-check",
	})
	if err != nil {
		fmt.Fprintf(e.stdout, "%s\n", checkResult{name: "credentials", detail: err.Error(), fix: setupFix(err)})
		return exitFail
	}
	clients := checkClients{
		sts: sts.NewFromConfig(awsCfg), iam: iam.NewFromConfig(awsCfg), sm: secretsmanager.NewFromConfig(awsCfg),
		sqs: sqs.NewFromConfig(awsCfg), events: eventbridge.NewFromConfig(awsCfg), trail: cloudtrail.NewFromConfig(awsCfg),
		ecs: ecs.NewFromConfig(awsCfg),
	}
	results := runChecks(ctx, cfg, clients, checkOptions{region: awsCfg.Region, taskRole: *taskRole, maxFamilies: *maxFamilies})
	return printChecks(e.stdout, results)
}

// setupFix is the fix for cloud.New's refusals: the Region, the endpoint,
// or the SDK's shared configuration.
func setupFix(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no region"):
		return "set aws.region in the config, or AWS_REGION"
	case strings.Contains(msg, "endpoint"):
		return "correct aws.endpoint: an http(s) URL, or none for AWS itself"
	case strings.Contains(msg, "load aws config"):
		return "correct the AWS shared configuration the SDK read (AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE)"
	}
	return "correct the aws section of the config (maxAttempts, apiBudget.share)"
}

// cause is why an AWS call failed, as far as the fix depends on it.
type cause int

const (
	causeOther          cause = iota
	causeNotFound             // the resource (queue, secret, role, trail) does not exist
	causeDenied               // IAM refused the call
	causeNoCredentials        // the SDK found no credentials to sign with
	causeExpired              // the credentials expired
	causeBadCredentials       // AWS does not know the credentials, or their signature
	causeUnreachable          // no answer from the endpoint: DNS, network, a wrong aws.endpoint
	causeThrottled            // the call's rate
)

// Error codes the cause depends on beyond cloud's classification.
var (
	notFoundCodes       = map[string]bool{"NoSuchEntity": true, "TrailNotFoundException": true} // IAM, CloudTrail
	expiredCodes        = map[string]bool{"ExpiredToken": true, "ExpiredTokenException": true, "TokenRefreshRequired": true}
	badCredentialsCodes = map[string]bool{"InvalidClientTokenId": true, "UnrecognizedClientException": true, "SignatureDoesNotMatch": true,
		"InvalidSignatureException": true, "IncompleteSignature": true, "InvalidAccessKeyId": true, "AuthFailure": true}
)

func causeOf(err error) cause {
	code := cloud.ErrorCode(err)
	switch {
	case cloud.IsNotFound(err) || notFoundCodes[code]:
		return causeNotFound
	case cloud.IsAccessDenied(err):
		return causeDenied
	case expiredCodes[code]:
		return causeExpired
	case badCredentialsCodes[code]:
		return causeBadCredentials
	case cloud.IsThrottled(err):
		return causeThrottled
	case code == "Transport":
		// The SDK resolves the credentials before it sends anything: an
		// error then carries no code either.
		if cloud.IsNoCredentials(err) {
			return causeNoCredentials
		}
		return causeUnreachable
	}
	return causeOther
}

// unreachableFix is the fix when service's endpoint did not answer.
func unreachableFix(service string) string {
	return "no answer from " + service + ": check aws.endpoint, DNS and the route from this network to " + service +
		" (a NAT gateway, or a VPC endpoint for it)"
}

// fixes collects the distinct fixes of one check, in order.
type fixes []string

func (f *fixes) add(fix string) {
	if fix != "" && !slices.Contains(*f, fix) {
		*f = append(*f, fix)
	}
}

func (f fixes) String() string { return strings.Join(f, "; ") }

// printChecks writes one line per check and returns the exit code.
func printChecks(w io.Writer, results []checkResult) int {
	code := exitOK
	for _, r := range results {
		fmt.Fprintln(w, r)
		if !r.ok {
			code = exitFail
		}
	}
	return code
}

// runChecks runs every check in order. A check whose input an earlier one
// could not establish fails with that reason instead of calling AWS.
func runChecks(ctx context.Context, cfg *config.Config, c checkClients, o checkOptions) []checkResult {
	var out []checkResult
	id, res := checkCredentials(ctx, c.sts, o.region)
	out = append(out, res)
	if !res.ok {
		for _, name := range []string{"queue", "rule", "token-secret", "execution-roles", "permissions", "cloudtrail"} {
			out = append(out, checkResult{name: name, detail: "not checked: no working credentials", fix: "fix the credentials first"})
		}
		return out
	}
	queueArn, res := checkQueue(ctx, c.sqs, cfg.Queue.URL)
	out = append(out, res, checkRule(ctx, c.events, queueArn))
	out = append(out, checkTokenSecrets(ctx, c.sm, cfg))
	fams, famErr := optedInFamilies(ctx, c.ecs, cfg, o.maxFamilies)
	out = append(out, checkExecutionRoles(ctx, c.iam, cfg, fams, famErr))
	out = append(out, checkPermissions(ctx, c.iam, cfg, id, o, queueArn, fams))
	out = append(out, checkCloudTrail(ctx, c.trail, o.region))
	return out
}

// identity is who the credentials are.
type identity struct {
	account, arn, partition string
}

func checkCredentials(ctx context.Context, c stsAPI, region string) (identity, checkResult) {
	r := checkResult{name: "credentials"}
	out, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		r.detail = fmt.Sprintf("sts GetCallerIdentity: %v", err)
		r.fix = credentialsFix(err, region)
		return identity{}, r
	}
	id := identity{account: aws.ToString(out.Account), arn: aws.ToString(out.Arn), partition: "aws"}
	if parts := strings.SplitN(id.arn, ":", 3); len(parts) == 3 {
		id.partition = parts[1]
	}
	r.ok = true
	r.detail = fmt.Sprintf("account %s, Region %s, as %s", id.account, region, id.arn)
	return id, r
}

// credentialsFix is the fix when STS does not say who the credentials are
// (GetCallerIdentity needs no permission: IAM cannot deny it).
func credentialsFix(err error, region string) string {
	switch causeOf(err) {
	case causeNoCredentials:
		return "the SDK found no credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run as a task with a task role"
	case causeExpired:
		return "the credentials expired: refresh them (aws sso login, a new session) and run again"
	case causeBadCredentials:
		return "AWS does not know these credentials: set valid ones (AWS_PROFILE, AWS_ACCESS_KEY_ID), of an account where " + region + " is enabled"
	case causeUnreachable:
		return unreachableFix("STS in " + region)
	case causeThrottled:
		return "STS throttled the call: run again later"
	}
	return "set credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, the task role) valid in " + region
}

func checkQueue(ctx context.Context, c queueAttributesAPI, url string) (string, checkResult) {
	r := checkResult{name: "queue", fix: "deploy deploy/cloudformation/reconciler.yaml and set queue.url to its QueueUrl output"}
	if url == "" {
		r.detail = "queue.url is not set"
		return "", r
	}
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn, sqstypes.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		r.detail = fmt.Sprintf("sqs GetQueueAttributes %s: %v", url, err)
		switch causeOf(err) {
		case causeNotFound:
			r.fix = "create the queue (deploy/cloudformation/reconciler.yaml does), or correct queue.url: the stack's QueueUrl output"
		case causeDenied:
			r.fix = "allow sqs:GetQueueAttributes on the queue (the template's ConsumeEventQueue statement)"
		case causeUnreachable:
			r.fix = unreachableFix("SQS")
		default:
			r.fix = "run again; SQS did not answer GetQueueAttributes: " + cloud.ErrorCode(err)
		}
		return "", r
	}
	arn := out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	r.ok = true
	r.detail = arn
	if out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)] == "" {
		r.detail += " (no dead-letter queue: a message that keeps failing is retried until it expires)"
	} else {
		r.detail += " with a dead-letter queue"
	}
	return arn, r
}

func checkRule(ctx context.Context, c ruleTargetsAPI, queueArn string) checkResult {
	r := checkResult{name: "rule", fix: "create EventBridge rules for ECS's CloudTrail calls and service events with the queue as target (deploy/cloudformation/reconciler.yaml has them)"}
	if queueArn == "" {
		r.detail = "not checked: the queue was not found"
		r.fix = "fix the queue first"
		return r
	}
	var names []string
	in := &eventbridge.ListRuleNamesByTargetInput{TargetArn: aws.String(queueArn)}
	for {
		out, err := c.ListRuleNamesByTarget(ctx, in)
		if err != nil {
			r.detail = fmt.Sprintf("events ListRuleNamesByTarget: %v", err)
			switch causeOf(err) {
			case causeDenied:
				r.fix = "allow events:ListRuleNamesByTarget (the template's CheckCloudTrailListing statement)"
			case causeUnreachable:
				r.fix = unreachableFix("EventBridge")
			default:
				r.fix = "run again; EventBridge did not list the rules: " + cloud.ErrorCode(err)
			}
			return r
		}
		names = append(names, out.RuleNames...)
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(names) == 0 {
		r.detail = "no EventBridge rule on the default bus targets " + queueArn
		return r
	}
	r.ok = true
	r.detail = "targeted by " + strings.Join(names, ", ")
	return r
}

// profileSecrets are the secrets of a profile that task execution roles
// must read: the token and a custom profile's secrets.
func profileSecrets(cfg *config.Config, name string) []string {
	p, ok := cfg.Profile(name)
	if !ok {
		return nil
	}
	var out []string
	if p.TokenSecretArn != "" {
		out = append(out, p.TokenSecretArn)
	}
	if p.Custom != nil {
		for _, v := range p.Custom.Secrets {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func checkTokenSecrets(ctx context.Context, c secretDescribeAPI, cfg *config.Config) checkResult {
	r := checkResult{name: "token-secret"}
	var found, missing, notChecked []string
	var fix fixes
	seen := map[string]bool{}
	for _, name := range cfg.ProfileNames() {
		for _, arn := range profileSecrets(cfg, name) {
			if seen[arn] {
				continue
			}
			seen[arn] = true
			if !strings.Contains(arn, ":secretsmanager:") {
				notChecked = append(notChecked, arn)
				continue
			}
			// DescribeSecret only: the value is never read.
			if _, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}); err != nil {
				missing = append(missing, fmt.Sprintf("%s (%s)", arn, cloud.ErrorCode(err)))
				switch causeOf(err) {
				case causeNotFound:
					fix.add("create the secret, or correct profiles.<name>.tokenSecretArn")
				case causeDenied:
					fix.add("allow secretsmanager:DescribeSecret on the secret (the template's DescribeTokenSecretNotItsValue statement)")
				case causeUnreachable:
					fix.add(unreachableFix("Secrets Manager"))
				default:
					fix.add("run again; Secrets Manager did not describe the secret")
				}
				continue
			}
			found = append(found, arn)
		}
	}
	switch {
	case len(missing) > 0:
		r.detail = "not found or not describable: " + strings.Join(missing, ", ")
		r.fix = fix.String()
	case len(found) == 0 && len(notChecked) == 0:
		r.ok = true
		r.detail = "no profile names a token secret"
	default:
		r.ok = true
		r.detail = "exists: " + strings.Join(found, ", ")
		if len(found) == 0 {
			r.detail = "no Secrets Manager secret to describe"
		}
	}
	if len(notChecked) > 0 {
		r.detail += "; SSM parameters not checked: " + strings.Join(notChecked, ", ")
	}
	return r
}

// checkFamily is an opted-in family as check sees it: its newest ACTIVE revision.
type checkFamily struct {
	name, executionRole, taskRole, profile string
}

// optedInFamilies reads the newest ACTIVE revision of up to max families
// and decides opt-in from its tags and the policies. It is an
// approximation of the reconciler's decision: tags are not inherited from
// older revisions and rules restricted to clusters see no cluster.
func optedInFamilies(ctx context.Context, c familyAPI, cfg *config.Config, max int) ([]checkFamily, error) {
	var names []string
	in := &ecs.ListTaskDefinitionFamiliesInput{Status: ecstypes.TaskDefinitionFamilyStatusActive}
	for len(names) < max {
		out, err := c.ListTaskDefinitionFamilies(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ecs ListTaskDefinitionFamilies: %w", err)
		}
		names = append(names, out.Families...)
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(names) > max {
		names = names[:max]
	}
	prefix := cfg.TagPrefix
	var fams []checkFamily
	for _, name := range names {
		out, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String(name), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
		})
		if err != nil {
			return nil, fmt.Errorf("ecs DescribeTaskDefinition %s: %w", name, err)
		}
		tags := map[string]string{}
		for _, t := range out.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		td := out.TaskDefinition
		d := policy.Decide(policy.Input{
			Family: name, Rules: cfg.Policies, TagPrefix: prefix, TagProfiles: cfg.TagProfilePolicy(),
			Revisions: []policy.Revision{{Number: td.Revision, Tags: tags}},
		})
		_, twin := tags[prefix+"source"]
		if !d.Instrument && !twin {
			continue
		}
		profile := d.Profile
		if twin {
			profile = tags[prefix+"profile"]
		}
		fams = append(fams, checkFamily{name: name, executionRole: aws.ToString(td.ExecutionRoleArn), taskRole: aws.ToString(td.TaskRoleArn), profile: profile})
	}
	return fams, nil
}

func checkExecutionRoles(ctx context.Context, c iamSimulateAPI, cfg *config.Config, fams []checkFamily, famErr error) checkResult {
	r := checkResult{name: "execution-roles"}
	if famErr != nil {
		r.detail = "not checked: " + famErr.Error()
		switch causeOf(famErr) {
		case causeDenied:
			r.fix = "allow ecs:ListTaskDefinitionFamilies and ecs:DescribeTaskDefinition (the template's EcsDiscovery statement)"
		case causeUnreachable:
			r.fix = unreachableFix("ECS")
		default:
			r.fix = "run again; ECS did not list the families: " + cloud.ErrorCode(famErr)
		}
		return r
	}
	// role -> secrets it must read, and who needs it.
	need := map[string]map[string]bool{}
	users := map[string][]string{}
	var noRole []string
	add := func(role, who string, secrets []string) {
		if need[role] == nil {
			need[role] = map[string]bool{}
		}
		for _, s := range secrets {
			need[role][s] = true
		}
		users[role] = append(users[role], who)
	}
	for _, name := range cfg.ProfileNames() {
		p, _ := cfg.Profile(name)
		if p.DefaultExecutionRoleArn != "" {
			add(p.DefaultExecutionRoleArn, "profile "+name, profileSecrets(cfg, name))
		}
	}
	for _, f := range fams {
		secrets := profileSecrets(cfg, f.profile)
		role := f.executionRole
		if role == "" {
			if p, ok := cfg.Profile(f.profile); ok {
				role = p.DefaultExecutionRoleArn
			}
		}
		if role == "" {
			if len(secrets) > 0 {
				noRole = append(noRole, f.name)
			}
			continue
		}
		add(role, "family "+f.name, secrets)
	}
	var denied, allowed []string
	var fix fixes
	for _, role := range slices.Sorted(maps.Keys(need)) {
		secrets := slices.Sorted(maps.Keys(need[role]))
		if len(secrets) == 0 {
			continue
		}
		for _, secret := range secrets {
			action := "secretsmanager:GetSecretValue"
			if strings.Contains(secret, ":ssm:") {
				action = "ssm:GetParameters"
			}
			ok, detail, err := simulate(ctx, c, role, []string{action}, secret, nil)
			who := strings.Join(users[role], ", ")
			if err != nil {
				switch causeOf(err) {
				case causeNotFound:
					denied = append(denied, fmt.Sprintf("%s does not exist (%s)", role, who))
					fix.add("create that role, or correct the executionRoleArn of those families (profiles.<name>.defaultExecutionRoleArn for a profile's)")
				case causeDenied:
					denied = append(denied, fmt.Sprintf("%s: not simulated (%s): %v", role, who, err))
					fix.add("allow iam:SimulatePrincipalPolicy on those roles to these credentials (the template's CheckSimulateOwnAndFamiliesRoles statement: list them in PassableRoleArns)")
				case causeUnreachable:
					denied = append(denied, fmt.Sprintf("%s: not simulated (%s): %v", role, who, err))
					fix.add(unreachableFix("IAM"))
				default:
					denied = append(denied, fmt.Sprintf("%s: not simulated (%s): %v", role, who, err))
					fix.add("run again; IAM did not simulate the role's policy")
				}
				break // the role's other secrets would fail the same way
			}
			switch {
			case !ok:
				denied = append(denied, fmt.Sprintf("%s may not %s (%s)", role, detail, who))
				fix.add("allow secretsmanager:GetSecretValue (ssm:GetParameters for a parameter) on the token secret in those task execution roles")
			default:
				allowed = append(allowed, role)
			}
		}
	}
	slices.Sort(allowed)
	allowed = slices.Compact(allowed)
	switch {
	case len(denied) > 0:
		r.detail = strings.Join(denied, "; ")
		r.fix = fix.String()
	case len(noRole) > 0:
		r.detail = "families without an execution role (refused as no_execution_role): " + strings.Join(noRole, ", ")
		r.fix = "give them an executionRoleArn, or set profiles.<name>.defaultExecutionRoleArn"
	case len(allowed) == 0:
		r.ok = true
		r.detail = fmt.Sprintf("no opted-in family and no default execution role yet (%d families opted in)", len(fams))
	default:
		r.ok = true
		r.detail = fmt.Sprintf("%d families opted in; may read their secrets: %s", len(fams), strings.Join(allowed, ", "))
	}
	if len(denied) > 0 && len(noRole) > 0 {
		r.detail += "; families without an execution role: " + strings.Join(noRole, ", ")
	}
	return r
}

// requirement is a set of actions on one resource, in one request context.
type requirement struct {
	resource string
	actions  []string
	ctx      map[string][]string
}

// requiredPermissions lists what the reconciler calls (the template's task
// role policy grants the same, deploy/cloudformation), on representative
// resources of the account and Region.
func requiredPermissions(cfg *config.Config, id identity, region, queueArn string, fams []checkFamily) []requirement {
	arn := func(service, resource string) string {
		return fmt.Sprintf("arn:%s:%s:%s:%s:%s", id.partition, service, region, id.account, resource)
	}
	star := []string{"ecs:ListClusters", "ecs:ListServices", "ecs:ListTaskDefinitionFamilies", "ecs:ListTaskDefinitions",
		"ecs:DescribeTaskDefinition"}
	if cfg.Sweeps.Families.TaggingAPI {
		star = append(star, "tag:GetResources")
	}
	// A cluster the deployment may write to: the first a policy names
	// (the stack's Clusters parameter renders them), else any.
	cluster := "reconciler-check"
	for _, r := range cfg.Policies {
		if len(r.Clusters) > 0 {
			cluster = r.Clusters[0][strings.LastIndexByte(r.Clusters[0], '/')+1:]
			break
		}
	}
	taskDef := arn("ecs", "task-definition/reconciler-check:1")
	inRegion := map[string][]string{"aws:RequestedRegion": {region}}
	reqs := []requirement{
		{resource: "*", actions: star},
		// Registering twins and deregistering duplicates (always) or unused
		// twins (cleanup.deregisterUnusedTwins), in this Region.
		{resource: "*", actions: []string{"ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"}, ctx: inRegion},
		{resource: arn("ecs", "service/"+cluster+"/reconciler-check"), actions: []string{"ecs:DescribeServices", "ecs:UpdateService", "ecs:ListServiceDeployments"},
			ctx: map[string][]string{"ecs:cluster": {arn("ecs", "cluster/"+cluster)}, "aws:RequestedRegion": {region}}},
		{resource: arn("ecs", "service-revision/"+cluster+"/reconciler-check/1"), actions: []string{"ecs:DescribeServiceRevisions"}, ctx: inRegion},
		{resource: arn("ecs", "service-deployment/"+cluster+"/reconciler-check/1"), actions: []string{"ecs:DescribeServiceDeployments"}, ctx: inRegion},
		{resource: taskDef, actions: []string{"ecs:ListTagsForResource"}},
		{resource: taskDef, actions: []string{"ecs:TagResource"}, ctx: map[string][]string{"ecs:CreateAction": {"RegisterTaskDefinition"}}},
		{resource: taskDef, actions: []string{"ecs:TagResource"}, ctx: map[string][]string{"aws:TagKeys": {cfg.TagPrefix + "failed"}}},
	}
	if queueArn != "" {
		reqs = append(reqs, requirement{resource: queueArn, actions: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}})
	}
	for _, name := range cfg.ProfileNames() {
		for _, s := range profileSecrets(cfg, name) {
			if strings.Contains(s, ":secretsmanager:") {
				reqs = append(reqs, requirement{resource: s, actions: []string{"secretsmanager:DescribeSecret"}})
			}
		}
	}
	if cfg.Leases.Enabled() {
		// The lease table (docs/leases.md): rounds, heartbeats, the check
		// before each write batch, the release.
		reqs = append(reqs, requirement{resource: arn("dynamodb", "table/"+cfg.Leases.Table),
			actions: []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"}})
	}
	if bus := cfg.Audit.EventBus; bus != "" {
		if !strings.HasPrefix(bus, "arn:") {
			bus = arn("events", "event-bus/"+bus)
		}
		reqs = append(reqs, requirement{resource: bus, actions: []string{"events:PutEvents"}})
	}
	roles := map[string]bool{}
	for _, name := range cfg.ProfileNames() {
		if p, _ := cfg.Profile(name); p.DefaultExecutionRoleArn != "" {
			roles[p.DefaultExecutionRoleArn] = true
		}
	}
	for _, f := range fams {
		for _, r := range []string{f.executionRole, f.taskRole} {
			if r != "" {
				roles[r] = true
			}
		}
	}
	for _, r := range slices.Sorted(maps.Keys(roles)) {
		reqs = append(reqs, requirement{resource: r, actions: []string{"iam:PassRole"}, ctx: map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}})
	}
	return reqs
}

// principalOf turns the caller's ARN into the IAM principal to simulate:
// an assumed role's role (path "/" assumed), or the user or role itself.
func principalOf(callerArn string) (string, bool) {
	parts := strings.SplitN(callerArn, ":", 6)
	if len(parts) != 6 {
		return "", false
	}
	res := parts[5]
	switch {
	case parts[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		name := strings.Split(strings.TrimPrefix(res, "assumed-role/"), "/")[0]
		return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], name), true
	case parts[2] == "iam" && (strings.HasPrefix(res, "role/") || strings.HasPrefix(res, "user/")):
		return callerArn, true
	}
	return "", false
}

func checkPermissions(ctx context.Context, c iamSimulateAPI, cfg *config.Config, id identity, o checkOptions, queueArn string, fams []checkFamily) checkResult {
	r := checkResult{name: "permissions"}
	role := o.taskRole
	how := "--task-role"
	if role == "" {
		var ok bool
		if role, ok = principalOf(id.arn); !ok {
			r.detail = "cannot tell the IAM principal of " + id.arn
			r.fix = "pass --task-role with the stack's TaskRoleArn output"
			return r
		}
		how = "the caller's role"
	}
	var denied []string
	n := 0
	for _, req := range requiredPermissions(cfg, id, o.region, queueArn, fams) {
		ok, detail, err := simulate(ctx, c, role, req.actions, req.resource, req.ctx)
		n += len(req.actions)
		if err != nil {
			r.detail = fmt.Sprintf("iam SimulatePrincipalPolicy %s: %v", role, err)
			r.fix = simulateFix(err, role, o.taskRole != "")
			return r
		}
		if !ok {
			denied = append(denied, detail)
		}
	}
	if len(denied) > 0 {
		r.detail = fmt.Sprintf("%s (%s) may not: %s", role, how, strings.Join(denied, "; "))
		r.fix = "grant them as deploy/cloudformation/reconciler.yaml's TaskRolePolicy does (docs/operations.md explains each statement)"
		return r
	}
	r.ok = true
	r.detail = fmt.Sprintf("%s (%s) may make the reconciler's %d calls", role, how, n)
	return r
}

// simulateFix is the fix when IAM did not simulate the reconciler's role.
func simulateFix(err error, role string, given bool) string {
	switch causeOf(err) {
	case causeNotFound:
		if given {
			return "no role " + role + ": pass the stack's TaskRoleArn output as --task-role"
		}
		return "no role " + role + " (the caller's role, its path taken as /: an assumed role's ARN does not show it): pass --task-role with the role's ARN, the stack's TaskRoleArn output"
	case causeDenied:
		return "allow iam:SimulatePrincipalPolicy on " + role + " to these credentials (the template's CheckSimulateOwnAndFamiliesRoles statement), or run check with credentials that may"
	case causeUnreachable:
		return unreachableFix("IAM")
	}
	return "run again; IAM did not simulate " + role + ": " + cloud.ErrorCode(err)
}

// simulate asks IAM whether principal may do every action on resource in
// the context; detail lists the denied ones.
func simulate(ctx context.Context, c iamSimulateAPI, principal string, actions []string, resource string, reqCtx map[string][]string) (bool, string, error) {
	in := &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(principal),
		ActionNames:     actions,
		ResourceArns:    []string{resource},
	}
	for _, k := range slices.Sorted(maps.Keys(reqCtx)) {
		typ := iamtypes.ContextKeyTypeEnumString
		if len(reqCtx[k]) > 1 || k == "aws:TagKeys" {
			typ = iamtypes.ContextKeyTypeEnumStringList
		}
		in.ContextEntries = append(in.ContextEntries, iamtypes.ContextEntry{
			ContextKeyName: aws.String(k), ContextKeyValues: reqCtx[k], ContextKeyType: typ,
		})
	}
	var denied []string
	for {
		out, err := c.SimulatePrincipalPolicy(ctx, in)
		if err != nil {
			return false, "", err
		}
		for _, res := range out.EvaluationResults {
			if res.EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed {
				denied = append(denied, fmt.Sprintf("%s on %s", aws.ToString(res.EvalActionName), resource))
			}
		}
		if !out.IsTruncated {
			break
		}
		in.Marker = out.Marker
	}
	if len(denied) > 0 {
		return false, strings.Join(denied, ", "), nil
	}
	return true, "", nil
}

func checkCloudTrail(ctx context.Context, c trailAPI, region string) checkResult {
	const without = "; without it RegisterTaskDefinition is only found by the sweeps"
	create := "create a trail that logs write management events in " + region + " (stack parameter CreateTrail=true)"
	r := checkResult{name: "cloudtrail"}
	out, err := c.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil {
		r.detail = fmt.Sprintf("cloudtrail DescribeTrails: %v", err)
		switch causeOf(err) {
		case causeDenied:
			r.fix = "allow cloudtrail:DescribeTrails (the template's CheckCloudTrailListing statement)"
		case causeUnreachable:
			r.fix = unreachableFix("CloudTrail")
		default:
			r.fix = "run again; CloudTrail did not list the trails: " + cloud.ErrorCode(err)
		}
		return r
	}
	var why []string
	var fix fixes
	callFailed := func(name, op string, err error) {
		why = append(why, fmt.Sprintf("%s: %s: %s", name, op, cloud.ErrorCode(err)))
		switch causeOf(err) {
		case causeDenied:
			fix.add("allow cloudtrail:GetTrailStatus and cloudtrail:GetEventSelectors on the trails (the template's CheckCloudTrailStatus statement)")
		case causeUnreachable:
			fix.add(unreachableFix("CloudTrail"))
		default:
			fix.add("run again; CloudTrail did not describe " + name)
		}
	}
	for _, t := range out.TrailList {
		name := aws.ToString(t.TrailARN)
		if name == "" {
			name = aws.ToString(t.Name)
		}
		if !aws.ToBool(t.IsMultiRegionTrail) && aws.ToString(t.HomeRegion) != region {
			why = append(why, name+": another Region")
			fix.add("make " + name + " a multi-Region trail, or " + create)
			continue
		}
		st, err := c.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(name)})
		if err != nil {
			callFailed(name, "GetTrailStatus", err)
			continue
		}
		if !aws.ToBool(st.IsLogging) {
			why = append(why, name+": not logging")
			fix.add("start logging on " + name + " (aws cloudtrail start-logging --name " + name + ")")
			continue
		}
		sel, err := c.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String(name)})
		if err != nil {
			callFailed(name, "GetEventSelectors", err)
			continue
		}
		if !logsWriteManagementEvents(sel) {
			why = append(why, name+": no write management events")
			fix.add("log write management events on " + name + " (an event selector with IncludeManagementEvents and ReadWriteType All or WriteOnly)")
			continue
		}
		r.ok = true
		r.detail = name + " logs write management events"
		return r
	}
	if len(out.TrailList) == 0 {
		r.detail = "no trail in " + region
		r.fix = create + without
	} else {
		r.detail = "no trail logs write management events: " + strings.Join(why, "; ")
		r.fix = fix.String() + without
	}
	return r
}

// logsWriteManagementEvents reads a trail's selectors: a basic selector with
// management events, read-write or write-only; or an advanced selector on
// the Management category that does not keep read-only events alone.
func logsWriteManagementEvents(sel *cloudtrail.GetEventSelectorsOutput) bool {
	for _, s := range sel.EventSelectors {
		if aws.ToBool(s.IncludeManagementEvents) && (s.ReadWriteType == cttypes.ReadWriteTypeAll || s.ReadWriteType == cttypes.ReadWriteTypeWriteOnly) {
			return true
		}
	}
	for _, a := range sel.AdvancedEventSelectors {
		management, readOnly := false, false
		for _, f := range a.FieldSelectors {
			switch aws.ToString(f.Field) {
			case "eventCategory":
				management = slices.Contains(f.Equals, "Management")
			case "readOnly":
				readOnly = slices.Contains(f.Equals, "true")
			}
		}
		if management && !readOnly {
			return true
		}
	}
	return false
}
