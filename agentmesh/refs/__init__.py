"""Ref-backed protocols on the remote: claims (lease + fence), presence, and how refs are observed."""
