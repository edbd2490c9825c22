"""The claims warehouse: schema, engines, loaders, demo data and marts."""
