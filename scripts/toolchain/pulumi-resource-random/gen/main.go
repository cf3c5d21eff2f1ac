// Command gen writes the Pulumi package schema (schema.json) and the bridge
// metadata (bridge-metadata.json) of the random provider into the directory
// named by its first argument. Docs come from the Terraform schema only.
package main

import (
	"context"
	"log"
	"os"
	"path/filepath"

	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"
	"github.com/pulumi/pulumi-terraform-bridge/v3/unstable/metadata"

	"datapipe.local/toolchain/pulumi-resource-random/info"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: gen <output dir>")
	}
	prov := info.Provider(nil)
	res, err := pftfgen.GenerateSchema(context.Background(), pftfgen.GenerateSchemaOptions{
		ProviderInfo:  prov,
		XInMemoryDocs: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(os.Args[1], name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	write("schema.json", res.ProviderMetadata.PackageSchema)
	write(prov.MetadataInfo.Path, (*metadata.Data)(prov.MetadataInfo.Data).MarshalIndent())
}
