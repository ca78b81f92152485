"""Side effects: files, the sample data, DVC and MLflow."""
