"""One module per architecture, each written once against domain.ops.Ops."""
