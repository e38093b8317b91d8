// Package audit records customs' append-only, tamper-evident audit trail.
//
// Every security-relevant action (push, pull, delete, login, token issue,
// permission, membership, robot, setting, policy and allowlist changes, and
// later scans, admission decisions and replications) becomes an Event. Each
// stored event carries the hash of the previous one, so editing or deleting a
// stored event is detected by verification.
//
// This file holds the types every producer uses; producers depend only on the
// Recorder interface.
package audit

import (
	"context"
	"time"
)

// Outcome says how an audited action ended.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success" // the action was carried out
	Failure Outcome = "failure" // the action failed (bad credentials, invalid input, error)
	Denied  Outcome = "denied"  // the actor was not allowed to do it
)

// Event is one audited action.
type Event struct {
	// ID is assigned by the store: strictly increasing in append order.
	ID int64 `json:"id"`
	// Time is when the action happened (UTC).
	Time time.Time `json:"time"`
	// ActorKind is "user", "robot", "anonymous" or "system".
	ActorKind string `json:"actorKind"`
	// Actor is the user or robot name; "" for anonymous.
	Actor string `json:"actor,omitempty"`
	// ClientIP and UserAgent describe where the request came from.
	ClientIP  string `json:"clientIP,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
	// Action is a dotted verb such as "artifact.push", "user.login",
	// "token.issue", "project.member.add".
	Action string `json:"action"`
	// Resource names what was acted on, e.g. "repository:proj/app@sha256:…",
	// "project:proj", "user:alice".
	Resource string `json:"resource,omitempty"`
	// Project is the project the resource belongs to, for per-project
	// queries; "" for system-wide resources.
	Project string `json:"project,omitempty"`
	// Outcome and Reason say how it ended and why.
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	// Details holds action-specific facts (tag, digest, granted scopes...).
	// Never secrets.
	Details map[string]string `json:"details,omitempty"`
	// PrevHash and Hash chain the events; set by the store on append.
	PrevHash string `json:"prevHash,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

// Recorder accepts events. Record must not block the caller on I/O for long
// and must not fail the audited action: implementations queue and batch, and
// guarantee delivery of everything recorded before a graceful shutdown.
type Recorder interface {
	Record(ctx context.Context, e Event)
}

// Discard is a Recorder that drops every event (for tests and tools that
// audit nothing).
type Discard struct{}

// Record implements Recorder.
func (Discard) Record(context.Context, Event) {}
