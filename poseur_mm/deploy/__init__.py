"""Deployment of top-down Poseur models: ONNX export (``python -m poseur_mm.deploy.export``)."""
