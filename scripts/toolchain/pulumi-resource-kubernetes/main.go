// pulumi-resource-kubernetes, built by scripts/toolchain.sh (scripts/provision/toolchain.py) from the
// github.com/pulumi/pulumi-kubernetes/provider/v4 module.
//
// Same entry point as upstream's cmd/pulumi-resource-kubernetes/main.go: the
// upstream main embeds files that its Makefile generates (schema-embed.json =
// schema.json with "version" set, terraform-mapping-embed.json), and those are
// not part of the published module. scripts/provision/toolchain.py produces them with
// gen.go from the schema.json/terraform-mapping.json that the module does ship.
package main

import (
	_ "embed"
	"fmt"
	"os"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	// Lets scripts/provision/toolchain.py check which version a build serves.
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println(version.Version)
		return
	}
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
