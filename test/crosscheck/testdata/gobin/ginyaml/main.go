// Command ginyaml serves a YAML document with gin v1.6.3 (which brings
// gopkg.in/yaml.v2, go-playground/validator, ugorji/go and protobuf along).
package main

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v2"
)

func main() {
	r := gin.New()
	r.POST("/echo", func(c *gin.Context) {
		var doc map[string]any
		if err := c.ShouldBindYAML(&doc); err != nil {
			c.String(http.StatusBadRequest, err.Error())
			return
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.Data(http.StatusOK, "application/yaml", out)
	})
	_ = r.Run("127.0.0.1:0")
}
