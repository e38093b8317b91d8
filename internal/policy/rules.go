package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// addFunc records a violation of the policy being evaluated.
type addFunc func(rule Rule, msg, remedy string) *Violation

func quoteList(ps []*namePattern) string {
	q := make([]string, len(ps))
	for i, p := range ps {
		q[i] = p.raw
	}
	return strings.Join(q, ", ")
}

func (e *Engine) evalRegistries(st *evalState, c *compiled, add addFunc) {
	for _, p := range c.denied {
		if p.match(&st.subj) {
			add(RuleRegistries, fmt.Sprintf("%s comes from %q, which is denied", st.img.Name(), p.raw),
				"use an image from another registry or repository")
			return
		}
	}
	if len(c.allowed) == 0 {
		return
	}
	for _, p := range c.allowed {
		if p.match(&st.subj) {
			return
		}
	}
	add(RuleRegistries, fmt.Sprintf("%s is not from an allowed registry (allowed: %s)", st.img.Name(), quoteList(c.allowed)),
		fmt.Sprintf("use an image from %s (replicate it there first)", quoteList(c.allowed)))
}

func (e *Engine) evalNames(st *evalState, c *compiled, add addFunc) {
	if c.nameRe == nil || c.nameRe.MatchString(st.img.Repository) {
		return
	}
	add(RuleNames, fmt.Sprintf("repository %q does not match the naming convention %q", st.img.Repository, c.p.Spec.Names.Pattern),
		"push the image under a name that matches")
}

func (e *Engine) evalTags(st *evalState, c *compiled, add addFunc) {
	if c.tags == nil {
		return
	}
	byDigest := func() string {
		if st.in.Digest != "" {
			return fmt.Sprintf("reference the image by digest: %s@%s", st.img.Name(), st.in.Digest)
		}
		return "reference the image by digest (NAME@sha256:...)"
	}
	if tag := st.img.EffectiveTag(); tag != "" {
		for _, p := range c.tags.Deny {
			if wildMatch(p, tag) {
				msg := fmt.Sprintf("tag %q is denied", tag)
				if st.img.Tag == "" {
					msg = fmt.Sprintf("the reference has no tag, which means %q, and %q is denied", tag, p)
				} else if p != tag {
					msg = fmt.Sprintf("tag %q is denied (%q)", tag, p)
				}
				add(RuleTags, msg, byDigest()+" or a tag that is not denied")
				break
			}
		}
	}
	if c.tags.RequireDigest && st.img.Digest == "" {
		add(RuleTags, "the reference must name a digest", byDigest())
	}
}

func (e *Engine) evalSignatures(st *evalState, c *compiled, add addFunc) {
	if c.sig == nil || !c.sig.Required {
		return
	}
	if st.in.Signatures == nil {
		v := add(RuleSignatures, "signature verification not available, and the policy requires a signature (failing closed)",
			"sign the image and enable signature verification, or remove the signatures rule")
		v.Failed = true
		return
	}
	ver := st.in.Signatures.Verified
	if len(c.sig.Signers) == 0 {
		if len(ver) == 0 {
			add(RuleSignatures, fmt.Sprintf("%s is not signed", st.img.Name()), "sign the image")
		}
		return
	}
	for _, sg := range ver {
		for i, sn := range c.sig.Signers {
			if signerMatches(sn, c.signerKeys[i], sg) {
				return
			}
		}
	}
	names := make([]string, len(c.sig.Signers))
	for i, sn := range c.sig.Signers {
		names[i] = signerLabel(sn)
	}
	msg := fmt.Sprintf("%s is not signed by a required signer (%s)", st.img.Name(), strings.Join(names, ", "))
	if len(ver) == 0 {
		msg = fmt.Sprintf("%s is not signed; the policy requires a signature by %s", st.img.Name(), strings.Join(names, ", "))
	}
	add(RuleSignatures, msg, "sign the image as one of: "+strings.Join(names, ", "))
}

func signerMatches(sn Signer, keyFP string, sg Signature) bool {
	if sn.Keyless != nil {
		return sg.Issuer == sn.Keyless.Issuer && sg.Subject != "" && wildMatch(sn.Keyless.Subject, sg.Subject)
	}
	return keyFP != "" && sg.KeyFingerprint == keyFP
}

func signerLabel(sn Signer) string {
	if sn.Name != "" {
		return sn.Name
	}
	if sn.Keyless != nil {
		return sn.Keyless.Subject + " (" + sn.Keyless.Issuer + ")"
	}
	if fp, err := keyFingerprint(sn.Key); err == nil {
		return "key " + fp[:min(len(fp), 19)]
	}
	return "a key"
}

// parsePublicKey reads one PEM-encoded PKIX public key.
func parsePublicKey(s string) (any, error) {
	blk, rest := pem.Decode([]byte(s))
	if blk == nil {
		return nil, errors.New("key is not PEM (-----BEGIN PUBLIC KEY----- ...)")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("key holds more than one PEM block")
	}
	if blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("key is a PEM %q block, want \"PUBLIC KEY\"", blk.Type)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key is not a PKIX public key: %v", err)
	}
	return k, nil
}

// keyFingerprint is "sha256:" and the hex SHA-256 of the key's DER bytes,
// as Signature.KeyFingerprint carries it.
func keyFingerprint(s string) (string, error) {
	if _, err := parsePublicKey(s); err != nil {
		return "", err
	}
	blk, _ := pem.Decode([]byte(s))
	sum := sha256.Sum256(blk.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// KeyFingerprint returns the fingerprint Signature.KeyFingerprint must
// carry for a PEM public key, for the signature door.
func KeyFingerprint(pemKey string) (string, error) { return keyFingerprint(pemKey) }

func checkIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q is not an https URL", s)
	}
	return nil
}

// checkSigner validates a signer and returns its key fingerprint ("" for
// keyless).
func checkSigner(sn Signer) (string, error) {
	switch {
	case sn.Key != "" && sn.Keyless != nil:
		return "", errors.New("a signer has either key or keyless, not both")
	case sn.Key != "":
		return keyFingerprint(sn.Key)
	case sn.Keyless != nil:
		if err := checkIssuer(sn.Keyless.Issuer); err != nil {
			return "", err
		}
		if sn.Keyless.Subject == "" || sn.Keyless.Subject == "*" {
			return "", fmt.Errorf("keyless subject %q would accept anyone the issuer vouches for", sn.Keyless.Subject)
		}
		return "", nil
	}
	return "", errors.New("a signer needs key or keyless")
}

func (e *Engine) evalRego(st *evalState, c *compiled, add addFunc) {
	if c.rego == nil {
		return
	}
	if st.rego == nil {
		st.rego = regoInput(&Input{
			Image: st.img, Digest: st.in.Digest, Environment: st.in.Environment, Namespace: st.in.Namespace,
			Project: st.in.Project, Scan: st.in.Scan, Signatures: st.in.Signatures,
			External: st.in.External, Annotations: st.in.Annotations,
		})
	}
	msgs, err := c.rego.eval(st.ctx, st.rego, e.cfg.RegoTimeout)
	if err != nil {
		v := add(RuleRego, "rego evaluation failed, failing closed: "+err.Error(), "fix the policy's Rego modules")
		v.Failed = true
		return
	}
	for _, m := range msgs {
		add(RuleRego, m, "")
	}
}
