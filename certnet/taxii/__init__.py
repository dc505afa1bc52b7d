"""A TAXII 2.1 server: the platform's intelligence as collections per audience, read through visibility."""
