"""DataPipe components: pure builders beside the Pulumi ComponentResources that use them."""
