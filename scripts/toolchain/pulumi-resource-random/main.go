// pulumi-resource-random, built by scripts/toolchain.sh (scripts/provision): the Terraform random
// provider served through pulumi-terraform-bridge, as upstream pulumi-random
// does. (The upstream github.com/pulumi/pulumi-random/provider/v4 module is not
// served by the Go module proxy we can reach, so this wrapper re-creates its
// main with the bridge's automatic token mapping.) `-version` prints the version.
package main

import (
	"context"
	_ "embed"

	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"

	"datapipe.local/toolchain/pulumi-resource-random/info"
)

// schema.json and bridge-metadata.json are generated at build time by ./gen.
var (
	//go:embed schema.json
	schema []byte
	//go:embed bridge-metadata.json
	bridgeMetadata []byte
)

func main() {
	pf.Main(context.Background(), "random", info.Provider(bridgeMetadata),
		pf.ProviderMetadata{PackageSchema: schema})
}
