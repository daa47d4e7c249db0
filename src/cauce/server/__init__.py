"""The team server: REST API, authentication, MLflow compatibility."""
