"""Image references and lists, copies, archives and the registry's HTTP API."""
