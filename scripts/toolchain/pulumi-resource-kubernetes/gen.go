//go:build ignore

// Usage: go run gen.go <module cmd dir> <version>
//
// Writes schema-embed.json (the module's schema.json with "version" set, so
// GetSchema reports the version the Python SDK asks for) and a compacted
// terraform-mapping-embed.json into the current directory.
package main

import (
	"bytes"
	"encoding/json"
	"log"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: go run gen.go <module cmd/pulumi-resource-kubernetes dir> <version>")
	}
	dir, version := os.Args[1], os.Args[2]

	raw, err := os.ReadFile(filepath.Join(dir, "schema.json"))
	if err != nil {
		log.Fatal(err)
	}
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &spec); err != nil {
		log.Fatalf("cannot parse schema.json: %v", err)
	}
	v, _ := json.Marshal(version)
	spec["version"] = v
	out, err := json.Marshal(spec)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("schema-embed.json", out, 0o644); err != nil {
		log.Fatal(err)
	}

	raw, err = os.ReadFile(filepath.Join(dir, "terraform-mapping.json"))
	if err != nil {
		log.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		log.Fatalf("cannot parse terraform-mapping.json: %v", err)
	}
	if err := os.WriteFile("terraform-mapping-embed.json", compact.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
