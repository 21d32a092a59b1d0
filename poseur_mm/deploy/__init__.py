"""Deployment of top-down Poseur models: the ONNX graph and its onnxruntime session (the
command line is ``tools/deployment/pytorch2onnx.py``)."""
from .export import PoseurDeployModel, create_session, crop_to_image, export_onnx, run_onnx

__all__ = ['PoseurDeployModel', 'create_session', 'crop_to_image', 'export_onnx', 'run_onnx']
