// Command cryptojwt signs a JWT with an ed25519-derived HMAC key and reads
// an SSH public key and a YAML file, with golang.org/x/crypto of 2020,
// github.com/dgrijalva/jwt-go v3.2.0+incompatible and gopkg.in/yaml.v2
// v2.2.2.
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
