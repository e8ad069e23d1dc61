"""Acceleration backends: ONNX export, onnxruntime sessions, TensorRT engines.

A leaf: nothing imports it eagerly. `backends.unet_predictor` / `backends.depth_predictor` are
the factories the pipeline calls; they import onnx, onnxruntime and tensorrt only when a
backend that needs them is requested.
"""
