"""imgvault.methods: image "encryption" methods and their metrics (see the open issue on methods)."""
