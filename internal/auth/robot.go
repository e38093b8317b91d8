package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"regexp"
	"strings"

	"github.com/customs-dev/customs/internal/apperr"
)

// RobotPrefix starts every robot account name: "robot$<project>+<name>" for
// a project robot, "robot$<name>" for a system robot (Harbor's naming).
const RobotPrefix = "robot$"

// MinRobotPepper is the shortest Options.RobotPepper accepted.
const MinRobotPepper = 32

// robotShortName is the part of a robot name chosen by its creator.
var robotShortName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// RobotName returns the full name of robot short in project ("" for a
// system robot), or an EINVALID error explaining the naming rule.
func RobotName(project, short string) (string, error) {
	if len(short) == 0 || len(short) > 64 || !robotShortName.MatchString(short) {
		return "", apperr.Errorf(apperr.EINVALID,
			"invalid robot name %q: use 1-64 lowercase letters and digits, separated by '.', '_' or '-'", short)
	}
	if project == "" {
		return RobotPrefix + short, nil
	}
	return RobotPrefix + project + "+" + short, nil
}

// IsRobotName reports whether name is a robot account's login name.
func IsRobotName(name string) bool { return strings.HasPrefix(name, RobotPrefix) }

// NewRobotSecret returns a new random robot secret: 32 random bytes,
// base64url-encoded (43 characters, 256 bits).
func NewRobotSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", apperr.Wrap(err, apperr.EINTERNAL, "cannot generate a secret")
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// robotHashPrefix marks the keyed-hash format of robot secrets.
const robotHashPrefix = "hmac-sha256$"

// hashRobotSecret returns the stored form of a robot's secret: HMAC-SHA256
// under the server's pepper of the robot name and the secret. Robot secrets
// are long random strings, so a fast keyed hash suffices (no salt or work
// factor is needed against guessing), and registry requests authenticated
// with them stay cheap; without the pepper a leaked database reveals
// nothing usable.
func hashRobotSecret(pepper []byte, name, secret string) string {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("customs robot secret\x00"))
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return robotHashPrefix + base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

// verifyRobotSecret reports whether secret matches the stored hash, in
// constant time.
func verifyRobotSecret(pepper []byte, name, secret, stored string) bool {
	want := hashRobotSecret(pepper, name, secret)
	return subtle.ConstantTimeCompare([]byte(want), []byte(stored)) == 1
}
