// Command textlang parses the language tags given as arguments with
// golang.org/x/text v0.3.5 (affected by GO-2021-0113, GO-2022-1059 and
// GO-2026-5970).
package main

import (
	"fmt"
	"os"

	"golang.org/x/text/language"
)

func main() {
	for _, arg := range os.Args[1:] {
		tag, err := language.Parse(arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(tag)
	}
}
