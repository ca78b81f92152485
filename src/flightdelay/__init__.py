"""Flight-delay prediction: a GitOps ML template (DVC pipeline, MLflow tracking, BentoML service)."""
