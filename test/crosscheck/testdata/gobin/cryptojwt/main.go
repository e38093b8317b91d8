// Command cryptojwt signs the claims of a YAML file into a JWT (HS256),
// keyed by an SSH public key read from an authorized_keys line, with
// golang.org/x/crypto of June 2020, github.com/dgrijalva/jwt-go
// v3.2.0+incompatible and gopkg.in/yaml.v2 v2.2.2. It is built with Go 1.20.
package main

import (
	"fmt"
	"os"

	"github.com/dgrijalva/jwt-go"
	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v2"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: cryptojwt AUTHORIZED_KEY CONFIG.yaml")
		os.Exit(2)
	}
	key, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var claims map[string]any
	if err := yaml.Unmarshal(cfg, &claims); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
	s, err := tok.SignedString(pub.Marshal())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s)
}
