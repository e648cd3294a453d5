"""The HTTP edge: one module per resource, request bodies, and the API's responses and errors."""
