// Command nethttp2 serves HTTP/2 without TLS and extracts the text of HTML
// pages, with golang.org/x/net of April 2021 (and the x/text and x/sys it
// brings along).
package main

import (
	"fmt"
	"net/http"
	"os"

	"golang.org/x/net/html"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/idna"
)

func main() {
	if len(os.Args) > 1 {
		host, err := idna.Lookup.ToASCII(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(host)
		return
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, err := html.Parse(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, doc.Type)
	})
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: h2c.NewHandler(h, &http2.Server{})}
	fmt.Fprintln(os.Stderr, srv.ListenAndServe())
}
