// Package shim exposes the Terraform random provider's internal Plugin
// Framework provider. It lives in a local module whose path sits under
// github.com/terraform-providers/terraform-provider-random/ so that Go's
// internal-package rule allows the import. scripts/provision/toolchain.py writes its
// go.mod (module github.com/terraform-providers/terraform-provider-random/shim).
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"
	random "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// NewProvider returns the upstream Terraform random provider.
func NewProvider() provider.Provider { return random.New() }
