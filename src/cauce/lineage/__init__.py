"""Lineage graph and audit log over every entity in the metadata store."""
